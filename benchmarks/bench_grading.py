"""Math grading and clustering: ``import`` and ``estimate --problems`` on 500 MATH x 128 samples.

The old path graded each distinct (answer, gold) pair with math-verify one at a time and parsed
every wrong answer again in every later stage; the new one (:mod:`ttcalloc.text.batch`) parses
each distinct answer once, keeps its canonical form on disk, compares equal parses once,
shortcuts plain integers and exact rationals, and uses idle cores.  Both run here in the same
process, one after the other, on the same input, and their outputs are asserted identical.

Input: ``math_samples.py`` (no MATH file with many samples per problem exists in
``../shared/data``): the 500 MATH500 gold answers, 128 synthetic answers each.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import math_samples
import polars as pl
from common import machine, timed

from ttcalloc.stages import data
from ttcalloc.stages.estimate import EstimateOptions, estimate_curves
from ttcalloc.stages.importer import import_samples
from ttcalloc.text import batch, grading

KS = (1, 2, 4, 8, 16, 32, 64)


def _old_grade_many(items: Any) -> list[bool]:
    return [grading.is_correct(p, a, g) for p, a, g in items]


def _old_canonical_many(items: Any) -> list[str | None]:
    return [grading.normalize(a, g) for a, g in items]


@contextmanager
def _path(old: bool, home: Path, workers: int | None = None) -> Iterator[None]:
    """The old or new grading path, with empty in-memory caches and the given disk cache."""
    grading._math_parse.cache_clear()
    grading._math_equal.cache_clear()
    batch._CANON.clear()
    env = {"TTCALLOC_HOME": str(home)}
    if workers is not None:
        env[batch.WORKERS_ENV] = str(workers)
    with mock.patch.dict(os.environ, env):
        if old:
            with (
                mock.patch.object(batch, "grade_many", _old_grade_many),
                mock.patch.object(batch, "canonical_many", _old_canonical_many),
            ):
                yield
        else:
            yield


def run() -> str:
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source, raw = math_samples.write(tmp)
        problems = tmp / "problems.parquet"
        data.build_problems(source, problems, "math")
        frame = pl.read_parquet(raw)
        distinct = frame.drop_nulls("pred_answer").select("problem_id", "pred_answer").unique()

        def import_with(old: bool, home: Path, out: str, workers: int | None = None) -> Path:
            label = "old (one pair at a time)" if old else f"new ({_workers(workers)})"
            with _path(old, home, workers):
                _, t = timed(lambda: import_samples(raw, problems, tmp / out))
            rows.append(f"| `import` | {label} | {t:.1f} |")
            return tmp / out

        def estimate_with(
            old: bool, home: Path, samples: Path, strategy: str, note: str, workers: int | None
        ) -> pl.DataFrame:
            out = tmp / f"curves-{len(rows)}.parquet"
            options = EstimateOptions(ks=KS, strategies=(strategy,))
            label = "old" if old else f"new ({_workers(workers)}; {note})"
            with _path(old, home, workers):
                _, t = timed(lambda: estimate_curves(samples, out, options, problems))
            rows.append(f"| `estimate --problems --strategy {strategy}` | {label} | {t:.1f} |")
            return pl.read_parquet(out)

        old_samples = import_with(True, tmp / "home-old", "samples-old.parquet")
        new1 = import_with(False, tmp / "home-new1", "samples-new1.parquet", workers=1)
        new = import_with(False, tmp / "home-new", "samples-new.parquet")
        same_import = all(
            pl.read_parquet(old_samples).equals(pl.read_parquet(p)) for p in (new1, new)
        )
        curves: dict[str, list[pl.DataFrame]] = {}
        for strategy in ("majority", "pass"):
            runs: list[tuple[bool, Path, str, int | None]] = [
                (True, tmp / "home-old", "", None),
                (False, tmp / f"home-cold-{strategy}", "cold cache", 1),
                (False, tmp / f"home-cold2-{strategy}", "cold cache", None),
                (False, tmp / "home-new", "after import", None),
            ]
            curves[strategy] = [
                estimate_with(o, h, old_samples, strategy, note, w) for o, h, note, w in runs
            ]
        same_curves = all(c.equals(cs[0]) for cs in curves.values() for c in cs[1:])
    assert same_import and same_curves, "the new grading path changed an artifact"

    lines = [
        "## grading: math-verify on 500 MATH problems x 128 samples",
        "",
        f"{frame.height:,} samples of the 500 MATH500 problems (synthetic answers around the real "
        f"gold answers, `benchmarks/math_samples.py`; no real MATH multi-sample file is in the "
        f"shared data): {distinct.height:,} distinct (problem, answer) pairs, "
        f"{frame['pred_answer'].n_unique():,} distinct answer strings, accuracy "
        f"{frame['correct'].mean():.3f}. Stage functions timed in one process, one after the "
        f"other; `import` grades every sample (the file's `correct` column is compared with ours). "
        f"'cold cache': no canonical forms on disk yet (a fresh machine, or samples from "
        f"`sample`); 'after import': the forms `import` stored. Outputs of every run are "
        f"asserted identical to the old path's (samples and curves).",
        "",
        "| stage | path | seconds |",
        "|---|---|---|",
        *rows,
        "",
        "Where the time goes: parsing with math-verify (its ANTLR LaTeX parser, about 3 ms per "
        "distinct string) and sympy comparisons of wrong answers (`simplify`). The new path "
        "parses each distinct string once per machine, compares each distinct parse once per "
        "gold, and skips the parser and `simplify` for plain integers and exact rationals; "
        "`--strategy pass` needs no clustering at all. Worker processes help only when cores "
        f"are idle (load average when this ran: {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores).",
        "",
    ]
    return "\n".join(lines)


def _workers(explicit: int | None) -> str:
    n = explicit if explicit is not None else batch.workers()
    how = "" if explicit is not None else "auto: "
    return f"{how}{n} worker{'s' if n > 1 else ''}"


if __name__ == "__main__":
    sys.stderr.write(machine() + "\n")
    print(run())
