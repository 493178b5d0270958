"""The learned stopping rule's model: an XGBoost regressor of the gain from drawing more.

Solve-then-Learn for *when to stop*: the labels are the realized changes in correctness of the
train problems' replays (:func:`ttcalloc.core.stopping.pair_labels`); one regressor predicts the
gain ``g(s_j, h)`` from the state after ``j`` samples to checkpoint ``h``.  ``folds`` models are
fit on all but one fold of the train problems; their out-of-fold predictions give honest
training metrics.  The deployed model is the average of the fold models, and its prices are
calibrated with that same averaged model on the train replays: calibrating one predictor and
deploying another moved the realized cost by up to 30% on SVAMP (the state is discrete, so many
states share a critical price and the cost jumps where they flip).  Models are saved in
XGBoost's UBJ format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ttcalloc.core import stopping
from ttcalloc.core.replays import Replays
from ttcalloc.core.shrinkage import choose_weight
from ttcalloc.learn.learners import Expected, load_booster, save_booster


class NoTrainingStates(ValueError):
    """No train problem has two samples, so there is no decision to learn."""


@dataclass(frozen=True)
class StopOptions:
    """Cross-fitting and the gradient-boosting parameters of the gain model."""

    folds: int = 5
    fit_orders: int = 30  # replay orders per train problem that make training rows
    n_estimators: int = 150
    max_depth: int = 4
    learning_rate: float = 0.08
    seed: int = 0


def _params(opts: StopOptions) -> dict[str, Any]:
    return {
        "objective": "reg:squarederror",
        "max_depth": opts.max_depth,
        "eta": opts.learning_rate,
        "subsample": 0.8,
        "colsample_bytree": 0.9,
        "min_child_weight": 5.0,
        "tree_method": "hist",
        "seed": opts.seed,
        "nthread": 1,  # bit-for-bit deterministic
        "verbosity": 0,
    }


class GainModel:
    """The average of several boosters' predicted gains (the fold ensemble)."""

    def __init__(self, boosters: list[Any]) -> None:
        if not boosters:
            raise ValueError("a gain model needs at least one booster")
        self.boosters = boosters

    def predict(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        """Predicted gains for rows of shape ``(..., F)``."""
        import xgboost as xgb

        flat = rows.reshape(-1, rows.shape[-1])
        dm = xgb.DMatrix(flat)
        total = np.zeros(flat.shape[0])
        for booster in self.boosters:
            total += booster.predict(dm)
        out: NDArray[np.float64] = (total / len(self.boosters)).reshape(rows.shape[:-1])
        return out

    def save(self, folder: Path) -> list[str]:
        names = [f"gain-{j}.ubj" for j in range(len(self.boosters))]
        for name, booster in zip(names, self.boosters, strict=True):
            save_booster(booster, folder / name)
        return names

    @classmethod
    def load(cls, folder: Path, files: list[str], n_features: int | None = None) -> GainModel:
        """The boosters of ``files``; with ``n_features``, each is checked to take that many."""
        expected = None if n_features is None else Expected("reg:squarederror", n_features)
        return cls([load_booster(folder / name, expected) for name in files])


def fit_gain(rows: NDArray[np.float64], labels: NDArray[np.float64], opts: StopOptions) -> Any:
    """One booster fit on ``(N, F)`` rows and their realized gains."""
    import xgboost as xgb

    dm = xgb.DMatrix(rows, label=labels)
    return xgb.train(_params(opts), dm, num_boost_round=opts.n_estimators)


@dataclass(frozen=True)
class StopFit:
    """A trained stopping rule: the averaged fold models with prices calibrated on the train
    replays, and the out-of-fold accuracy and cost (fold models calibrated on their own)."""

    model: GainModel
    calibration: stopping.Calibration
    oof_accuracy: float
    oof_cost: float
    rows: int
    oof_per_problem: NDArray[np.float64]  # (P,) out-of-fold accuracy of each train problem


def train_stopping(
    replays: Replays,
    question: NDArray[np.float64] | None,
    grid: stopping.Grid,
    budget: float,
    fold: NDArray[np.int64],
    opts: StopOptions,
) -> StopFit:
    """Fit the fold models on train replays and calibrate the price out of fold.

    Args:
        replays: the train problems' fit-half samples in random orders.
        question: ``(P, F)`` question features (or None).
        grid: cap, checkpoints and strategy.
        budget: target mean cost per problem, in the replays' cost unit.
        fold: ``(P,)`` fold of each problem, 0..folds-1.
        opts: model and cross-fitting options.
    """
    states = stopping.state_features(replays)
    rows = stopping.pair_rows(states, question, grid)
    gain, valid = stopping.pair_labels(replays, grid)
    fit_r = min(opts.fit_orders, replays.ids.shape[1])
    oof = np.zeros(gain.shape)
    boosters = []
    n_rows = 0
    for k in range(opts.folds):
        tr, te = fold != k, fold == k
        if not te.any():
            continue
        sub_rows, sub_gain, sub_valid = rows[tr, :fit_r], gain[tr, :fit_r], valid[tr, :fit_r]
        x, y = sub_rows[sub_valid], sub_gain[sub_valid]
        if not len(y):
            raise NoTrainingStates(
                "no training states to learn when to stop from: every train problem has a "
                "single sample"
            )
        booster = fit_gain(x, y, opts)
        boosters.append(booster)
        n_rows += len(y)
        oof[te] = GainModel([booster]).predict(rows[te])
    costs = stopping.extra_costs(replays, grid)
    model = GainModel(boosters)
    # honest metrics: out-of-fold predictions, calibrated on their own
    oof_critical = stopping.critical_prices(oof, costs, grid, replays.max_samples)
    oof_cal = stopping.calibrate(oof_critical, replays, grid, budget)
    acc, cost = stopping.mixed_outcome(oof_critical, replays, grid, oof_cal)
    # the deployed prices: calibrated with the deployed (averaged) model itself, so that the
    # ties and steps of its critical prices are the ones the mix was tuned on
    deployed = stopping.critical_prices(model.predict(rows), costs, grid, replays.max_samples)
    cal = stopping.calibrate(deployed, replays, grid, budget)
    return StopFit(model, cal, float(acc.mean()), float(cost.mean()), n_rows, acc)


@dataclass(frozen=True)
class SignalChoice:
    """Whether the per-sample signals (lengths, log-probs) earned their place in the state."""

    use: bool
    gain: float  # out-of-fold accuracy with the signals minus without, at the same budget
    se: float  # its paired standard error over train problems


def choose_signals(with_values: StopFit, state_only: StopFit, z: float = 1.0) -> SignalChoice:
    """Keep the signals only when their out-of-fold gain exceeds ``z`` paired standard errors.

    Both fits are calibrated to the same budget, so their accuracies compare at equal cost; the
    rule leans to the smaller state because a feature chosen by noise can only lose.
    """
    # the one-standard-error rule of the static learners' shrinkage, over two candidates
    use = choose_weight(np.stack([state_only.oof_per_problem, with_values.oof_per_problem]), z)
    diff = with_values.oof_per_problem - state_only.oof_per_problem
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return SignalChoice(use == 1, float(diff.mean()), se)


def critical_prices(
    model: GainModel, replays: Replays, question: NDArray[np.float64] | None, grid: stopping.Grid
) -> NDArray[np.float64]:
    """The deployed rule's critical price after every prefix of every replay."""
    rows = stopping.pair_rows(stopping.state_features(replays), question, grid)
    gains = model.predict(rows)
    return stopping.critical_prices(
        gains, stopping.extra_costs(replays, grid), grid, replays.max_samples
    )
