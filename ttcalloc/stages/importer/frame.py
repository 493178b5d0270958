"""The samples table of a file's rows, graded against the problems: pure, on DataFrames.

Column lookup (explicit mapping, else :data:`ALIASES`), problem ids as text, predicted answers
(the file's, else extracted from responses), the grades
(:mod:`~ttcalloc.stages.importer.grades`), sample indices, token counts, lengths, costs and
log-probs.  Nothing here reads or writes files (the
inputs' paths only name them in messages); the one side effect is a warning when sample indices
are renumbered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.common.console import warn
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.stages.importer import grades
from ttcalloc.stages.importer.grades import Grading
from ttcalloc.stages.importer.options import ALIASES, FLAG, ImportOptions
from ttcalloc.text import grading
from ttcalloc.text.variants import guess_kind

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class Imported:
    """The samples table built from a file, and what the import found out on the way."""

    samples: pl.DataFrame
    columns: dict[str, str | None]
    renumbered: bool
    grading: Grading
    variants: dict[str, str] = field(default_factory=dict)  # prompt variant -> text or program
    ignored: list[str] = field(default_factory=list)  # the file's columns read as no field


def samples_frame(
    raw: pl.DataFrame,
    problems: pl.DataFrame,
    options: ImportOptions,
    source: Path,
    problems_source: Path,
) -> Imported:
    """The samples table of ``raw`` (a file's rows), graded against ``problems``; no file IO.

    ``source`` and ``problems_source`` only name the inputs in error messages.
    """
    import polars as pl

    cols = _resolve_columns(raw, options, source)
    known = problems.select("problem_id", "answer", "grader")
    if options.grader is not None:  # --grader: instead of each problem's own
        known = known.with_columns(pl.lit(options.grader).alias("grader"))
    pids = _problem_ids(raw, cols, source)
    _check_known(pids, known, source, problems_source)
    df = _identify(raw, pids, cols, options, source).join(
        known, on="problem_id", how="left", maintain_order="left"
    )
    df = df.with_columns(pl.Series("pred_answer", _pred_answers(raw, df, cols), dtype=pl.String))
    df, found = grades.grade(
        df,
        raw,
        cols["correct"],
        regrade=options.regrade,
        check_rows=options.check_rows,
        seed=options.check_seed,
        path=source,
    )
    df, renumbered = _sample_idx(df, raw, cols, source)
    df = _usage(df, raw, cols, source)
    df, kinds = _variants(df, raw, cols["prompt_variant"], options, source)
    return Imported(
        samples=df.drop("answer", "grader"),
        columns=cols,
        renumbered=renumbered,
        grading=found,
        variants=kinds,
        ignored=[c for c in raw.columns if c not in set(cols.values())],
    )


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
    _note_unread_tokens(df, resolved, path)
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


# columns that hold token counts of an unknown kind (completion, or prompt and completion)
UNREAD_TOKENS = ("tokens", "num_tokens", "n_tokens", "total_tokens")


def _note_unread_tokens(df: pl.DataFrame, resolved: dict[str, str | None], path: Path) -> None:
    """Warn (one line) when no token counts are read but a column holds some whose kind the
    name does not say: costs will then be estimated from characters."""
    if resolved["completion_tokens"] is not None or resolved["prompt_tokens"] is not None:
        return
    for name in UNREAD_TOKENS:
        if name in df.columns and df[name].drop_nulls().len() > 0:
            warn(
                f"{path}: column {name!r} is not read as token counts (completion or total?); "
                f"if it counts completion tokens, give --completion-tokens-field {name}"
            )
            return


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


def _problem_ids(raw: pl.DataFrame, cols: dict[str, str | None], path: Path) -> pl.Series:
    pid_col = cols["problem_id"]
    assert pid_col is not None
    if raw[pid_col].null_count():
        raise DataError(f"{path}: column {pid_col!r} has missing problem ids")
    try:
        return _as_text_ids(raw[pid_col])
    except DataError as exc:
        raise DataError(f"{path}: column {pid_col!r}: {exc}") from exc


def _check_known(pids: pl.Series, known: pl.DataFrame, path: Path, problems_path: Path) -> None:
    unknown = pids.filter(~pids.is_in(known["problem_id"].implode())).unique().sort()
    if unknown.len():
        raise DataError(
            f"{path}: {unknown.len()} problem_id(s) not in {problems_path} "
            f"(e.g. {', '.join(repr(x) for x in unknown.head(3).to_list())}); "
            "were the problems built from the same file, with the same --id-field?"
        )


def _identify(
    raw: pl.DataFrame,
    pids: pl.Series,
    cols: dict[str, str | None],
    options: ImportOptions,
    path: Path,
) -> pl.DataFrame:
    """problem_id, model (the column, else ``--model``, else the file name) and response."""
    import polars as pl

    df = pl.DataFrame({"problem_id": pids})
    model_col = cols["model"]
    model_name = options.model or path.name.split(".")[0]
    df = df.with_columns(
        (raw[model_col].cast(pl.String) if model_col else pl.lit(model_name)).alias("model")
    )
    if df["model"].null_count():
        raise DataError(f"{path}: column {model_col!r} has missing model names")
    resp_col = cols["response"]
    return df.with_columns(
        (raw[resp_col].cast(pl.String) if resp_col else pl.lit(None, pl.String)).alias("response")
    )


def _pred_answers(
    raw: pl.DataFrame, df: pl.DataFrame, cols: dict[str, str | None]
) -> list[str | None]:
    """Predicted answers (the column, else extracted from responses), numeric ones normalized."""
    ans_col = cols["pred_answer"]
    if ans_col is not None:
        answers = [_answer_text(v) for v in raw[ans_col].to_list()]
    else:
        answers = [
            grading.extract_answer(r, g)
            for r, g in zip(df["response"].to_list(), df["grader"].to_list(), strict=True)
        ]
    return [
        grading.normalize(a, g) if g == "numeric" else a
        for a, g in zip(answers, df["grader"].to_list(), strict=True)
    ]


def _sample_idx(
    df: pl.DataFrame, raw: pl.DataFrame, cols: dict[str, str | None], path: Path
) -> tuple[pl.DataFrame, bool]:
    """Adds sample_idx: the file's, or row order within (problem_id, model) if it has none or
    repeats one (then also True, with a warning)."""
    import polars as pl

    idx_col = cols["sample_idx"]
    order = pl.int_range(pl.len()).over("problem_id", "model")
    if idx_col is None:
        return df.with_columns(order.alias("sample_idx")), False
    idx = raw[idx_col]
    if not idx.dtype.is_integer() or idx.null_count():
        raise DataError(f"{path}: column {idx_col!r} must be whole numbers with no gaps")
    df = df.with_columns(idx.cast(pl.Int64).alias("sample_idx"))
    if not df.select("problem_id", "model", "sample_idx").is_duplicated().any():
        return df, False
    warn(
        f"{path}: {idx_col!r} repeats within (problem_id, model); numbering samples "
        "by row order instead (map another column with --sample-idx-field)"
    )
    return df.with_columns(order.alias("sample_idx")), True


def _usage(
    df: pl.DataFrame, raw: pl.DataFrame, cols: dict[str, str | None], path: Path
) -> pl.DataFrame:
    """Adds prompt_tokens, completion_tokens, completion_chars (whole numbers), cost_usd and
    mean_logprob, null when absent (a NaN log-prob counts as absent)."""
    import polars as pl

    for target in ("prompt_tokens", "completion_tokens", "completion_chars"):
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
    lp_col = cols["mean_logprob"]
    logprob = raw[lp_col] if lp_col else pl.Series("mean_logprob", [None] * raw.height)
    if not (logprob.dtype == pl.Null or logprob.dtype.is_numeric()):
        raise DataError(f"{path}: column {lp_col!r} (mean log-prob) is not numeric")
    return df.with_columns(logprob.cast(pl.Float64).fill_nan(None).alias("mean_logprob"))


def _variants(
    df: pl.DataFrame,
    raw: pl.DataFrame,
    col: str | None,
    options: ImportOptions,
    path: Path,
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Adds prompt_variant (the file's column, else null) and answer_from (program for the
    variants ``--program-variants`` names, else for those whose names say so; text otherwise)."""
    import polars as pl

    if col is None:
        if options.program_variants:
            raise InputError(
                f"--program-variants: {path} has no prompt variant column (tried "
                f"{', '.join(ALIASES['prompt_variant'])}; map one with --variant-field)"
            )
        none = pl.lit(None, pl.String)
        return df.with_columns(none.alias("prompt_variant"), none.alias("answer_from")), {}
    names = raw[col].cast(pl.String)
    present = sorted(names.drop_nulls().unique().to_list())
    if not present:  # an empty column: one prompt
        return _variants(df, raw, None, options, path)
    if names.null_count():
        raise DataError(
            f"{path}: column {col!r} names no prompt variant on {names.null_count()} of "
            f"{len(names)} rows; give every row one (--variant-field '' ignores the column)"
        )
    bad = next((n for n in present if not n.strip() or "=" in n or "," in n), None)
    if bad is not None:
        raise DataError(
            f"{path}: column {col!r}: prompt variant {bad!r}: a name must be non-empty, without "
            "'=' or ',' (run takes --prompt-variant NAME=PROMPT)"
        )
    given = options.program_variants
    unknown = [n for n in given or () if n not in present]
    if unknown:
        raise InputError(
            f"--program-variants {unknown[0]!r}: not a prompt variant of {path} "
            f"(its variants: {', '.join(present)})"
        )
    kinds = {
        n: ("program" if n in given else "text") if given is not None else guess_kind(n)
        for n in present
    }
    kind = names.replace_strict(kinds, default=None, return_dtype=pl.String)
    return df.with_columns(names.alias("prompt_variant"), kind.alias("answer_from")), kinds
