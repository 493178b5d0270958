"""The samples' grades: the file's own, checked on a seeded sample of rows, or ttcalloc's.

A file with its own ``correct`` column keeps it, and ttcalloc's grader checks it on a seeded
sample of ``check_rows`` of its graded rows (all of them when there are no more): grading a
MATH file's every answer with math-verify takes minutes (each distinct LaTeX string is parsed),
and the grades are the file's anyway.  ``regrade`` grades every row with ttcalloc's grader and
uses those grades.  Rows the file leaves ungraded (null) are always graded by ttcalloc.  Pure,
on DataFrames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.common.errors import DataError
from ttcalloc.text import batch

if TYPE_CHECKING:
    import polars as pl

EXAMPLES = 20  # disagreements kept as examples


@dataclass(frozen=True)
class Grading:
    """Who graded the samples and, when the file had grades, how often they agree with ours.

    ``checked`` of the file's ``file_graded`` rows were compared with ttcalloc's grader (all of
    them with ``regrade``, else a seeded sample); ``agreement`` is over the checked rows, with a
    95% Wilson interval when they are a sample.
    """

    graded_by: str = "ttcalloc"
    file_graded: int | None = None
    checked: int | None = None
    agreement: float | None = None
    agreement_interval: tuple[float, float] | None = None
    disagreements: int | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sampled(self) -> bool:
        """Whether only a sample of the file's graded rows was checked."""
        return self.checked is not None and self.checked < (self.file_graded or 0)

    def record(self) -> dict[str, Any]:
        """What the artifact's provenance keeps of the grading (no examples)."""
        return {
            "graded_by": self.graded_by,
            "file_graded_rows": self.file_graded,
            "checked_rows": self.checked,
            "agreement": self.agreement,
            "agreement_interval": list(self.agreement_interval)
            if self.agreement_interval
            else None,
            "disagreements": self.disagreements,
        }


def grade(
    df: pl.DataFrame,
    raw: pl.DataFrame,
    corr_col: str | None,
    *,
    regrade: bool,
    check_rows: int,
    seed: int,
    path: Path,
) -> tuple[pl.DataFrame, Grading]:
    """Adds ``correct`` to ``df`` (``pred_answer``, ``answer``, ``grader`` per row of ``raw``).

    Without a file grade column (``corr_col`` None) every row is graded by ttcalloc.  With one,
    the file's grades are kept (``regrade``: ttcalloc's are used) and ttcalloc grades the rows
    the file leaves null, plus ``check_rows`` of the others drawn with ``seed`` (every one with
    ``regrade``) to measure the agreement.
    """
    import polars as pl

    if corr_col is None:
        return _with_ours(df, None).rename({"ours": "correct"}), Grading()
    theirs = _file_grades(raw[corr_col], corr_col, path)
    df = df.with_columns(theirs.alias("theirs"))
    has = theirs.is_not_null().to_numpy()
    checked = has.copy() if regrade else _seeded_subset(has, check_rows, seed)
    df = _with_ours(df, pl.Series(checked | ~has))
    compared = df.filter(pl.Series(checked))
    differ = compared.filter(pl.col("theirs") != pl.col("ours"))
    agreement = 1.0 - differ.height / compared.height if compared.height else None
    sampled = compared.height < int(has.sum())
    found = Grading(
        graded_by="ttcalloc" if regrade or not has.any() else f"file column {corr_col!r}",
        file_graded=int(has.sum()),
        checked=compared.height,
        agreement=agreement,
        agreement_interval=_wilson(compared.height - differ.height, compared.height)
        if sampled and compared.height
        else None,
        disagreements=differ.height,
        examples=differ.select("problem_id", "pred_answer", "answer", "theirs", "ours")
        .rename({"answer": "gold"})
        .head(EXAMPLES)
        .to_dicts(),
    )
    correct = pl.col("ours") if regrade else pl.coalesce("theirs", "ours")
    return df.with_columns(correct.alias("correct")).drop("theirs", "ours"), found


def _file_grades(theirs: pl.Series, corr_col: str, path: Path) -> pl.Series:
    import polars as pl

    if theirs.dtype == pl.Boolean:
        return theirs
    grades: pl.Series
    if theirs.dtype == pl.Null:  # a column with no grade at all
        grades = theirs.cast(pl.Boolean)
        return grades
    if theirs.dtype.is_numeric():
        grades = theirs.cast(pl.Int64).cast(pl.Boolean)
        return grades
    raise DataError(f"{path}: column {corr_col!r} is not boolean (true/false or 0/1)")


def _seeded_subset(eligible: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A mask of ``size`` of the ``eligible`` rows drawn with ``seed`` (all when not more)."""
    where = np.flatnonzero(eligible)
    mask = np.zeros(eligible.shape[0], dtype=bool)
    if where.size <= size:
        mask[where] = True
    elif size > 0:
        mask[np.random.default_rng(seed).choice(where, size=size, replace=False)] = True
    return mask


def _with_ours(df: pl.DataFrame, rows: pl.Series | None) -> pl.DataFrame:
    """Adds ``ours``: ttcalloc's grade of the ``rows`` (a mask; None: all), null elsewhere.

    Each distinct (answer, gold, grader) is graded once (:func:`batch.grade_many`).
    """
    import polars as pl

    keys = ["pred_answer", "answer", "grader"]
    todo = df if rows is None else df.filter(rows)
    pairs = todo.select(keys).unique()
    grades = pairs.with_columns(pl.Series("ours", batch.grade_many(pairs.rows()), dtype=pl.Boolean))
    graded = df.join(grades, on=keys, how="left", nulls_equal=True, maintain_order="left")
    if rows is None:
        return graded
    return graded.with_columns(pl.when(rows).then(pl.col("ours")).alias("ours"))


def _wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion ``successes / n`` (n > 0)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
