"""Why a cascade's trained prices underspend on new questions: the deployed gain model.

A cascade's price is calibrated on the train replays predicted out of fold (each problem by the
one fold booster that did not see it); new questions are scored by the average of the fold
boosters.  This refits each budget's gain model with its policy's ladder (caps, escalate-after),
calibrates the price out of fold as ``train`` does, and applies that price on the test half's
replays with three deployed predictors:

- ``average``: the mean of the fold boosters (what ``train`` deploys);
- ``one``: a seeded fold booster per question (distributed as the out-of-fold predictions);
- ``full``: one booster fit on all train rows.

Per budget: dollars over the budget at the trained price, accuracy there, and accuracy at a price
recalibrated on the test replays to meet the budget (matched dollars, no labels).

    .venv/bin/python benchmarks/cascade_deployed_spread.py SET POLICIES BUDGETS

``SET``: a folder with ``curves.parquet``, ``problems.parquet`` and ``samples.parquet`` (as
``svamp_models.py --work`` leaves per set and seed); ``POLICIES``: the ``train --learner cascade
--budgets`` folder (``b<budget>`` under it); ``BUDGETS``: comma-separated, as in the folder names.
Rules (``--rule mot``/``single`` fallbacks) have no gain model and are skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from ttcalloc.artifacts.cascade_replays import load_model_replays, prices_of
from ttcalloc.artifacts.io import read_artifact
from ttcalloc.artifacts.schemas import CURVES
from ttcalloc.common.hashing import seeded_unit
from ttcalloc.core import cascade as cc
from ttcalloc.learn.cascade import (
    CascadePolicy,
    Prepared,
    fit_cascade,
    predict,
    prepare,
    training_rows,
)
from ttcalloc.learn.stopping import Fitting, GainModel, fit_gain, fitting
from ttcalloc.stages.train_cascade import CascadeTrainOptions, unit_costs


def _full_booster(prep: Prepared, ladder: cc.Ladder, setup: Fitting) -> GainModel:
    """One booster on every train row (the rows and weights ``fit_cascade`` fits on)."""
    x, mean_y, counts, _ = training_rows(prep, ladder, setup.options.fit_orders)
    return GainModel([fit_gain(x, mean_y, setup.options, counts)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("set", type=Path)
    ap.add_argument("policies", type=Path)
    ap.add_argument("budgets")
    a = ap.parse_args()
    art = read_artifact(a.set / "curves.parquet", CURVES)
    prices = prices_of(art.meta, "curves")
    problems = pl.read_parquet(a.set / "problems.parquet")
    question = dict(zip(problems["problem_id"], problems["question"], strict=True))

    def ids(split: str, half: str) -> list[str]:
        return sorted(
            set(problems.filter(pl.col("split") == split)["problem_id"])
            & set(art.df.filter(pl.col("half") == half)["problem_id"])
        )

    train, test = ids("train", "fit"), ids("test", "eval")
    opts = CascadeTrainOptions(budgets=(1.0,))
    train_problems = problems.filter(pl.col("problem_id").is_in(train)).sort("problem_id")
    setup = fitting(opts, train_problems, train)
    names = ("average", "one", "full")
    print("| budget | ladder | " + " | ".join(f"{n}: $/B, acc, matched" for n in names) + " |")
    print("|---|---|---|---|---|")
    reps: list | None = None
    for b in a.budgets.split(","):
        pol = CascadePolicy.load(a.policies / f"b{b}")
        if not isinstance(pol.model, GainModel):
            print(f"| ${b} | rule: skipped | | | |")
            continue
        if reps is None:  # every budget's policy has the same models
            load = (a.set / "samples.parquet", problems, a.set / "problems.parquet", art.meta)
            reps = load_model_replays(*load, pol.models, train, "fit", 1, opts.orders, prices)
            treps = load_model_replays(*load, pol.models, test, "eval", 2, 60, prices)
        ladder, budget = pol.ladder, float(b)
        units = unit_costs(reps)
        prep = prepare(reps, setup.qx, ladder, units)
        average, _ = fit_cascade(prep, ladder, setup.fold, setup.options, 2)
        oof = predict(average, prep, ladder, 2, setup.fold)
        assert oof.gains is not None
        cal = cc.calibrate(prep.replays, ladder, oof.gains, oof.extra, oof.usable, budget)
        tprep = prepare(treps, pol.question_matrix([question[i] for i in test]), ladder, units)
        k = len(average.boosters)
        seeded = np.array([int(seeded_unit("f", question[i]) * k) for i in test])  # key as measured
        cells = []
        full = _full_booster(prep, ladder, setup)
        for model, fold in ((average, None), (average, seeded), (full, None)):
            p = predict(model, tprep, ladder, 2, fold)
            assert p.gains is not None
            args = (treps, ladder, p.gains, p.extra, p.usable)
            acc, cost, _ = cc.mixed_outcome(*args, cal)
            matched, _, _ = cc.mixed_outcome(*args, cc.calibrate(*args, budget))
            cells.append(f"{cost.mean() / budget:.3f}, {acc.mean():.4f}, {matched.mean():.4f}")
        lad = f"caps {list(ladder.caps)}, after {ladder.escalate_after}"
        print(f"| ${b} | {lad} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
