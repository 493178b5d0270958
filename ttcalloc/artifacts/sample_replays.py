"""Recorded samples replayed in random orders, for sequential policies (train and evaluate).

The samples behind a curves artifact are re-read, labelled and split into the halves exactly as
``estimate`` did (from the curves' provenance), so a replay of a problem's fit (or eval) half
holds the same samples the curves of that half were estimated from.  Samples drawn with several
prompt variants are replayed taking the variants in turn, as ``run`` draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.artifacts.frames import (
    CORRECT,
    assign_halves,
    input_path,
    sample_cost,
    variant_index,
    vote_labels,
)
from ttcalloc.artifacts.io import check_known_ids, read_artifact
from ttcalloc.artifacts.prices import dollars_as_estimated
from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.core import replays as rp

if TYPE_CHECKING:
    import polars as pl

# per-sample values a sequential policy may use (from the samples' completion_tokens,
# completion_chars or response, and mean_logprob columns), in state order
SAMPLE_VALUES: dict[str, str] = {
    "tokens": "completion tokens",
    "chars": "completion characters",
    "mean_logprob": "mean token log-prob",
}


def describe_values(names: Sequence[str], available: Sequence[str] | None = None) -> str:
    """In words: the per-sample values a sequential policy's state holds, those training left
    out (``available`` but no out-of-fold gain), and those the samples lack."""
    available = names if available is None else available
    used = ", ".join(f"{n} ({SAMPLE_VALUES.get(n, 'unknown')})" for n in names) or "none"
    text = f"per-sample signals in the state (running means): {used}"
    dropped = [n for n in available if n not in names]
    if dropped:
        text += f"; left out, no out-of-fold gain: {', '.join(dropped)}"
    lacking = [n for n in SAMPLE_VALUES if n not in available]
    if lacking:
        text += f"; not in every training sample, so unused: {', '.join(lacking)}"
    return text


@dataclass(frozen=True)
class ReplayGroup:
    """Which problems, which half of their samples, and the seed of their orders."""

    ids: list[str]
    half: str
    seed: int


@dataclass(frozen=True)
class SampleReplays:
    """Replays of each requested group (None with a ``note`` when unavailable)."""

    replays: list[rp.Replays] | None
    note: str
    strategy: str  # "majority" or "pass": what the curves' actions combine
    sample_values: list[str]  # names of the per-sample values in ``Replays.extra``


def _values(samples: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Add ``_v_<name>`` columns for the per-sample values every sample has.

    A sample's characters are ``completion_chars``, else the length of its response (folders
    mixing parts written before and after ``completion_chars`` existed).
    """
    import polars as pl

    candidates = {
        "tokens": pl.col("completion_tokens"),
        "chars": pl.coalesce(pl.col("completion_chars"), pl.col("response").str.len_chars()),
        "mean_logprob": pl.col("mean_logprob"),
    }
    present = samples.select([e.is_not_null().all().alias(n) for n, e in candidates.items()]).row(
        0, named=True
    )
    exprs = {n: e.cast(pl.Float64) for n, e in candidates.items() if present[n]}
    names = [n for n in SAMPLE_VALUES if n in exprs]
    return samples.with_columns([exprs[n].alias(f"_v_{n}") for n in names]), names


def load_sample_replays(
    samples_path: Path,
    problems: pl.DataFrame,
    problems_path: Path,
    curves_meta: dict[str, Any],
    groups: list[ReplayGroup],
    orders: int,
) -> SampleReplays:
    """Replays of each group's samples, labelled, halved and costed as ``estimate`` did."""
    import polars as pl

    params = curves_meta.get("params", {})
    models = params.get("models") or []
    strategies = params.get("strategies") or ["majority"]
    strategy = "majority" if "majority" in strategies else "pass"
    samples = read_artifact(samples_path, SAMPLES).df
    samples = samples.filter(pl.col("correct").is_not_null() & pl.col("error").is_null())
    if models:
        samples = samples.filter(pl.col("model").is_in(models))
    if samples["model"].n_unique() != 1:
        return SampleReplays(
            None,
            "sequential policies are replayed for one model; the samples have several",
            strategy,
            [],
        )
    check_known_ids(samples, problems, samples_path, problems_path, "not the curves' samples?")
    if curves_meta.get("cost_unit") == "usd":  # priced by estimate: the same dollars again
        questions = problems.select("problem_id", "question")
        samples = dollars_as_estimated(samples, params, questions, "the curves' price table")
    # label only the problems replayed (labels, halves and costs are per problem)
    wanted = sorted({p for group in groups for p in group.ids})
    samples = samples.filter(pl.col("problem_id").is_in(wanted))
    # cluster wrong answers as estimate did: by the problems' graders only if it had them
    samples = vote_labels(samples, problems if input_path(curves_meta, "problems") else None)
    samples = assign_halves(samples, float(params.get("holdout", 0.0)), int(params.get("seed", 0)))
    unit = str(curves_meta.get("cost_unit", "samples"))
    each, once = sample_cost(unit, bool(params.get("prompt_once")))
    samples = samples.with_columns(
        each.alias("_cost"), once.mean().over("problem_id").alias("_fixed")
    )
    if samples["_cost"].null_count():
        return SampleReplays(
            None, f"cost unit {unit}: some samples lack the counts it needs", strategy, []
        )
    samples = with_replay_ids(samples)
    samples, names = _values(samples)
    out = []
    for group in groups:
        one = _replays(samples.filter(pl.col("half") == group.half), group, orders, names)
        if one is None:
            return SampleReplays(
                None, f"{samples_path}: some problems have no samples", strategy, names
            )
        out.append(one)
    return SampleReplays(out, "", strategy, names)


def with_replay_ids(samples: pl.DataFrame) -> pl.DataFrame:
    """Add ``_id``, each sample's cluster id for :func:`ttcalloc.core.replays.replay`: 0 for the
    correct answer, one positive id per distinct wrong answer of a problem, -1 for none."""
    import polars as pl

    return samples.with_columns(
        pl.when(pl.col("vote") == CORRECT)
        .then(pl.lit(0, dtype=pl.Int64))
        .when(pl.col("vote").is_null())
        .then(pl.lit(rp.ABSTAIN, dtype=pl.Int64))
        .otherwise(pl.col("vote").rank("dense").over("problem_id").cast(pl.Int64))
        .alias("_id")
    )


def _replays(
    samples: pl.DataFrame, group: ReplayGroup, orders: int, names: list[str]
) -> rp.Replays | None:
    """The group's problems replayed in ``orders`` seeded orders (None: one has no samples)."""
    import polars as pl

    ids = group.ids
    part = samples.filter(pl.col("problem_id").is_in(ids)).sort("problem_id", "sample_idx")
    index = variant_index(part)  # several prompts: taken in turn, as `run` draws them
    rotate = index is not None
    part = part.with_columns((pl.lit(0, pl.Int64) if index is None else index).alias("_variant"))
    cols = ["_id", "_cost", "_fixed", "_variant", *(f"_v_{n}" for n in names)]
    grouped = part.group_by("problem_id", maintain_order=True).agg(cols)
    by_id = {r[0]: r for r in grouped.iter_rows()}
    if set(by_id) != set(ids):
        return None
    rows = [by_id[p] for p in ids]
    extra = (
        [np.array(r[5:], dtype=np.float64).T.reshape(len(r[1]), len(names)) for r in rows]
        if names
        else None
    )
    return rp.replay(
        [r[1] for r in rows],
        [r[2] for r in rows],
        orders=orders,
        seed=group.seed,
        fixed=[r[3][0] for r in rows],
        extra=extra,
        variants=[r[4] for r in rows] if rotate else None,
    )
