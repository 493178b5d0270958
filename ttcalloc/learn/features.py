"""Cheap input features computed from a problem alone (no model call), grouped for ``--features``.

Every feature is documented in :data:`FEATURES`; the list is stored in policy.json so a trained
policy recomputes exactly what it was trained on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.common.errors import DataError, InputError

if TYPE_CHECKING:
    import polars as pl

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z]+")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_LATEX = re.compile(r"\\[A-Za-z]+")
_SENTENCE = re.compile(r"[.!?](?:\s|$)")
_QWORDS = ("how many", "how much", "what", "which", "find", "compute", "prove", "show")


@dataclass(frozen=True)
class Feature:
    name: str
    group: str
    doc: str
    fn: Callable[[str, Mapping[str, Any]], float]


def _numbers(q: str) -> list[float]:
    out = []
    for m in _NUMBER.findall(q):
        try:
            out.append(float(m.replace(",", "")))
        except ValueError:
            continue
    return out


def _max_log10(q: str, _m: Mapping[str, Any]) -> float:
    nums = [abs(x) for x in _numbers(q)]
    return math.log10(1 + max(nums)) if nums else 0.0


def _meta_num(key: str) -> Callable[[str, Mapping[str, Any]], float]:
    def get(_q: str, meta: Mapping[str, Any]) -> float:
        value = meta.get(key)
        try:
            return float(value) if value is not None else math.nan
        except (TypeError, ValueError):
            return math.nan

    return get


FEATURES: list[Feature] = [
    Feature("chars", "text", "characters in the question", lambda q, m: float(len(q))),
    Feature("log_chars", "text", "log(1 + characters)", lambda q, m: math.log1p(len(q))),
    Feature("words", "text", "words (letter runs)", lambda q, m: float(len(_WORD.findall(q)))),
    Feature(
        "tokens",
        "text",
        "word and punctuation tokens (a tokenizer-free proxy)",
        lambda q, m: float(len(_TOKEN.findall(q))),
    ),
    Feature(
        "sentences",
        "text",
        "sentence ends (. ! ?)",
        lambda q, m: float(len(_SENTENCE.findall(q)) or 1),
    ),
    Feature(
        "question_words",
        "text",
        "occurrences of how many/how much/what/which/find/compute/prove/show",
        lambda q, m: float(sum(q.lower().count(w) for w in _QWORDS)),
    ),
    Feature("numbers", "numbers", "numbers in the question", lambda q, m: float(len(_numbers(q)))),
    Feature(
        "distinct_numbers", "numbers", "distinct numbers", lambda q, m: float(len(set(_numbers(q))))
    ),
    Feature("max_log10", "numbers", "log10(1 + largest absolute number)", _max_log10),
    Feature(
        "decimals",
        "numbers",
        "numbers with a decimal point",
        lambda q, m: float(sum("." in x for x in _NUMBER.findall(q))),
    ),
    Feature(
        "digits", "numbers", "digit characters", lambda q, m: float(sum(c.isdigit() for c in q))
    ),
    Feature(
        "operators",
        "symbols",
        "arithmetic and relation symbols + - * / = ^ < > %",
        lambda q, m: float(sum(q.count(c) for c in "+-*/=^<>%")),
    ),
    Feature(
        "latex_commands",
        "symbols",
        "LaTeX commands (\\frac, \\sqrt, ...)",
        lambda q, m: float(len(_LATEX.findall(q))),
    ),
    Feature(
        "dollar_math", "symbols", "$ signs (inline math or money)", lambda q, m: float(q.count("$"))
    ),
    Feature("level", "meta", "dataset difficulty level (NaN when absent)", _meta_num("level")),
]
GROUPS = ("text", "numbers", "symbols", "meta")
DEFAULT_GROUPS = GROUPS


def select(groups: tuple[str, ...]) -> list[Feature]:
    """The features of the given groups, in a fixed order."""
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise InputError(f"--features {unknown[0]!r}: expected groups among {', '.join(GROUPS)}")
    return [f for f in FEATURES if f.group in groups]


def by_names(names: list[str]) -> list[Feature]:
    """Features by name (as stored in policy.json)."""
    index = {f.name: f for f in FEATURES}
    missing = [n for n in names if n not in index]
    if missing:
        raise InputError(f"policy uses feature {missing[0]!r}, unknown to this ttcalloc version")
    return [index[n] for n in names]


def subject_code(subjects: list[str], value: Any) -> float:
    """Index of a subject in the training vocabulary (NaN when unseen or absent)."""
    if value is None or value not in subjects:
        return math.nan
    return float(subjects.index(value))


def matrix(
    features: list[Feature],
    questions: Sequence[str],
    metas: Sequence[Mapping[str, Any]],
    subjects: list[str] | None = None,
) -> np.ndarray:
    """Feature matrix (rows: problems); a subject column is appended when ``subjects`` is given."""
    cols = len(features) + (1 if subjects is not None else 0)
    out = np.empty((len(questions), cols), dtype=np.float64)
    for i, (q, m) in enumerate(zip(questions, metas, strict=True)):
        for j, f in enumerate(features):
            out[i, j] = f.fn(q, m)
        if subjects is not None:
            out[i, -1] = subject_code(subjects, m.get("subject"))
    return out


def docs_table() -> str:
    """Markdown table of every feature (for the docs)."""
    lines = ["| feature | group | meaning |", "|---|---|---|"]
    lines += [f"| `{f.name}` | {f.group} | {f.doc} |" for f in FEATURES]
    lines.append(
        "| `subject` | meta | index of the subject in the training vocabulary (NaN if unseen) |"
    )
    return "\n".join(lines) + "\n"


META_COLUMNS = ("level", "subject")


def _metas(problems: pl.DataFrame) -> list[dict[str, Any]]:
    cols = [c for c in META_COLUMNS if c in problems.columns]
    return problems.select(cols).to_dicts() if cols else [{}] * problems.height


def for_problems(
    groups: Sequence[str], problems: pl.DataFrame
) -> tuple[list[Feature], list[str] | None, list[dict[str, Any]]]:
    """The groups' features minus metadata these (training) problems lack, the subjects seen
    (None unless the meta group is on and problems have subjects), and each problem's metadata."""
    chosen = select(tuple(groups))
    has_level = "level" in problems.columns and problems["level"].null_count() < problems.height
    chosen = [f for f in chosen if f.name != "level" or has_level]
    subjects = None
    if (
        "meta" in groups
        and "subject" in problems.columns
        and problems["subject"].null_count() < problems.height
    ):
        subjects = sorted(set(problems["subject"].drop_nulls().to_list()))
    return chosen, subjects, _metas(problems)


def problem_metas(
    names: Sequence[str], subjects: list[str] | None, problems: pl.DataFrame, source: Path
) -> list[dict[str, Any]]:
    """Each problem's metadata for a trained policy's features; fails when one it needs is
    absent from every problem."""
    needs = [c for c in ("level",) if c in names]
    if subjects is not None:
        needs.append("subject")
    for col in needs:
        if col not in problems.columns or problems[col].null_count() == problems.height:
            raise DataError(
                f"{source}: the policy was trained with feature {col!r}, which these "
                "problems lack (train without the meta feature group, or give problems with it)"
            )
    return _metas(problems)
