"""``ttcalloc import``: bring samples someone already has into the samples schema.

Input is JSONL, JSON, CSV or Parquet with one row per sample.  Column names are found
automatically among common spellings or mapped explicitly.  Answers are normalized and graded
against the problems' gold answers with the problem's grader; when the file has its own
``correct`` column it is kept (use ``regrade`` to use ttcalloc's grades) and the agreement
between the two is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.artifacts import sources
from ttcalloc.artifacts.io import read_artifact, write_artifact
from ttcalloc.artifacts.schemas import PROBLEMS, SAMPLES
from ttcalloc.common.console import warn
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.text import grading

if TYPE_CHECKING:
    import polars as pl

# Column spellings tried, in order, when a field is not mapped explicitly.
ALIASES: dict[str, tuple[str, ...]] = {
    "problem_id": ("problem_id", "id", "idx", "question_id"),
    "pred_answer": (
        "pred_answer",
        "predicted_answer",
        "prediction",
        "pred",
        "extracted_answer",
        "answer",
    ),
    "sample_idx": ("sample_idx", "sample_id", "sample"),
    "model": ("model", "model_name"),
    "correct": ("correct", "is_correct", "label"),
    "response": ("response", "completion", "output", "generation", "text"),
    "prompt_tokens": ("prompt_tokens",),
    "completion_tokens": ("completion_tokens", "output_tokens"),
    "cost_usd": ("cost_usd", "cost"),
}
FLAG = {
    "problem_id": "--id-field",
    "pred_answer": "--answer-field",
    "sample_idx": "--sample-idx-field",
    "model": "--model-field",
    "correct": "--correct-field",
    "response": "--response-field",
    "prompt_tokens": "--prompt-tokens-field",
    "completion_tokens": "--completion-tokens-field",
    "cost_usd": "--cost-field",
}


@dataclass(frozen=True)
class ImportOptions:
    """How to read a samples file.

    ``fields`` maps a samples column (``pred_answer``, ``sample_idx``, ...) to the input column
    holding it; unmapped ones are looked up among :data:`ALIASES`.  An empty string maps a field
    to nothing (e.g. ignore the file's ``correct`` column).
    """

    fields: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    regrade: bool = False
    format: str | None = None


@dataclass(frozen=True)
class ImportResult:
    """What ``import_samples`` wrote, with the grading agreement when the file had grades."""

    out: Path
    samples: int
    problems: int
    models: dict[str, int]
    no_answer: int
    accuracy: float
    columns: dict[str, str | None]
    renumbered: bool
    graded_by: str
    agreement: float | None = None
    disagreements: int | None = None
    disagreement_examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "samples": self.samples,
            "problems": self.problems,
            "models": self.models,
            "no_answer": self.no_answer,
            "accuracy": self.accuracy,
            "columns": self.columns,
            "renumbered_sample_idx": self.renumbered,
            "graded_by": self.graded_by,
            "agreement_with_file": self.agreement,
            "disagreements": self.disagreements,
            "disagreement_examples": self.disagreement_examples,
        }


def _resolve_columns(df: pl.DataFrame, options: ImportOptions, path: Path) -> dict[str, str | None]:
    unknown = set(options.fields) - set(ALIASES)
    if unknown:
        raise InputError(f"unknown samples field(s): {', '.join(sorted(unknown))}")
    resolved: dict[str, str | None] = {}
    for target, aliases in ALIASES.items():
        explicit = options.fields.get(target)
        if explicit == "":
            resolved[target] = None
        elif explicit is not None:
            if explicit not in df.columns:
                raise InputError(
                    f"{FLAG[target]} {explicit!r}: no such column in {path} "
                    f"(columns: {', '.join(df.columns)})"
                )
            resolved[target] = explicit
        else:
            resolved[target] = next((a for a in aliases if a in df.columns), None)
    if resolved["problem_id"] is None:
        raise DataError(
            f"{path}: no problem id column (tried {', '.join(ALIASES['problem_id'])}; "
            "map one with --id-field)"
        )
    if resolved["pred_answer"] is None and resolved["response"] is None:
        raise DataError(
            f"{path}: no answer column (tried {', '.join(ALIASES['pred_answer'])}; "
            "map one with --answer-field, or give --response-field to extract answers)"
        )
    return resolved


def _as_text_ids(series: pl.Series) -> pl.Series:
    """Problem ids as strings: integers (also integral floats) without a decimal point."""
    import polars as pl

    if series.dtype.is_float():
        finite = series.drop_nulls()
        if finite.len() and (finite != finite.round(0)).any():
            raise DataError("problem ids are fractional numbers")
        series = series.cast(pl.Int64)
    text: pl.Series = series.cast(pl.String).str.strip_chars()
    return text


def _answer_text(value: Any) -> str | None:
    if grading.is_no_answer(value):
        return None
    if isinstance(value, float):
        return grading.format_number(value) if value == value else None
    text = str(value).strip()
    return text or None


def import_samples(
    samples_path: Path, problems_path: Path, out: Path, options: ImportOptions | None = None
) -> ImportResult:
    """Import existing samples into ``samples.parquet``.

    Args:
        samples_path: JSONL, JSON, CSV or Parquet file (or a folder of Parquet parts), one row per
            sample.  Required: a problem id and a predicted answer (or a response text to extract
            it from); optional: sample index, model, correct, response, token counts, cost.
        problems_path: the problems artifact (``ttcalloc data``); ids are compared as strings.
        out: where to write the samples artifact.
        options: column mapping, model name for files without a model column, regrading.

    Returns:
        An :class:`ImportResult` (counts, accuracy, agreement with the file's own grades).
    """
    import polars as pl

    options = options or ImportOptions()
    samples_path = Path(samples_path)
    problems = read_artifact(problems_path, PROBLEMS).df
    path = sources.resolve(samples_path)
    raw = sources.read_frame(path, options.format)
    if raw.height == 0:
        raise DataError(f"{path}: no samples found (empty file)")
    cols = _resolve_columns(raw, options, path)

    pid_col = cols["problem_id"]
    assert pid_col is not None
    if raw[pid_col].null_count():
        raise DataError(f"{path}: column {pid_col!r} has missing problem ids")
    try:
        pids = _as_text_ids(raw[pid_col])
    except DataError as exc:
        raise DataError(f"{path}: column {pid_col!r}: {exc}") from exc
    known = problems.select("problem_id", "answer", "grader")
    unknown = pids.filter(~pids.is_in(known["problem_id"].implode())).unique().sort()
    if unknown.len():
        raise DataError(
            f"{path}: {unknown.len()} problem_id(s) not in {problems_path} "
            f"(e.g. {', '.join(repr(x) for x in unknown.head(3).to_list())}); "
            "were the problems built from the same file, with the same --id-field?"
        )

    df = pl.DataFrame({"problem_id": pids})
    model_col = cols["model"]
    model_name = options.model or path.name.split(".")[0]
    df = df.with_columns(
        (raw[model_col].cast(pl.String) if model_col else pl.lit(model_name)).alias("model")
    )
    if df["model"].null_count():
        raise DataError(f"{path}: column {model_col!r} has missing model names")

    resp_col = cols["response"]
    df = df.with_columns(
        (raw[resp_col].cast(pl.String) if resp_col else pl.lit(None, pl.String)).alias("response")
    )
    df = df.join(known, on="problem_id", how="left", maintain_order="left")

    ans_col = cols["pred_answer"]
    if ans_col is not None:
        answers = [_answer_text(v) for v in raw[ans_col].to_list()]
    else:
        answers = [
            grading.extract_answer(r, g)
            for r, g in zip(df["response"].to_list(), df["grader"].to_list(), strict=True)
        ]
    normalized = [
        grading.normalize(a, g) if g == "numeric" else a
        for a, g in zip(answers, df["grader"].to_list(), strict=True)
    ]
    df = df.with_columns(pl.Series("pred_answer", normalized, dtype=pl.String))

    pairs = df.select("pred_answer", "answer", "grader").unique()
    grades = pairs.with_columns(
        pl.Series(
            "ours",
            [
                grading.is_correct(p, a, g)
                for p, a, g in pairs.select("pred_answer", "answer", "grader").iter_rows()
            ],
            dtype=pl.Boolean,
        )
    )
    df = df.join(
        grades,
        on=["pred_answer", "answer", "grader"],
        how="left",
        nulls_equal=True,
        maintain_order="left",
    )

    agreement: float | None = None
    n_disagree: int | None = None
    examples: list[dict[str, Any]] = []
    graded_by = "ttcalloc"
    corr_col = cols["correct"]
    if corr_col is not None:
        theirs = raw[corr_col]
        if theirs.dtype != pl.Boolean:
            if theirs.dtype.is_numeric():
                theirs = theirs.cast(pl.Int64).cast(pl.Boolean)
            else:
                raise DataError(f"{path}: column {corr_col!r} is not boolean (true/false or 0/1)")
        df = df.with_columns(theirs.alias("theirs"))
        comparable = df.filter(pl.col("theirs").is_not_null())
        differ = comparable.filter(pl.col("theirs") != pl.col("ours"))
        n_disagree = differ.height
        agreement = 1.0 - differ.height / comparable.height if comparable.height else None
        examples = (
            differ.select("problem_id", "pred_answer", "answer", "theirs", "ours")
            .rename({"answer": "gold"})
            .head(20)
            .to_dicts()
        )
        if not options.regrade:
            graded_by = f"file column {corr_col!r}"
            df = df.with_columns(pl.coalesce("theirs", "ours").alias("correct"))
        else:
            df = df.with_columns(pl.col("ours").alias("correct"))
    else:
        df = df.with_columns(pl.col("ours").alias("correct"))

    renumbered = False
    idx_col = cols["sample_idx"]
    order = pl.int_range(pl.len()).over("problem_id", "model")
    if idx_col is not None:
        idx = raw[idx_col]
        if not idx.dtype.is_integer() or idx.null_count():
            raise DataError(f"{path}: column {idx_col!r} must be whole numbers with no gaps")
        df = df.with_columns(idx.cast(pl.Int64).alias("sample_idx"))
        if df.select("problem_id", "model", "sample_idx").is_duplicated().any():
            renumbered = True
            warn(
                f"{path}: {idx_col!r} repeats within (problem_id, model); numbering samples "
                "by row order instead (map another column with --sample-idx-field)"
            )
            df = df.with_columns(order.alias("sample_idx"))
    else:
        df = df.with_columns(order.alias("sample_idx"))

    for target in ("prompt_tokens", "completion_tokens"):
        col = cols[target]
        values = raw[col] if col else pl.Series(target, [None] * raw.height, dtype=pl.Int64)
        if values.dtype == pl.Null or values.dtype.is_numeric():
            df = df.with_columns(values.cast(pl.Float64).round(0).cast(pl.Int64).alias(target))
        else:
            raise DataError(f"{path}: column {col!r} ({target}) is not numeric")
    cost_col = cols["cost_usd"]
    cost = raw[cost_col] if cost_col else pl.Series("cost_usd", [None] * raw.height)
    if not (cost.dtype == pl.Null or cost.dtype.is_numeric()):
        raise DataError(f"{path}: column {cost_col!r} (cost) is not numeric")
    df = df.with_columns(cost.cast(pl.Float64).alias("cost_usd"))

    out_df = df.drop("answer", "grader", "ours", "theirs", strict=False)
    params = {
        "columns": cols,
        "model": options.model,
        "regrade": options.regrade,
        "format": options.format,
    }
    written = write_artifact(
        out_df,
        out,
        SAMPLES,
        stage="import",
        params=params,
        inputs={"samples": path, "problems": Path(problems_path)},
    )
    models = written["model"].value_counts(sort=True)
    return ImportResult(
        out=Path(out),
        samples=written.height,
        problems=written["problem_id"].n_unique(),
        models=dict(zip(models["model"].to_list(), models["count"].to_list(), strict=True)),
        no_answer=int(written["pred_answer"].null_count()),
        accuracy=float(written["correct"].cast(pl.Float64).mean() or 0.0),
        columns=cols,
        renumbered=renumbered,
        graded_by=graded_by,
        agreement=agreement,
        disagreements=n_disagree,
        disagreement_examples=examples,
    )
