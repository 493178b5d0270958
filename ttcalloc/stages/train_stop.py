"""``ttcalloc train --learner stop``: a learned stopping rule (Solve-then-Learn for when to stop).

Load: the curves (from the allocation's provenance, or given directly), the problems' train
split and the samples behind the curves, replayed in random orders (fit half).  Compute: the
fold models of the gain from drawing more, and the price calibrated out of fold so the expected
cost meets the budget (two neighbouring prices mixed where the cost jumps).  Write: the
averaged fold models (UBJ) and policy.json.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.artifacts.answering import answering
from ttcalloc.artifacts.frames import to_dense
from ttcalloc.artifacts.io import (
    check_output,
    parquet_files,
    provenance,
    read_artifact,
    read_meta,
    recorded_input,
    same_unit,
)
from ttcalloc.artifacts.sample_replays import ReplayGroup, load_sample_replays
from ttcalloc.artifacts.schemas import ALLOCATION, CURVES, POLICY, PROBLEMS, require_labels
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.common.hashing import seeded_int
from ttcalloc.core import stopping
from ttcalloc.core.baselines import uniform_at_budget
from ttcalloc.learn import features as feats
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.learners import xgboost_version
from ttcalloc.learn.stopping import (
    NoTrainingStates,
    StopOptions,
    choose_signals,
    train_stopping,
)

if TYPE_CHECKING:
    pass


SIGNAL_MODES = ("auto", "all", "none")


@dataclass(frozen=True)
class StopTrainOptions:
    """Budget, features, cross-fitting, replays and the gain model's parameters."""

    budget: float | None = None
    features: tuple[str, ...] = ()  # question feature groups; the state alone did as well
    folds: int = 5
    seed: int = 0
    orders: int = 60  # replay orders per train problem for calibration
    fit_orders: int = 30  # of which the first few make training rows
    n_estimators: int = 150
    max_depth: int = 4
    learning_rate: float = 0.08
    samples: Path | None = None  # default: the samples the curves were estimated from
    signals: str = "auto"  # per-sample signals in the state: auto (chosen out of fold), all, none

    def check(self) -> None:
        if self.folds < 2:
            raise InputError(f"--folds {self.folds}: need at least 2 for out-of-fold calibration")
        if self.orders < 1:
            raise InputError(f"--orders {self.orders}: must be at least 1")
        if self.fit_orders < 1:
            raise InputError(f"--fit-orders {self.fit_orders}: must be at least 1")
        if self.budget is not None and not (np.isfinite(self.budget) and self.budget > 0):
            raise InputError(f"--budget {self.budget}: must be a positive number")
        if self.signals not in SIGNAL_MODES:
            raise InputError(f"--signals {self.signals}: expected one of {', '.join(SIGNAL_MODES)}")
        feats.select(self.features)


def _curves_path(source: Path, curves_path: Path | None) -> tuple[Path, list[float]]:
    """The curves to train on, and the budgets of the allocation when one is given."""
    meta = read_meta(source)
    if meta.get("artifact") == CURVES.name:
        return source, []
    alloc = read_artifact(source, ALLOCATION)
    budgets = sorted(set(alloc.df["budget"].to_list()))
    if curves_path is None:
        curves_path = recorded_input(alloc.meta, "curves", source, "--curves")
        if curves_path is None:
            raise InputError(f"{source}: its curves are not found: pass --curves")
    same_unit(alloc.meta, read_meta(parquet_files(Path(curves_path))[0]), source, curves_path)
    return curves_path, budgets


def train_adaptive(
    source: Path,
    problems_path: Path,
    out: Path,
    options: StopTrainOptions | None = None,
    curves_path: Path | None = None,
) -> dict[str, Any]:
    """Train a stopping rule on the train split's replays and save it to ``out``.

    Args:
        source: an allocation (its curves are used) or a curves artifact.
        problems_path: problems (questions, metadata, split).
        out: policy folder (policy.json and the gain models in UBJ format).
        options: budget (required unless the allocation has one), features, folds, replays.
        curves_path: curves (default: the allocation's).

    Returns:
        Out-of-fold metrics: expected cost, accuracy, and uniform at the same cost.
    """
    import polars as pl

    options = options or StopTrainOptions()
    options.check()
    curves_path, budgets = _curves_path(Path(source), curves_path)
    budget = options.budget
    if budget is None:
        if len(budgets) != 1:
            raise InputError("give --budget (the mean cost per problem the policy should spend)")
        budget = budgets[0]
    curves_art = read_artifact(curves_path, CURVES)
    curves = curves_art.df
    problems = read_artifact(problems_path, PROBLEMS).df
    require_labels(problems, problems_path, "train")
    halves = set(curves["half"].to_list())
    fit_half = "fit" if "fit" in halves else "all"
    fit_curves = curves.filter(pl.col("half") == fit_half)
    train_ids = sorted(
        set(problems.filter(pl.col("split") == "train")["problem_id"].to_list())
        & set(fit_curves["problem_id"].to_list())
    )
    if len(train_ids) < 2 * options.folds:
        raise DataError(f"{curves_path}: only {len(train_ids)} training problems; need more")
    samples_path = options.samples or recorded_input(
        curves_art.meta, "samples", Path(curves_path), "--samples"
    )
    if samples_path is None or not Path(samples_path).exists():
        raise InputError(
            f"{curves_path}: its samples are not found ({samples_path}); pass --samples "
            "(or --learner imitate, which needs none)"
        )
    inputs = {
        "source": Path(source),
        "problems": problems_path,
        "curves": curves_path,
        "samples": Path(samples_path),
    }
    check_output(out, inputs, folder=True)
    loaded = load_sample_replays(
        Path(samples_path),
        problems,
        Path(problems_path),
        curves_art.meta,
        [ReplayGroup(train_ids, fit_half, options.seed + 1)],
        options.orders,
    )
    if loaded.replays is None:
        raise DataError(
            f"cannot replay the samples: {loaded.note} "
            "(--learner imitate or plugin choose one action per question without replays)"
        )
    replays = loaded.replays[0]
    ks = sorted(set(fit_curves["k"].to_list()))
    cap = min(max(ks), int(replays.n.min()))
    grid = stopping.Grid(
        cap=cap, checkpoints=tuple(k for k in ks if k <= cap), strategy=loaded.strategy
    )
    prob = problems.filter(pl.col("problem_id").is_in(train_ids)).sort("problem_id")
    chosen, subjects, metas = feats.for_problems(options.features, prob)
    qx = feats.matrix(chosen, prob["question"].to_list(), metas, subjects)
    fold = np.array([seeded_int("fold", options.seed, p) for p in train_ids]) % options.folds
    stop_opts = StopOptions(
        folds=options.folds,
        fit_orders=options.fit_orders,
        n_estimators=options.n_estimators,
        max_depth=options.max_depth,
        learning_rate=options.learning_rate,
        seed=options.seed,
    )
    question = qx if qx.shape[1] else None
    values = loaded.sample_values if options.signals != "none" else []
    signal_choice = None
    try:
        fit = train_stopping(
            replays if values else replace(replays, extra=None),
            question,
            grid,
            budget,
            fold,
            stop_opts,
        )
        if values and options.signals == "auto":
            state_only = train_stopping(
                replace(replays, extra=None), question, grid, budget, fold, stop_opts
            )
            signal_choice = choose_signals(fit, state_only)
            if not signal_choice.use:
                fit, values = state_only, []
    except stopping.BudgetError as exc:
        raise InputError(f"--budget {budget:g}: {exc}") from exc
    except NoTrainingStates as exc:
        raise DataError(f"{samples_path}: {exc} (--learner imitate needs only the curves)") from exc

    dense = to_dense(fit_curves.filter(pl.col("problem_id").is_in(train_ids)))
    uniform = uniform_at_budget(dense.acc, dense.cost, fit.oof_cost)
    metrics = {
        "budget": budget,
        "learner": "stop",
        "train_problems": len(train_ids),
        "training_rows": fit.rows,
        "cap": grid.cap,
        "strategy": grid.strategy,
        "oof_expected_cost": fit.oof_cost,
        "oof_cost_over_budget": fit.oof_cost / budget,
        "oof_accuracy": fit.oof_accuracy,
        "uniform_accuracy_same_cost": uniform.accuracy if uniform else None,
        "gain_vs_uniform": fit.oof_accuracy - uniform.accuracy if uniform else None,
        "scored_on": fit_half,
        "in_sample": False,
        "sample_values": values,
        "sample_values_available": loaded.sample_values,
        "sample_values_oof_gain": None if signal_choice is None else signal_choice.gain,
        "sample_values_oof_se": None if signal_choice is None else signal_choice.se,
    }
    policy = AdaptivePolicy(
        grid=grid,
        feature_names=[f.name for f in chosen],
        subjects=subjects,
        sample_values=values,
        model=fit.model,
        calibration=fit.calibration,
        info={},
    )
    prov = provenance(
        POLICY,
        "train",
        {k: str(v) if isinstance(v, Path) else v for k, v in options.__dict__.items()},
        inputs,
        at=Path(out) / "policy.json",
    ) | {"xgboost_version": xgboost_version()}
    policy.save(
        Path(out),
        {
            "cost_unit": curves_art.meta.get("cost_unit", "unknown"),
            "budget": budget,
            "metrics": metrics,
            "provenance": prov,
            **answering(prob["grader"].to_list(), Path(samples_path), [grid.strategy]),
        },
    )
    return metrics
