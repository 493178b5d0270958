"""The samples folder of a run: refused when another stage drew it, each id tied to its
question, and the samples it already holds filed into the questions' items."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.artifacts.io import atomic_path
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.stages.run.items import Item, to_got

if TYPE_CHECKING:
    import polars as pl


QUESTIONS_FILE = ".questions.json"


def refuse_foreign(folder: Path) -> None:
    """Refuse a samples folder that ``run`` did not write (``sample``'s, say): adding to it
    would change an input that curves, policies and reports recorded."""
    if not (Path(folder) / QUESTIONS_FILE).exists() and any(Path(folder).glob("*.parquet")):
        raise InputError(
            f"--samples-out {folder}: holds samples that `ttcalloc run` did not draw (from "
            "`ttcalloc sample`?); adding to them would change an input other stages recorded: "
            "give another --samples-out"
        )


def check_questions(folder: Path, items: list[Item]) -> None:
    """Keep each id's question (a hash of its text) and grader beside its samples, and refuse a
    run that gives a known id another question (its samples would answer the wrong question) or
    another grader (its samples were asked with that grader's prompt and graded by it)."""
    path = Path(folder) / QUESTIONS_FILE
    known: dict[str, Any] = {}
    if path.exists():
        try:
            known = dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(f"{path}: unreadable ({exc}); remove it to start afresh") from None
    for it in items:
        digest = hashlib.sha256(str(it.problem["question"]).encode()).hexdigest()[:16]
        grader = str(it.problem.get("grader") or "")
        before = known.get(it.pid, [digest, grader])
        # folders written before graders were kept hold the digest alone
        old_digest, old_grader = (before, grader) if isinstance(before, str) else before
        if old_digest != digest:
            raise InputError(
                f"question {it.pid!r} is not the one its samples in {folder} were drawn for (a "
                "file without an id field numbers its rows); give another --samples-out"
            )
        if old_grader != grader:
            raise InputError(
                f"question {it.pid!r}: its samples in {folder} were asked and graded with the "
                f"{old_grader} grader, not {grader}; give --grader {old_grader} or another "
                "--samples-out"
            )
        known[it.pid] = [digest, grader]
    Path(folder).mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(known, sort_keys=True))


def load_existing(
    items: list[Item], existing: pl.DataFrame | None, unit: str, models: bool = False
) -> None:
    """File the samples the folder holds into the questions' items: ``got`` (one model), or,
    with ``models``, ``held`` by model (a question's action picks its model's on start)."""
    if existing is None:
        return
    by_pid = {it.pid: it for it in items}
    ok = existing.filter(existing["error"].is_null())
    for row in ok.iter_rows(named=True):
        it = by_pid.get(row["problem_id"])
        if it is None:
            continue
        got = to_got(row, it.problem["grader"], unit)
        if models:
            it.held.setdefault(str(row["model"]), {})[int(row["sample_idx"])] = got
        else:
            it.got[int(row["sample_idx"])] = got


def samples_of(folder: Path, specs: dict[str, str]) -> pl.DataFrame | None:
    """The samples of the models ``specs`` names the folder holds (after superseding), None
    when it holds none; samples of a model drawn from another backend are refused in one line
    (they would answer as if drawn from this one)."""
    import polars as pl

    from ttcalloc.artifacts.io import read_artifact, read_meta
    from ttcalloc.artifacts.schemas import SAMPLES

    parts = sorted(Path(folder).glob("part-*.parquet")) if Path(folder).is_dir() else []
    if not parts:
        return None
    for part in parts:
        before = read_meta(part).get("params", {}).get("models") or {}
        for name, spec in specs.items():
            if before.get(name, spec) != spec:
                raise InputError(
                    f"--samples-out {folder}: holds samples of model {name!r} drawn from "
                    f"{before[name]}, not {spec}; give --model {name}={before[name]} or another "
                    "--samples-out"
                )
    df = read_artifact(Path(folder), SAMPLES).df
    return df.filter(pl.col("model").is_in(list(specs)))
