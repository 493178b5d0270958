"""New questions for ``run`` and ``allocate``: a problems table, or any JSONL/JSON/CSV/Parquet file.

Ids and gold answers are optional.  Without an id field a question's id is its 0-based row index
(as ``ttcalloc data`` gives it, so the samples ``run`` keeps can be estimated against a problems
table built from the same file later).  Gold answers are normalized as ``data`` does
(``#### N`` and numbers for the numeric grader); a question without one is unlabeled.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.artifacts import sources
from ttcalloc.artifacts.io import parquet_files, read_artifact, read_meta
from ttcalloc.artifacts.schemas import PROBLEMS
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.text import grading

if TYPE_CHECKING:
    import polars as pl

ID_FIELDS = ("problem_id", "id")
ANSWER_FIELDS = ("answer", "gold", "gold_answer")


def load_questions(
    path: Path,
    question_field: str = "question",
    id_field: str | None = None,
    answer_field: str | None = None,
    grader: str = "auto",
) -> pl.DataFrame:
    """Columns problem_id, question, answer (null when unlabeled), grader, and any others kept."""
    import polars as pl

    path = Path(path)
    if path.suffix == ".parquet" or path.is_dir():
        files = parquet_files(path) if path.exists() else []
        if files and read_meta(files[0]).get("artifact") == PROBLEMS.name:
            return read_artifact(path, PROBLEMS).df
    if grader not in ("auto", *grading.GRADERS):
        raise InputError(f"--grader {grader!r}: expected auto, numeric, math or exact")
    records = sources.read_records(sources.resolve(path))
    if not records:
        raise DataError(f"{path}: no questions")
    for flag, given in (("--id-field", id_field), ("--answer-field", answer_field)):
        if given and not any(given in r for r in records):
            raise InputError(f"{flag} {given!r}: no record of {path} has that field")
    idf = id_field or next((f for f in ID_FIELDS if f in records[0]), None)
    af = answer_field or next((f for f in ANSWER_FIELDS if f in records[0]), None)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, rec in enumerate(records):
        q = rec.get(question_field)
        if q is None or not str(q).strip():
            raise DataError(f"{path}: record {i}: field {question_field!r} is missing or empty")
        pid = str(i) if idf is None else str(rec.get(idf, "")).strip()
        if not pid or pid in seen:
            raise DataError(f"{path}: record {i}: id {pid!r} ({idf}) is empty or repeated")
        seen.add(pid)
        raw = rec.get(af) if af else None
        rows.append({"problem_id": pid, "question": str(q).strip(), "answer": _gold(raw)})
    answers = [r["answer"] for r in rows if r["answer"] is not None]
    if grader == "auto":
        if not answers:
            raise InputError(
                f"{path}: no gold answers to infer the grader from; give --grader numeric, "
                "math or exact"
            )
        grader = grading.guess_grader(answers) or "numeric"
    for r in rows:
        r["grader"] = grader
        if grader == "numeric" and r["answer"] is not None:
            num = grading.parse_number(r["answer"])
            r["answer"] = grading.format_number(num) if num is not None else r["answer"]
    return pl.from_dicts(rows, infer_schema_length=None).with_columns(
        pl.col("answer").cast(pl.String)
    )


def _gold(raw: Any) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    if "####" in text:
        text = text.rsplit("####", 1)[1].strip()
    return text or None
