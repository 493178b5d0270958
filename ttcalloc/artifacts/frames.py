"""Artifact tables turned into what the stages compute on, shared by several stages.

Curves (long tables) to :class:`~ttcalloc.core.curves.Dense` arrays; samples to vote labels,
cross-fitting halves and per-sample costs in a cost unit.  ``estimate`` writes curves with these
and ``evaluate`` replays the same samples with them, so both see the same clusters and halves.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.common.errors import DataError
from ttcalloc.common.hashing import seeded_int
from ttcalloc.core.curves import Dense
from ttcalloc.text import batch

if TYPE_CHECKING:
    import polars as pl


def to_dense(curves: pl.DataFrame) -> Dense:
    """Pivot long curves (one half) into dense arrays; actions ordered by model, strategy, k."""
    import polars as pl

    labels = curves.select("action", "model", "strategy", "k")
    first_of_each = labels.select(pl.col("action").arg_unique()).to_series()
    actions = labels[first_of_each].sort("model", "strategy", "k")
    action_list = actions["action"].to_list()
    # row and column of every curve row: problem ids ranked (the sorted order), actions looked
    # up among the few actions; a join on 10^6 string ids took 5 times as long
    cols = (
        curves.select(
            pl.col("action").replace_strict(
                action_list, list(range(len(action_list))), return_dtype=pl.Int64
            )
        )
        .to_series()
        .to_numpy()
    )
    rows = _problem_ranks(curves["problem_id"])
    n_problems = int(rows.max()) + 1 if rows.size else 0
    first = np.zeros(n_problems, dtype=np.int64)
    first[rows[::-1]] = np.arange(rows.size - 1, -1, -1)  # a row of each problem
    pids = curves["problem_id"].gather(first)
    acc = np.full((n_problems, len(action_list)), np.nan)
    cost = np.full_like(acc, np.nan)
    acc[rows, cols] = curves["accuracy"].to_numpy()
    cost[rows, cols] = curves["cost"].to_numpy()
    return Dense(pids.to_list(), action_list, acc, cost)


def _problem_ranks(ids: pl.Series) -> np.ndarray:
    """Each row's problem id as its rank among the distinct ids (0 = smallest).

    Curves hold each problem's rows together, so the ids are ranked once per run of equal ids
    (10^6 strings) instead of once per row (8 x 10^6); when a problem's rows are not
    contiguous (two runs share an id) every row is ranked.
    """
    import polars as pl

    if ids.len() == 0:
        return np.zeros(0, dtype=np.int64)
    starts = ids.ne_missing(ids.shift(1)).fill_null(True)
    run = starts.cast(pl.Int64).cum_sum().to_numpy() - 1
    run_ranks = (ids.filter(starts).rank("dense") - 1).cast(pl.Int64).to_numpy()
    if run_ranks.size and int(run_ranks.max()) + 1 == run_ranks.size:  # runs have distinct ids
        out: np.ndarray = run_ranks[run]
        return out
    every: np.ndarray = (ids.rank("dense") - 1).cast(pl.Int64).to_numpy()
    return every


def input_path(meta: dict[str, Any], name: str) -> Path | None:
    """The path of input ``name`` as recorded (to show it; to find the file, use
    :func:`ttcalloc.artifacts.io.recorded_input`)."""
    path = meta.get("inputs", {}).get(name, {}).get("path")
    return Path(path) if path else None


def dense_full(curves: pl.DataFrame, half: str, ids: list[str], actions: list[str]) -> Dense:
    """Dense curves of one half for ``ids`` (in that order) over ``actions`` (NaN if missing)."""
    import polars as pl

    part = curves.filter((pl.col("half") == half) & pl.col("problem_id").is_in(ids))
    dense = to_dense(part) if part.height else Dense([], [], np.empty((0, 0)), np.empty((0, 0)))
    acc = np.full((len(ids), len(actions)), np.nan)
    cost = np.full_like(acc, np.nan)
    where = {p: i for i, p in enumerate(dense.problem_ids)}
    src = np.array([where.get(p, -1) for p in ids], dtype=np.int64)
    cols = np.array([dense.actions.index(a) if a in dense.actions else -1 for a in actions])
    have_r, have_c = np.flatnonzero(src >= 0), np.flatnonzero(cols >= 0)
    block = np.ix_(have_r, have_c)
    acc[block] = dense.acc[np.ix_(src[have_r], cols[have_c])]
    cost[block] = dense.cost[np.ix_(src[have_r], cols[have_c])]
    return Dense(list(ids), list(actions), acc, cost)


CORRECT = "\x00correct"  # vote label of the correct cluster (cannot collide with an answer)


def shuffle_keys(seed: int, keys: list[str]) -> list[int]:
    """Seeded pseudo-random order keys, one per sample, independent of other problems."""
    return [seeded_int("half", seed, key) for key in keys]


def sample_cost(unit: str, prompt_once: bool = False) -> tuple[pl.Expr, pl.Expr]:
    """Per-sample expressions in ``unit``: what each sample costs, and the cost paid once per k.

    The once-per-k part (the prompt, with ``prompt_once``) is averaged over a problem's samples by
    the caller.  An action drawing k samples costs ``mean(once) + k * mean(each)``.
    """
    import polars as pl

    zero = pl.lit(0.0)
    if unit == "samples":
        return pl.lit(1.0), zero
    if unit == "completion-tokens":
        return pl.col("completion_tokens").cast(pl.Float64), zero
    if unit == "usd":
        return pl.col("cost_usd").cast(pl.Float64), zero
    if prompt_once:
        return pl.col("completion_tokens").cast(pl.Float64), pl.col("prompt_tokens").cast(
            pl.Float64
        )
    return (pl.col("prompt_tokens") + pl.col("completion_tokens")).cast(pl.Float64), zero


def vote_labels(samples: pl.DataFrame, problems: pl.DataFrame | None) -> pl.DataFrame:
    """Add ``vote``: the correct-cluster label, a canonical wrong answer, or null (abstention)."""
    import polars as pl

    if problems is not None:
        graders = problems.select("problem_id", "grader")
        pairs = (
            samples.filter(pl.col("pred_answer").is_not_null() & ~pl.col("correct"))
            .select("problem_id", "pred_answer")
            .unique()
            .join(graders, on="problem_id", how="left")
        )
        canon = batch.canonical_many(
            (a, g or "exact") for a, g in pairs.select("pred_answer", "grader").iter_rows()
        )
        pairs = pairs.with_columns(pl.Series("canon", canon, dtype=pl.String)).drop("grader")
        samples = samples.join(pairs, on=["problem_id", "pred_answer"], how="left")
    else:
        samples = samples.with_columns(
            pl.col("pred_answer").str.strip_chars().str.replace_all(r"\s+", " ").alias("canon")
        )
    return samples.with_columns(
        pl.when(pl.col("correct"))
        .then(pl.lit(CORRECT))
        .when(pl.col("pred_answer").is_null())
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.col("canon"))
        .alias("vote")
    ).drop("canon")


def variant_index(samples: pl.DataFrame) -> pl.Expr | None:
    """Each sample's prompt variant as an index (1, 2, ... by name; no variant: its own), or
    None when the samples carry no variants (then they are taken in any order)."""
    import polars as pl

    column = samples["prompt_variant"] if "prompt_variant" in samples.columns else None
    if column is None or column.null_count() == samples.height:
        return None
    return pl.col("prompt_variant").fill_null("").rank("dense").cast(pl.Int64)


def variant_groups(samples: pl.DataFrame, *keys: str) -> pl.DataFrame:
    """Per group (``keys``) whose samples carry several prompt variants: each sample's cluster
    id (``_id``: 0 correct, > 0 a wrong answer, -1 none) and variant index (``_v``)."""
    import polars as pl

    variant = variant_index(samples)
    if variant is None:  # one prompt throughout: no group
        lists = {"_id": pl.List(pl.Int64), "_v": pl.List(pl.Int64)}
        return pl.DataFrame(schema={**{k: samples.schema[k] for k in keys}, **lists})
    wrong = pl.col("vote").rank("dense").cast(pl.Int64).fill_null(-1)
    return (
        samples.sort(*keys, "sample_idx")
        .group_by(*keys, maintain_order=True)
        .agg(
            pl.when(pl.col("vote") == CORRECT).then(0).otherwise(wrong).alias("_id"),
            variant.alias("_v"),
        )
        .filter(pl.col("_v").list.n_unique() > 1)
    )


def assign_halves(samples: pl.DataFrame, holdout: float, seed: int) -> pl.DataFrame:
    """Add ``half``: a seeded share ``holdout`` of each (problem, model)'s samples is ``eval``.

    The rest is ``fit``; with ``holdout == 0`` every sample is ``all``.  The assignment depends
    only on the seed and the samples' keys, so ``evaluate`` can recover the halves of
    ``estimate``.  Samples drawn with prompt variants are dealt out variant by variant (each
    half holds each variant's samples to within one), as a run takes them in turn.
    """
    import polars as pl

    if holdout <= 0.0:
        return samples.with_columns(pl.lit("all").alias("half"))
    keys = [
        f"{p}\x00{m}\x00{i}"
        for p, m, i in samples.select("problem_id", "model", "sample_idx").iter_rows()
    ]
    samples = samples.with_columns(pl.Series("_score", shuffle_keys(seed, keys), dtype=pl.UInt64))
    group = ["problem_id", "model"]
    if "prompt_variant" in samples.columns and samples["prompt_variant"].null_count() < len(
        samples
    ):  # each variant's samples taken in turn, so both halves hold every variant alike
        within = pl.col("_score").rank("ordinal").over(*group, "prompt_variant") - 1
        key = within.cast(pl.UInt64) * 2**32 + pl.col("_score") // 2**32
        samples = samples.with_columns(key.alias("_score"))
    rank = pl.col("_score").rank("ordinal").over(*group) - 1
    n_eval = (pl.len().over(*group) * holdout).round(0)
    return samples.with_columns(
        pl.when(rank < n_eval).then(pl.lit("eval")).otherwise(pl.lit("fit")).alias("half")
    ).drop("_score")


def choose_cost(samples: pl.DataFrame, unit: str, dollars: bool = False) -> str:
    """The cost unit: ``auto`` is usd when ``dollars`` (prices given, or several models), else
    tokens when every sample has them, else samples; an explicit unit needs its columns."""
    if unit == "auto" and dollars:
        unit = "usd"
    have_tokens = (
        samples["prompt_tokens"].null_count() == 0
        and samples["completion_tokens"].null_count() == 0
        and samples.height > 0
    )
    if unit == "auto":
        return "tokens" if have_tokens else "samples"
    needs = {
        "tokens": ("prompt_tokens", "completion_tokens"),
        "completion-tokens": ("completion_tokens",),
        "usd": ("cost_usd",),
        "samples": (),
    }[unit]
    for col in needs:
        missing = samples[col].null_count()
        if missing:
            bring = "bring samples with token counts"
            if unit == "usd":
                bring = "give prices (--price MODEL=IN,OUT or --prices FILE)"
            raise DataError(
                f"--cost {unit}: column {col!r} is missing for {missing} samples "
                f"(use --cost samples, or {bring})"
            )
    return unit
