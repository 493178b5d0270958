"""``ttcalloc data``: build a problems table from GSM8K, MATH or any JSONL file.

``data jsonl --from-samples`` also reads a samples file (one row per sample, the question and
gold answer on every row) as one problem per id (:mod:`~ttcalloc.stages.data.samples_file`).

The train/test split is a seeded hash of ``problem_id``: a problem keeps its split when others are
added or removed, and no test problem can leak into training through reordering.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.artifacts import sources
from ttcalloc.artifacts.io import check_output, write_artifact
from ttcalloc.artifacts.schemas import PROBLEMS
from ttcalloc.artifacts.validation import validate
from ttcalloc.common.console import warn
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.common.hashing import seeded_unit
from ttcalloc.stages.data.samples_file import field_text, one_per_problem
from ttcalloc.text import grading

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class DataOptions:
    """Options shared by every dataset kind."""

    limit: int | None = None
    test_frac: float = 0.2
    seed: int = 0
    id_field: str | None = None

    def check(self) -> None:
        if not 0.0 <= self.test_frac <= 1.0:
            raise InputError(f"--test-frac {self.test_frac}: must be between 0 and 1")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"--limit {self.limit}: must be at least 1")


@dataclass(frozen=True)
class JsonlFields:
    """Field names of a generic JSONL dataset (None: the first of :data:`FIELD_ALIASES` found)."""

    question: str | None = None
    answer: str | None = None
    grader: str = "auto"
    meta: tuple[str, ...] = field(default_factory=tuple)
    unlabeled: bool = False  # no gold answers: ``answer`` is null (for run and allocate)
    from_samples: bool = False  # a samples file: one problem per id, from its rows


# Field spellings tried, in order, when a jsonl dataset's field is not named (the id ones are
# those `ttcalloc import` tries for sample files, so both find the same ids).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "question": ("question", "problem", "prompt", "input", "query"),
    "answer": ("answer", "gold_answer", "final_answer", "gold", "target"),
    "id": ("problem_id", "id", "idx", "question_id"),
}
TINY_TEST_SPLIT = 20  # fewer test problems than this: a warning (intervals too wide to read)


def resolve_fields(
    kind: str, records: list[dict[str, Any]], options: DataOptions, fields: JsonlFields | None
) -> tuple[DataOptions, JsonlFields | None, dict[str, str]]:
    """For ``jsonl``: the question, answer and id fields, found among common names when not
    given; also returns what was found (``{"id": "uid"}``).  Other kinds are returned as they are.

    ``--id-field ""`` keeps row indices as ids even when an id field exists.
    """
    if kind != "jsonl" or not records:
        return options, fields, {}
    fields = fields or JsonlFields()
    first = records[0]
    found: dict[str, str] = {}

    def pick(name: str, given: str | None) -> str | None:
        if given is not None:
            return given
        hit = next((a for a in FIELD_ALIASES[name] if a in first), None)
        if hit is not None:
            found[name] = hit
        return hit

    question = pick("question", fields.question) or "question"
    answer = pick("answer", fields.answer) or "answer"
    fields = replace(fields, question=question, answer=answer)
    if options.id_field is None:
        options = replace(options, id_field=pick("id", None))
    elif options.id_field == "":
        options = replace(options, id_field=None)
    return options, fields, found


@dataclass(frozen=True)
class DataResult:
    """What ``build_problems`` wrote."""

    out: Path
    kind: str
    problems: int
    train: int
    test: int
    grader_counts: dict[str, int]
    found_fields: dict[str, str] = field(default_factory=dict)  # jsonl fields found by name

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "kind": self.kind,
            "problems": self.problems,
            "train": self.train,
            "test": self.test,
            "graders": self.grader_counts,
            "found_fields": self.found_fields,
        }


def split_of(problem_id: str, test_frac: float, seed: int) -> str:
    """``"test"`` for a seeded-hash share ``test_frac`` of problem ids, else ``"train"``."""
    return "test" if seeded_unit("split", seed, problem_id) < test_frac else "train"


def _problem_id(record: dict[str, Any], index: int, id_field: str | None, where: str) -> str:
    if id_field is None:
        return str(index)
    if id_field not in record:
        raise DataError(f"{where}: field {id_field!r} (--id-field) is missing")
    pid = field_text(record[id_field])
    if pid is None:
        raise DataError(f"{where}: field {id_field!r} (--id-field) is empty")
    return pid


def _level(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    match = re.search(r"\d+", str(value))
    return int(match.group()) if match else None


Row = dict[str, Any]
RowBuilder = Callable[[dict[str, Any], str], Row]


def _gsm8k_row(record: dict[str, Any], where: str) -> Row:
    question = field_text(record.get("question"))
    raw = record.get("answer")
    if question is None:
        raise DataError(f"{where}: field 'question' is missing or empty")
    if raw is None:
        raise DataError(f"{where}: field 'answer' is missing")
    text = str(raw)
    mark = text.rsplit("####", 1)
    if len(mark) == 2:
        gold = grading.parse_number(mark[1].strip())
        if gold is None:
            raise DataError(f"{where}: answer after '####' is not a number: {mark[1].strip()!r}")
        answer = grading.format_number(gold)
    else:
        num = grading.parse_number(text)
        if num is None:
            raise DataError(f"{where}: field 'answer' has no '#### N' final answer")
        answer = grading.format_number(num)
    return {"question": question, "answer": answer, "grader": "numeric"}


def _math_row(record: dict[str, Any], where: str) -> Row:
    question = field_text(record.get("problem")) or field_text(record.get("question"))
    if question is None:
        raise DataError(f"{where}: field 'problem' is missing or empty")
    answer = field_text(record.get("answer"))
    if answer is None:
        solution = record.get("solution")
        if solution is None:
            raise DataError(f"{where}: neither 'answer' nor 'solution' is present")
        answer = grading.last_boxed(str(solution))
        if answer is None or not answer.strip():
            raise DataError(f"{where}: 'solution' has no \\boxed{{}} answer")
        answer = answer.strip()
    subject = field_text(record.get("subject")) or field_text(record.get("type"))
    return {
        "question": question,
        "answer": answer,
        "grader": "math",
        "level": _level(record.get("level")),
        "subject": subject,
    }


def _jsonl_builder(fields: JsonlFields) -> RowBuilder:
    q_name, a_name = fields.question or "question", fields.answer or "answer"

    def build(record: dict[str, Any], where: str) -> Row:
        question = field_text(record.get(q_name))
        if question is None:
            raise DataError(f"{where}: field {q_name!r} (--question-field) is missing")
        answer = None if fields.unlabeled else field_text(record.get(a_name))
        if answer is None and not fields.unlabeled:
            raise DataError(
                f"{where}: field {a_name!r} (--answer-field) is missing "
                "(--unlabeled for questions without answers)"
            )
        row: Row = {"question": question, "answer": answer}
        for name in fields.meta:
            value = record.get(name)
            if name == "level":
                value = _level(value)
            elif isinstance(value, (list, dict)):
                raise DataError(f"{where}: --meta-field {name!r} is not a scalar")
            row[name] = value
        return row

    return build


BUILDERS: dict[str, RowBuilder] = {"gsm8k": _gsm8k_row, "math": _math_row}


def _auto_grader(answers: list[str]) -> str:
    """``--grader auto``: numeric, math or exact from the gold answers
    (:func:`grading.guess_grader`: dates, options, yes/no and words are ``exact``)."""
    return grading.guess_grader(answers) or "numeric"


def _row_builder(kind: str, fields: JsonlFields | None) -> RowBuilder:
    """The row builder of ``kind``; an unknown kind or grader is an :class:`InputError`."""
    if kind == "jsonl":
        fields = fields or JsonlFields()
        if fields.grader not in ("auto", *grading.GRADERS):
            raise InputError(f"--grader {fields.grader!r}: expected auto, numeric, math or exact")
        if fields.unlabeled and fields.grader == "auto":
            raise InputError(
                "--unlabeled: give --grader numeric, math or exact (no answers to infer it from)"
            )
        return _jsonl_builder(fields)
    if kind in BUILDERS:
        return BUILDERS[kind]
    raise InputError(f"unknown dataset kind {kind!r}: expected gsm8k, math or jsonl")


def _compared(fields: JsonlFields) -> list[tuple[str, str]]:
    """The fields every row of a problem must agree on in a samples file, with their flags."""
    named = [(fields.question or "question", "--question-field")]
    if not fields.unlabeled:
        named.append((fields.answer or "answer", "--answer-field"))
    return named + [(name, "--meta-field") for name in fields.meta]


def _read_limit(options: DataOptions, fields: JsonlFields | None) -> int | None:
    """Records to read: the first ``--limit`` (a samples file: all; the limit counts problems)."""
    return None if fields is not None and fields.from_samples else options.limit


def read_dataset(source: str | Path, limit: int | None = None) -> tuple[Path, list[dict[str, Any]]]:
    """The local path of ``source`` (a URL is downloaded once) and its first ``limit`` records."""
    path = sources.resolve(source)
    records = sources.read_records(path)
    if limit is not None:
        records = records[:limit]
    return path, records


def problems_frame(
    records: list[dict[str, Any]],
    kind: str,
    options: DataOptions | None = None,
    fields: JsonlFields | None = None,
    where: str = "records",
) -> pl.DataFrame:
    """Records into a validated problems frame, without IO: ids, gold answers, splits, graders.

    With ``fields.from_samples`` the records are a samples file's rows: one problem per id (the
    first ``options.limit`` ids), its fields taken from its rows, which must agree on them.
    ``where`` names the source in error messages.
    """
    import polars as pl

    options = options or DataOptions()
    builder = _row_builder(kind, fields)
    if not records:
        raise DataError(f"{where}: no problems found (empty dataset)")
    numbered = list(enumerate(records))
    if kind == "jsonl" and fields is not None and fields.from_samples:
        numbered = one_per_problem(records, options.id_field, _compared(fields), where)
        numbered = numbered[: options.limit]
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for index, record in numbered:
        at = f"{where}: record {index}"
        pid = _problem_id(record, index, options.id_field, at)
        if pid in seen:
            raise DataError(
                f"{where}: duplicate problem_id {pid!r} (records {seen[pid]} and {index}); "
                "a samples file (one row per sample)? `ttcalloc data jsonl --from-samples` "
                "takes one problem per id"
            )
        seen[pid] = index
        row = builder(record, at)
        row["problem_id"] = pid
        row["split"] = split_of(pid, options.test_frac, options.seed)
        rows.append(row)
    if kind == "jsonl":
        fields = fields or JsonlFields()
        grader = (
            _auto_grader([r["answer"] for r in rows]) if fields.grader == "auto" else fields.grader
        )
        for row in rows:
            row["grader"] = grader
            if grader == "numeric" and row["answer"] is not None:
                num = grading.parse_number(row["answer"])
                row["answer"] = grading.format_number(num) if num is not None else row["answer"]
    df = pl.from_dicts(rows, infer_schema_length=None).with_columns(
        pl.col("answer").cast(pl.String)
    )
    return validate(df, PROBLEMS, where)


def load_problems(
    source: str | Path,
    kind: str,
    options: DataOptions | None = None,
    fields: JsonlFields | None = None,
) -> pl.DataFrame:
    """Load a dataset into a problems frame (validated, not yet written).

    ``kind`` is ``gsm8k``, ``math`` or ``jsonl`` (with ``fields``).  ``source`` is a local file or
    an http(s) URL (downloaded once into the cache).  Steps: :func:`read_dataset`,
    :func:`problems_frame`.
    """
    options = options or DataOptions()
    options.check()
    _row_builder(kind, fields)  # a bad kind or grader fails before the source is read
    path, records = read_dataset(source, _read_limit(options, fields))
    options, fields, _ = resolve_fields(kind, records, options, fields)
    return problems_frame(records, kind, options, fields, str(path))


def write_problems(
    df: pl.DataFrame,
    out: Path,
    kind: str,
    source: str | Path,
    local: Path,
    options: DataOptions,
    fields: JsonlFields | None = None,
) -> None:
    """Write ``problems.parquet`` atomically, with provenance.

    ``source`` is recorded as given; ``local`` (its resolved file) is fingerprinted.
    """
    params: dict[str, Any] = {
        "kind": kind,
        "source": str(source),
        "limit": options.limit,
        "test_frac": options.test_frac,
        "seed": options.seed,
        "id_field": options.id_field,
    }
    if fields is not None and kind == "jsonl":
        if fields.unlabeled:
            params["unlabeled"] = True
        if fields.from_samples:
            params["from_samples"] = True
        params.update(
            question_field=fields.question,
            answer_field=fields.answer,
            grader=fields.grader,
            meta_fields=list(fields.meta),
        )
    write_artifact(df, out, PROBLEMS, stage="data", params=params, inputs={"source": local})


def summarize_problems(df: pl.DataFrame, out: Path, kind: str) -> DataResult:
    """Counts per split and per grader of a problems frame."""
    counts = df["split"].value_counts()
    by_split = dict(zip(counts["split"].to_list(), counts["count"].to_list(), strict=True))
    graders = df["grader"].value_counts()
    return DataResult(
        out=Path(out),
        kind=kind,
        problems=df.height,
        train=int(by_split.get("train", 0)),
        test=int(by_split.get("test", 0)),
        grader_counts=dict(
            zip(graders["grader"].to_list(), graders["count"].to_list(), strict=True)
        ),
    )


def build_problems(
    source: str | Path,
    out: Path,
    kind: str,
    options: DataOptions | None = None,
    fields: JsonlFields | None = None,
) -> DataResult:
    """Build ``problems.parquet`` from a dataset and write it atomically.

    Args:
        source: a local JSONL/JSON/CSV/Parquet file or an http(s) URL.
        out: where to write the problems artifact.
        kind: ``gsm8k`` (gold = the number after ``####``), ``math`` (gold = ``answer``, else the
            last ``\\boxed{}`` of ``solution``; level and subject kept) or ``jsonl`` (fields named
            by ``fields``; ``fields.from_samples``: a samples file, one problem per id).
        options: limit, test fraction, split seed, id field.
        fields: for ``jsonl``: question, answer and metadata field names, and the grader.

    Returns:
        A :class:`DataResult` with counts per split.
    """
    options = options or DataOptions()
    options.check()
    _row_builder(kind, fields)  # a bad kind or grader fails before the source is read
    src = sources.resolve(source)
    check_output(out, {"source": src})
    path, records = read_dataset(src, _read_limit(options, fields))
    options, fields, found = resolve_fields(kind, records, options, fields)
    df = problems_frame(records, kind, options, fields, str(path))
    write_problems(df, out, kind, source, src, options, fields)
    result = replace(summarize_problems(df, out, kind), found_fields=found)
    if options.test_frac > 0 and result.test < TINY_TEST_SPLIT:
        warn(
            f"only {result.test} test problem(s) of {result.problems} (--test-frac "
            f"{options.test_frac:g}): evaluate's intervals will be too wide to tell policies "
            f"apart; add problems or raise --test-frac (at least {TINY_TEST_SPLIT} is a minimum)"
        )
    return result
