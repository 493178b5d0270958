"""Several models' recorded samples replayed in random orders, for cascades (train, evaluate).

Samples drawn with several prompt variants are replayed taking the variants in turn, as ``run``
draws them, and carry their prompt kind (text or program) for the cascade's state.

Samples are labelled as ``estimate`` labels them (wrong answers clustered per problem, so the
same wrong answer of two models is one cluster), split into the halves ``estimate`` used (from
the curves' provenance), and costed in dollars with the curves' price table.  Each model gets
its own replay of the same problems; its orders have their own seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ttcalloc.artifacts.frames import assign_halves, input_path, variant_index, vote_labels
from ttcalloc.artifacts.io import check_known_ids, read_artifact
from ttcalloc.artifacts.prices import PriceTable, with_dollars
from ttcalloc.artifacts.sample_replays import with_replay_ids
from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.common.errors import DataError
from ttcalloc.core import replays as rp


def prices_of(curves_meta: dict[str, Any], where: str) -> PriceTable:
    """The price table the curves were costed with (``estimate --price``), if recorded."""
    table = curves_meta.get("params", {}).get("prices")
    return PriceTable.from_json(table, f"{where}: params.prices") if table else PriceTable()


def load_model_replays(
    samples_path: Path,
    problems: Any,
    problems_path: Path,
    curves_meta: dict[str, Any],
    models: Sequence[str],
    ids: list[str],
    half: str,
    seed: int,
    orders: int,
    prices: PriceTable,
) -> list[rp.Replays]:
    """One replay per model (in ``models`` order) of the problems ``ids`` (that order), from
    their ``half`` samples, in dollars.

    Raises:
        DataError: a model has no samples of some problem, or a sample cannot be priced.
    """
    import polars as pl

    params = curves_meta.get("params", {})
    samples = read_artifact(samples_path, SAMPLES).df
    samples = samples.filter(pl.col("correct").is_not_null() & pl.col("error").is_null())
    present = set(samples["model"].unique().to_list())
    missing = [m for m in models if m not in present]
    if missing:
        raise DataError(
            f"{samples_path}: no samples of model {missing[0]!r} (models: "
            f"{', '.join(sorted(present))})"
        )
    samples = samples.filter(pl.col("model").is_in(list(models)))
    check_known_ids(samples, problems, samples_path, problems_path, "not the curves' samples?")
    samples = samples.filter(pl.col("problem_id").is_in(ids))
    samples = vote_labels(samples, problems if input_path(curves_meta, "problems") else None)
    samples = assign_halves(samples, float(params.get("holdout", 0.0)), int(params.get("seed", 0)))
    samples = samples.filter(pl.col("half") == half)
    samples = with_dollars(samples, prices, problems.select("problem_id", "question")).samples
    samples = with_replay_ids(samples)
    index = variant_index(samples)
    rotate = index is not None
    if index is not None:  # each variant an index (none: its own); program samples kind 1
        kind = pl.col("answer_from").fill_null("text") == "program"
        samples = samples.with_columns(index.alias("_v"), kind.cast(pl.Int64).alias("_k"))
    else:
        samples = samples.with_columns(pl.lit(0, pl.Int64).alias("_v"), pl.lit(0).alias("_k"))
    out = []
    for level, model in enumerate(models):
        part = samples.filter(pl.col("model") == model).sort("problem_id", "sample_idx")
        grouped = part.group_by("problem_id", maintain_order=True).agg(
            "_id", "cost_usd", "_v", "_k"
        )
        by_id = {r[0]: r for r in grouped.iter_rows()}
        lacking = [p for p in ids if p not in by_id]
        if lacking:
            raise DataError(
                f"{samples_path}: model {model!r} has no {half}-half samples of problem "
                f"{lacking[0]!r} ({len(lacking)} problems); a cascade needs every model on "
                "every problem"
            )
        rows = [by_id[p] for p in ids]
        out.append(
            rp.replay(
                [r[1] for r in rows],
                [r[2] for r in rows],
                orders=orders,
                seed=seed * 1009 + 7919 * (level + 1),
                variants=[r[3] for r in rows] if rotate else None,
                kinds=[r[4] for r in rows] if rotate else None,
            )
        )
    return out
