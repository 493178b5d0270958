"""The answers of ``run``: majority votes, the uniform comparison, and ``answers.parquet``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.artifacts.io import write_artifact
from ttcalloc.artifacts.schemas import ANSWERS
from ttcalloc.common.hashing import seeded_unit
from ttcalloc.common.wording import alike, compared
from ttcalloc.core.vote import majority, paired_difference, uniform_counts
from ttcalloc.stages.run.items import Got, Item, decisions_json
from ttcalloc.text import grading

if TYPE_CHECKING:
    import polars as pl


def vote(got: list[Got]) -> str | None:
    """The raw answer of the first sample in the winning cluster (None: no answer)."""
    label = majority([g.label for g in got])
    return next((g.pred for g in got if g.label == label), None) if label is not None else None


def correct(answer: str | None, item: Item) -> bool | None:
    gold = item.problem.get("answer")
    if gold is None:
        return None
    return grading.is_correct(answer, gold, item.problem["grader"])


def uniform_plan(items: list[Item], cap: int, seed: int) -> dict[str, int]:
    """Samples per question for uniform at the policy's realized mean number of samples."""
    mean = float(np.mean([len(it.used) for it in items])) if items else 1.0
    keys = np.array([seeded_unit("uniform", seed, it.pid) for it in items])
    counts = uniform_counts(keys, mean, cap)
    return {it.pid: int(c) for it, c in zip(items, counts, strict=True)}


def rows(
    items: list[Item], uniform: dict[str, int] | None, models: bool = False
) -> list[dict[str, Any]]:
    """One answers row per question; ``models`` (a policy over several models): with the
    model its samples came from and their dollars (null when a sample's is unknown)."""
    out = []
    for it in items:
        used = [it.got[i] for i in it.used if i in it.got]
        final = vote(used)
        row: dict[str, Any] = {
            "problem_id": it.pid,
            "question": it.problem["question"],
            "final_answer": final,
            "samples": len(used) + len(it.earlier),  # a cascade's earlier models' samples too
            "failed": len(it.failed - set(it.got)),
            "cost": float(sum(g.cost for g in [*used, *it.earlier])),
            "action": it.action,
            "decisions": decisions_json(it),
            "complete": not it.cut,
            "gold": it.problem.get("answer"),
            "correct": correct(final, it),
        }
        if models:
            usd = [g.usd for g in [*used, *it.earlier]]
            row |= {
                "model": it.model,
                "cost_usd": None if any(u is None for u in usd) else float(sum(usd)),  # type: ignore[arg-type]
            }
        if uniform is not None:
            k = uniform[it.pid]
            u = [it.got[i] for i in sorted(it.got)[:k]]
            ans = vote(u)
            row |= {
                "uniform_answer": ans,
                "uniform_samples": len(u),
                "uniform_correct": correct(ans, it),
            }
        out.append(row)
    return out


SAME = "same on every question"  # the comparison's verdict when both scored alike everywhere


def compare(table: list[dict[str, Any]], seed: int) -> dict[str, Any] | None:
    """Both accuracies on the labeled questions and the paired interval of the difference."""
    lab = [r for r in table if r["gold"] is not None and r.get("uniform_samples") is not None]
    if not lab:
        return None
    a = np.array([float(bool(r["correct"])) for r in lab])
    b = np.array([float(bool(r["uniform_correct"])) for r in lab])
    diff, lo, hi = paired_difference(a, b, seed=seed)
    return {
        "questions": len(lab),
        "policy_accuracy": float(a.mean()),
        "uniform_accuracy": float(b.mean()),
        "policy_samples": float(np.mean([r["samples"] for r in lab])),
        "uniform_samples": float(np.mean([r["uniform_samples"] for r in lab])),
        "difference": diff,
        "interval": [lo, hi],
        "verdict": SAME if alike(diff, lo, hi) else f"{compared(lo, hi)} uniform",
    }


def write_answers(
    table: list[dict[str, Any]],
    out: Path,
    params: dict[str, Any],
    inputs: dict[str, Path],
    extra: dict[str, Any],
) -> pl.DataFrame:
    import polars as pl

    df = pl.DataFrame(
        table,
        schema_overrides={
            "final_answer": pl.String,
            "gold": pl.String,
            "correct": pl.Boolean,
            "uniform_answer": pl.String,
            "uniform_samples": pl.Int64,
            "uniform_correct": pl.Boolean,
            "model": pl.String,
            "cost_usd": pl.Float64,
        },
        infer_schema_length=None,
    )
    write_artifact(df, out, ANSWERS, stage="run", params=params, inputs=inputs, extra_meta=extra)
    return df
