"""Math grading and clustering: ``import`` and ``estimate --problems`` on 500 MATH x 128 samples.

The old path graded each distinct (answer, gold) pair with math-verify one at a time and parsed
every wrong answer again in every later stage; the new one (:mod:`ttcalloc.text.batch`) parses
each distinct answer once, keeps its canonical form on disk, compares equal parses once,
shortcuts plain integers and exact rationals, and uses idle cores.  Each run is a whole
``ttcalloc`` process (the old one through ``legacy.py``), old and new alternating in the same
run, on the same input; their outputs are asserted identical.

Input: ``math_samples.py`` (no MATH file with many samples per problem exists in
``../shared/data``): the 500 MATH500 gold answers, 128 synthetic answers each.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import math_samples
import polars as pl
from common import cli_seconds, machine

from ttcalloc.text import batch

KS = "1,2,4,8,16,32,64"


def run() -> str:
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source, raw = math_samples.write(tmp)
        problems = str(tmp / "problems.parquet")
        cli_seconds(["data", "math", "--source", str(source), "--out", problems])
        frame = pl.read_parquet(raw)
        distinct = frame.drop_nulls("pred_answer").select("problem_id", "pred_answer").unique()
        outputs: dict[str, list[Path]] = {}

        def timed_run(
            stage: str, label: str, args: list[str], out: Path, home: str, **kw: object
        ) -> None:
            env = {"TTCALLOC_HOME": str(tmp / home)}
            if kw.get("workers"):
                env[batch.WORKERS_ENV] = str(kw["workers"])
            seconds = cli_seconds([*args, "--out", str(out)], old=bool(kw.get("old")), env=env)
            rows.append(f"| {stage} | {label} | {seconds:.1f} |")
            outputs.setdefault(stage, []).append(out)

        imp = ["import", str(raw), "--problems", problems]
        timed_run("`import`", "old: one pair at a time", imp, tmp / "s-old.parquet", "h0", old=True)
        timed_run("`import`", "new, 1 process", imp, tmp / "s-1.parquet", "h1", workers=1)
        timed_run("`import`", "new, 2 processes", imp, tmp / "s-2.parquet", "h2", workers=2)
        samples = str(tmp / "s-old.parquet")
        for strategy in ("majority", "pass"):
            stage = f"`estimate --problems --strategy {strategy}`"
            est = ["estimate", samples, "--problems", problems, "--ks", KS, "--strategy", strategy]
            for label, home, kw in [
                ("old", "h0", {"old": True}),
                ("new, cold cache, 1 process", f"c1{strategy}", {"workers": 1}),
                ("new, cold cache, 2 processes", f"c2{strategy}", {"workers": 2}),
                ("new, after `import`", "h1", {"workers": 1}),
            ]:
                out = tmp / f"c-{strategy}-{home}.parquet"
                timed_run(stage, label, est, out, home, **kw)
        for stage, paths in outputs.items():
            first = pl.read_parquet(paths[0])
            for path in paths[1:]:
                assert pl.read_parquet(path).equals(first), f"{stage}: {path} differs from old"

    lines = [
        "## grading: math-verify on 500 MATH problems x 128 samples",
        "",
        f"{frame.height:,} samples of the 500 MATH500 problems: synthetic answers around the "
        "real gold answers (`benchmarks/math_samples.py`; the shared data has no MATH file with "
        f"many samples per problem): {distinct.height:,} distinct (problem, answer) pairs, "
        f"{frame['pred_answer'].n_unique():,} distinct answer strings, accuracy "
        f"{frame['correct'].mean():.3f}. Each row is one whole `ttcalloc` process; the old path "
        "is `benchmarks/legacy.py` (one pair at a time, no cache). `import` grades every sample "
        "(the file's `correct` column is compared with ours). 'cold cache': no canonical forms "
        "on disk yet (samples from `sample`, or another machine); 'after `import`': the forms "
        "`import` stored. Every output is asserted identical to the old path's.",
        "",
        "| stage | path | seconds |",
        "|---|---|---|",
        *rows,
        "",
        "Where the time goes: math-verify's LaTeX parser (ANTLR, about 3 ms per distinct "
        "string) and sympy comparisons of wrong answers (`simplify`). The new path parses each "
        "distinct string once per machine, compares each distinct parse once per gold answer, "
        "skips the parser and `simplify` for plain integers and exact rationals, and "
        "`--strategy pass` clusters nothing. Worker processes only pay when cores are idle: "
        "by default ttcalloc starts as many as the load average leaves free (load average "
        f"after this run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stderr.write(machine() + "\n")
    print(run())
