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

The fit does not depend on the budget (:func:`fit_gains`); :func:`calibrated` prices it for
each budget.  States repeat across orders and problems, so identical training rows are fit
once with their count as weight, and every distinct row is predicted once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

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


class FitFlags(Protocol):
    """The flags of ``train --learner stop`` and ``--learner cascade`` that fitting reads."""

    @property
    def features(self) -> tuple[str, ...]: ...
    @property
    def folds(self) -> int: ...
    @property
    def fit_orders(self) -> int: ...
    @property
    def n_estimators(self) -> int: ...
    @property
    def max_depth(self) -> int: ...
    @property
    def learning_rate(self) -> float: ...
    @property
    def seed(self) -> int: ...


@dataclass(frozen=True)
class Fitting:
    """What a gain model is fit with: the train questions' features (rows in ``train_ids``
    order; None when no feature is chosen), their cross-fitting folds, the boosting options."""

    features: list[Any]  # ttcalloc.learn.features.Feature
    subjects: list[str] | None
    qx: NDArray[np.float64] | None
    fold: NDArray[np.int64]
    options: StopOptions


def fitting(flags: FitFlags, prob: Any, train_ids: list[str]) -> Fitting:
    """The :class:`Fitting` of the train problems ``prob`` (a problems frame), whose ids are
    ``train_ids``, both sorted."""
    from ttcalloc.common.hashing import seeded_folds
    from ttcalloc.learn import features as feats

    assert prob["problem_id"].to_list() == train_ids  # both sorted
    chosen, subjects, metas = feats.for_problems(flags.features, prob)
    qx = feats.matrix(chosen, prob["question"].to_list(), metas, subjects)
    options = StopOptions(
        folds=flags.folds,
        fit_orders=flags.fit_orders,
        n_estimators=flags.n_estimators,
        max_depth=flags.max_depth,
        learning_rate=flags.learning_rate,
        seed=flags.seed,
    )
    fold = np.array(seeded_folds(train_ids, flags.folds, flags.seed), dtype=np.int64)
    return Fitting(chosen, subjects, qx if qx.shape[1] else None, fold, options)


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

    def predict_distinct(self, rows: NDArray[np.float64], threads: int = 1) -> NDArray[np.float64]:
        """Predicted gains for ``(N, F)`` rows: every booster in its own thread, summed in
        booster order (so the result does not depend on ``threads``)."""
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        parts = _map(lambda b: b.inplace_predict(rows), self.boosters, threads)
        total = np.zeros(len(rows))
        for part in parts:
            total += part
        out: NDArray[np.float64] = total / len(self.boosters)
        return out

    def predict_pairs(
        self, table: stopping.PairRows, flat: NDArray[np.int64] | None = None, threads: int = 1
    ) -> NDArray[np.float64]:
        """Predicted gains at positions ``flat`` of a :class:`~stopping.PairRows` grid (default:
        all of it, shaped ``(P, R, Q)``), each distinct row predicted once."""
        first, inverse = table.distinct(flat)
        out: NDArray[np.float64] = self.predict_distinct(table.rows(first), threads)[inverse]
        return out.reshape(table.keys.shape) if flat is None else out

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


T = TypeVar("T")
R = TypeVar("R")


def _map(fn: Callable[[T], R], items: Sequence[T], threads: int) -> list[R]:
    """``fn`` over ``items`` in up to ``threads`` threads (XGBoost releases the GIL), in order."""
    if threads <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(fn, items))


def fit_gain(
    rows: NDArray[np.float64],
    labels: NDArray[np.float64],
    opts: StopOptions,
    weights: NDArray[np.float64] | None = None,
) -> Any:
    """One booster fit on ``(N, F)`` rows and their realized gains (``weights``: how many
    training states each row stands for)."""
    import xgboost as xgb

    dm = xgb.DMatrix(np.ascontiguousarray(rows), label=labels, weight=weights)
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
    cost_se: float = 0.0  # standard error over train problems of the deployed prices' cost


@dataclass(frozen=True)
class GainFit:
    """The fold models of one state, fit once for every budget (the gain does not depend on
    it), and the critical prices they give after every prefix of the train replays: out of
    fold (each problem by the model that did not see it) and by the deployed average."""

    model: GainModel
    oof_critical: NDArray[np.float64]  # (P, R, T)
    critical: NDArray[np.float64]  # (P, R, T)
    rows: int


@dataclass(frozen=True)
class _Case:
    table: stopping.PairRows
    gain: NDArray[np.float64]
    valid: NDArray[np.bool_]


def fit_gains(
    cases: Sequence[tuple[Replays, NDArray[np.float64] | None]],
    grid: stopping.Grid,
    fold: NDArray[np.int64],
    opts: StopOptions,
    threads: int = 1,
) -> list[GainFit]:
    """Fit the fold models of each state (replays and question features) on the train replays.

    A fold's training states are its problems' first ``fit_orders`` orders; identical rows
    are fit once, on their mean gain with their count as weight (the squared error's gradient
    and hessian sums are those of the repeated rows; only the 0.8 row subsample then draws
    whole groups of identical rows).  Every (state, fold) booster is fit on one thread, up to
    ``threads`` at once, so the models do not depend on ``threads``.

    Args:
        cases: the train problems' fit-half replays and ``(P, F)`` question features (or None),
            one pair per state to fit (e.g. with and without the per-sample signals).
        grid: cap, checkpoints and strategy.
        fold: ``(P,)`` fold of each problem, 0..folds-1.
        opts: model and cross-fitting options.
        threads: boosters fit (and predicted) at once.
    """
    built = []
    for replays, question in cases:
        table = stopping.PairRows.build(stopping.state_features(replays), question, grid)
        gain, valid = stopping.pair_labels(replays, grid)
        built.append(_Case(table, gain, valid))
    folds = [k for k in range(opts.folds) if (fold == k).any()]

    def fit_one(task: tuple[int, int]) -> tuple[Any, int]:
        case, k = built[task[0]], task[1]
        fit_r = min(opts.fit_orders, case.valid.shape[1])
        mask = case.valid & (fold != k)[:, None, None]
        mask[:, fit_r:] = False
        flat = np.flatnonzero(mask)
        if not len(flat):
            raise NoTrainingStates(
                "no training states to learn when to stop from: every train problem has a "
                "single sample"
            )
        first, inverse = case.table.distinct(flat)
        counts = np.bincount(inverse, minlength=len(first)).astype(np.float64)
        sums = np.bincount(inverse, weights=case.gain.reshape(-1)[flat], minlength=len(first))
        return fit_gain(case.table.rows(first), sums / counts, opts, counts), len(flat)

    tasks = [(c, k) for c in range(len(built)) for k in folds]
    fitted = _map(fit_one, tasks, threads)
    out = []
    for c, (case, (replays, _)) in enumerate(zip(built, cases, strict=True)):
        mine = [i for i, t in enumerate(tasks) if t[0] == c]
        boosters = [fitted[i][0] for i in mine]
        oof = np.zeros(case.gain.shape)
        for k, booster in zip(folds, boosters, strict=True):
            te = np.zeros(case.gain.shape, dtype=bool)
            te[fold == k] = True
            flat = np.flatnonzero(te)
            oof.reshape(-1)[flat] = GainModel([booster]).predict_pairs(case.table, flat)
        costs = stopping.extra_costs(replays, grid)
        model = GainModel(boosters)
        # the deployed prices are calibrated with the deployed (averaged) model itself, so that
        # the ties and steps of its critical prices are the ones the mix was tuned on
        deployed = model.predict_pairs(case.table, threads=threads)
        out.append(
            GainFit(
                model,
                stopping.critical_prices(oof, costs, grid, replays.max_samples),
                stopping.critical_prices(deployed, costs, grid, replays.max_samples),
                sum(fitted[i][1] for i in mine),
            )
        )
    return out


def default_margin(strategy: str) -> float:
    """Standard errors of the train cost the prices keep to spare by default: 1 with a
    verifier (a success ends a problem and one never solved runs to the cap, so the cost is
    heavy-tailed and the train mean a noisy guide to new problems), 0 for majority vote."""
    return 1.0 if strategy == "pass" else 0.0


def calibrated(
    fit: GainFit,
    replays: Replays,
    grid: stopping.Grid,
    budget: float,
    margin: float | None = None,
) -> StopFit:
    """The stopping rule of ``fit`` at ``budget``: honest metrics from the out-of-fold critical
    prices calibrated on their own, and the deployed prices calibrated on the deployed model's.

    ``margin`` (z; default :func:`default_margin`): both are calibrated so that their
    expected cost plus ``z`` standard errors over the train problems meets the budget
    (:func:`stopping.calibrate_with_margin`): where the cost is heavy-tailed (a verifier), the
    mean over the train problems is a noisy estimate of what new problems spend, and a price
    calibrated to it exactly overspends on new problems about half the time.

    Raises:
        stopping.BudgetError: the budget is below the cost of stopping after one sample.
    """
    margin = default_margin(grid.strategy) if margin is None else margin
    oof_cal, _ = stopping.calibrate_with_margin(fit.oof_critical, replays, grid, budget, margin)
    acc, cost = stopping.mixed_outcome(fit.oof_critical, replays, grid, oof_cal)
    cal, se = stopping.calibrate_with_margin(fit.critical, replays, grid, budget, margin)
    return StopFit(fit.model, cal, float(acc.mean()), float(cost.mean()), fit.rows, acc, se)


def train_stopping(
    replays: Replays,
    question: NDArray[np.float64] | None,
    grid: stopping.Grid,
    budget: float,
    fold: NDArray[np.int64],
    opts: StopOptions,
) -> StopFit:
    """Fit the fold models on train replays and calibrate the price out of fold (one budget).

    Args:
        replays: the train problems' fit-half samples in random orders.
        question: ``(P, F)`` question features (or None).
        grid: cap, checkpoints and strategy.
        budget: target mean cost per problem, in the replays' cost unit.
        fold: ``(P,)`` fold of each problem, 0..folds-1.
        opts: model and cross-fitting options.
    """
    fit = fit_gains([(replays, question)], grid, fold, opts)[0]
    return calibrated(fit, replays, grid, budget)


@dataclass(frozen=True)
class SignalChoice:
    """Whether the per-sample signals (lengths, log-probs) earned their place in the state."""

    use: bool
    gain: float  # out-of-fold accuracy with the signals minus without, at the same budget
    se: float  # its paired standard error over train problems


def choose_signals(
    with_values: StopFit | Sequence[StopFit],
    state_only: StopFit | Sequence[StopFit],
    z: float = 1.0,
) -> SignalChoice:
    """Keep the signals only when their out-of-fold gain exceeds ``z`` paired standard errors.

    Both fits are calibrated to the same budget (or to the same several budgets, given as
    sequences in the same order: each problem's accuracy is then its mean over the budgets, so
    the signals are chosen once for every budget), so their accuracies compare at equal cost;
    the rule leans to the smaller state because a feature chosen by noise can only lose.
    """
    with_acc = _per_problem(with_values)
    without = _per_problem(state_only)
    # the one-standard-error rule of the static learners' shrinkage, over two candidates
    use = choose_weight(np.stack([without, with_acc]), z)
    diff = with_acc - without
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return SignalChoice(use == 1, float(diff.mean()), se)


def _per_problem(fits: StopFit | Sequence[StopFit]) -> NDArray[np.float64]:
    """Each problem's out-of-fold accuracy, averaged over the fits (budgets) given."""
    many = [fits] if isinstance(fits, StopFit) else list(fits)
    out: NDArray[np.float64] = np.mean([f.oof_per_problem for f in many], axis=0)
    return out


def critical_prices(
    model: GainModel,
    replays: Replays,
    question: NDArray[np.float64] | None,
    grid: stopping.Grid,
    threads: int = 1,
) -> NDArray[np.float64]:
    """The deployed rule's critical price after every prefix of every replay."""
    table = stopping.PairRows.build(stopping.state_features(replays), question, grid)
    return stopping.critical_prices(
        model.predict_pairs(table, threads=threads),
        stopping.extra_costs(replays, grid),
        grid,
        replays.max_samples,
    )
