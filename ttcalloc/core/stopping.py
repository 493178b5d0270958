"""Adaptive stopping on replays: states, Solve-step labels, the stopping rule and its budget.

A sequential policy draws samples of a problem one at a time.  After ``j`` samples it sees the
*state* ``s_j`` (vote counts, distinct answers, abstentions, agreement run, the leader's Beta
probability, running means of per-sample values such as lengths or log-probs) and decides
whether to draw more.  With a predictor ``g(s_j, h)`` of the change in correctness from ``j`` to
a later checkpoint ``h`` (majority credit, or "solved" for a verifier), the rule at price
``lam`` is

    continue  iff  max_h  g(s_j, h) - lam * (estimated cost of samples j+1..h)  >  0,

i.e. iff ``lam < critical(s_j) = max_h g(s_j, h) / extra_cost(s_j, h)`` over ``g > 0``.
Stopping times, and so expected costs, are non-increasing in ``lam``; :func:`calibrate` finds the
two neighbouring prices around the budget and the mixing weight that meets it exactly.

Everything here works on :class:`~ttcalloc.core.replays.Replays` arrays; the learned predictor
is passed in as an array of predictions (:mod:`ttcalloc.learn.stopping` fits it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ttcalloc.core.replays import Replays
from ttcalloc.core.rows import unique_rows

STRATEGIES = ("majority", "pass")
STATE_FEATURES = (
    "j",
    "top1",
    "top2",
    "top1_share",
    "top2_share",
    "margin_share",
    "distinct",
    "distinct_share",
    "abstain",
    "abstain_share",
    "run",
    "lead",
)
PAIR_FEATURES = ("horizon", "extra_samples")


class BudgetError(ValueError):
    """The budget is below what stopping after one sample costs."""


@dataclass(frozen=True)
class Grid:
    """Where a sequential policy may stop: after any sample up to ``cap``; gains are predicted to
    the next sample and to every later checkpoint."""

    cap: int
    checkpoints: tuple[int, ...]
    strategy: str = "majority"

    def __post_init__(self) -> None:
        if self.cap < 1:
            raise ValueError("cap must be at least 1")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}")

    def horizons(self, j: int) -> list[int]:
        """Checkpoints a decision after ``j`` samples looks ahead to."""
        return sorted(
            {j + 1, *(h for h in self.checkpoints if h > j)} & set(range(2, self.cap + 1))
        )

    def within(self, max_samples: int) -> Grid:
        """The same grid with the cap lowered to the samples there are."""
        cap = min(self.cap, max_samples)
        return self if cap == self.cap else Grid(cap, self.checkpoints, self.strategy)

    def pairs(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """All (j, h) decision/horizon pairs, as two arrays."""
        js, hs = [], []
        for j in range(1, self.cap):
            for h in self.horizons(j):
                js.append(j)
                hs.append(h)
        return np.array(js, dtype=np.int64), np.array(hs, dtype=np.int64)


def credit(replays: Replays, strategy: str) -> NDArray[np.float64]:
    """Correctness of each prefix: majority-vote credit, or 1 once a sample is correct (pass)."""
    return replays.solved if strategy == "pass" else replays.credit


def state_features(replays: Replays) -> NDArray[np.float64]:
    """``(P, R, T, F)`` state after each prefix: :data:`STATE_FEATURES`, then running means of
    the per-sample values (``replays.extra``; NaN until one is known)."""
    shape = replays.ids.shape
    j = np.broadcast_to(np.arange(1, shape[2] + 1, dtype=np.float64), shape)
    top1, top2 = replays.top1.astype(np.float64), replays.top2.astype(np.float64)
    distinct, abstain = replays.distinct.astype(np.float64), replays.abstain.astype(np.float64)
    cols = [
        j,
        top1,
        top2,
        top1 / j,
        top2 / j,
        (top1 - top2) / j,
        distinct,
        distinct / j,
        abstain,
        abstain / j,
        replays.run.astype(np.float64),
        replays.lead,
    ]
    out = np.stack(cols, axis=-1)
    if replays.extra is not None:
        known = ~np.isnan(replays.extra)
        total = np.cumsum(np.where(known, replays.extra, 0.0), axis=2)
        count = np.cumsum(known, axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        out = np.concatenate([out, means], axis=-1)
    return out


def pair_rows(
    states: NDArray[np.float64],
    question: NDArray[np.float64] | None,
    grid: Grid,
    orders: slice | None = None,
) -> NDArray[np.float64]:
    """Model inputs for every (problem, order, pair): ``(P, R', Q, F)`` with the state at ``j``,
    the question's features and :data:`PAIR_FEATURES`."""
    js, hs = grid.within(states.shape[2]).pairs()
    st = states[:, orders] if orders is not None else states
    p, r = st.shape[:2]
    parts = [st[:, :, js - 1, :]]
    if question is not None and question.shape[1]:
        parts.append(
            np.broadcast_to(question[:, None, None, :], (p, r, len(js), question.shape[1]))
        )
    pair = np.stack([hs, hs - js], axis=-1).astype(np.float64)
    parts.append(np.broadcast_to(pair, (p, r, len(js), 2)))
    return np.concatenate(parts, axis=-1)


@dataclass(frozen=True)
class PairRows:
    """:func:`pair_rows` without building them all: a key per (problem, order, pair) that is
    equal exactly when the rows are, and the rows at any set of positions.

    A state repeats across orders and problems (it holds vote counts and runs), so a model is
    asked once per distinct key (:meth:`distinct`) instead of once per position.
    """

    states: NDArray[np.float64]  # (P, R, T, F)
    question: NDArray[np.float64] | None  # (P, Fq), or None
    js: NDArray[np.int64]  # (Q,) decision after j samples
    hs: NDArray[np.int64]  # (Q,) horizon
    keys: NDArray[np.int64]  # (P, R, Q)

    @classmethod
    def build(
        cls, states: NDArray[np.float64], question: NDArray[np.float64] | None, grid: Grid
    ) -> PairRows:
        """Keys from the distinct (state, question) rows (:func:`unique_rows`) and the pair."""
        js, hs = grid.within(states.shape[2]).pairs()
        if question is not None and not question.shape[1]:
            question = None
        p, r, t = states.shape[:3]
        full = states
        if question is not None:
            qb = np.broadcast_to(question[:, None, None, :], (p, r, t, question.shape[1]))
            full = np.concatenate([states, qb], axis=-1)
        _, inverse = unique_rows(full.reshape(-1, full.shape[-1]))
        state_id = inverse.reshape(p, r, t)
        keys = state_id[:, :, js - 1] * len(js) + np.arange(len(js))[None, None, :]
        return cls(states, question, js, hs, keys)

    def rows(self, flat: NDArray[np.int64]) -> NDArray[np.float64]:
        """The :func:`pair_rows` rows at positions ``flat`` of the ``(P, R, Q)`` grid."""
        p, r, q = np.unravel_index(flat, self.keys.shape)
        parts = [self.states[p, r, self.js[q] - 1]]
        if self.question is not None:
            parts.append(self.question[p])
        pair = np.stack([self.hs[q], self.hs[q] - self.js[q]], axis=-1).astype(np.float64)
        parts.append(pair)
        return np.ascontiguousarray(np.concatenate(parts, axis=-1))

    def distinct(
        self, flat: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Among positions ``flat`` (default: all), one position per distinct row and, for each
        position, the index of its distinct row: ``rows(flat[first])[inverse]`` are its rows."""
        if flat is None:
            flat = np.arange(self.keys.size, dtype=np.int64)
        _, first, inverse = np.unique(
            self.keys.reshape(-1)[flat], return_index=True, return_inverse=True
        )
        return flat[first], inverse.reshape(-1)


def pair_labels(
    replays: Replays, grid: Grid, orders: slice | None = None
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The Solve step's labels ``(P, R', Q)``: the realized change in correctness from ``j`` to
    ``h`` samples of each order, and which pairs are usable (``h`` within the problem's samples;
    for a verifier, the problem not yet solved at ``j``)."""
    js, hs = grid.within(replays.max_samples).pairs()
    c = credit(replays, grid.strategy)
    c = c[:, orders] if orders is not None else c
    gain = c[:, :, hs - 1] - c[:, :, js - 1]
    valid = np.broadcast_to((hs[None, None, :] <= replays.n[:, None, None]), gain.shape).copy()
    if grid.strategy == "pass":
        valid &= c[:, :, js - 1] == 0
    return gain, valid


def extra_costs(replays: Replays, grid: Grid) -> NDArray[np.float64]:
    """``(P, R, Q)`` estimated cost of going from ``j`` to ``h`` samples: ``h - j`` times the mean
    per-sample cost of the ``j`` drawn so far (known online; exact for the ``samples`` unit)."""
    js, hs = grid.within(replays.max_samples).pairs()
    fixed = replays.fixed if replays.fixed is not None else np.zeros(replays.n.shape)
    drawn = replays.cost[:, :, js - 1] - fixed[:, None, None]
    return (hs - js)[None, None, :] * drawn / js[None, None, :]


def critical_prices(
    gains: NDArray[np.float64], costs: NDArray[np.float64], grid: Grid, max_samples: int
) -> NDArray[np.float64]:
    """``(P, R, T)`` price below which the rule continues after each prefix (0: stop at any
    price; ``inf``: a free positive gain).  ``gains`` and ``costs`` are ``(P, R, Q)``."""
    js, _ = grid.within(max_samples).pairs()
    p, r = gains.shape[:2]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(gains > 0, gains / np.where(costs > 0, costs, 0.0), 0.0)
    ratio = np.where((gains > 0) & (costs <= 0), np.inf, ratio)
    ratio = np.nan_to_num(ratio, nan=0.0, posinf=np.inf)
    out = np.zeros((p, r, max_samples))
    for j in np.unique(js):
        out[:, :, j - 1] = ratio[:, :, js == j].max(axis=2)
    return out


def stop_index(
    critical: NDArray[np.float64], replays: Replays, grid: Grid, lam: float
) -> NDArray[np.int64]:
    """``(P, R)`` prefix index where each order stops at price ``lam``: the first decision with
    ``critical <= lam`` (or, with a verifier, the first success), else the last sample allowed."""
    t = np.arange(replays.max_samples)
    last = np.minimum(replays.n, grid.cap) - 1
    stop = critical <= lam
    if grid.strategy == "pass":
        stop = stop | (replays.solved > 0)
    stop = stop | (t[None, None, :] >= last[:, None, None])
    out: NDArray[np.int64] = stop.argmax(axis=2)
    return out


def outcome(
    replays: Replays, strategy: str, at: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-problem accuracy and cost, averaged over orders, when order ``r`` stops at ``at``."""
    idx = at[..., None]
    acc = np.take_along_axis(credit(replays, strategy), idx, axis=2)[..., 0].mean(axis=1)
    cost = np.take_along_axis(replays.cost, idx, axis=2)[..., 0].mean(axis=1)
    return acc, cost


@dataclass(frozen=True)
class Calibration:
    """Two neighbouring prices and the weight on the lower (costlier) one that meets the budget.

    A problem is run at ``lam_lo`` with probability ``p_lo`` and at ``lam_hi`` otherwise;
    ``cost`` is the expected mean cost on the replays calibrated on.
    """

    lam_lo: float
    lam_hi: float
    p_lo: float
    cost: float
    slack: bool = False


def mean_cost(critical: NDArray[np.float64], replays: Replays, grid: Grid, lam: float) -> float:
    """Mean cost per problem (averaged over orders) at price ``lam``."""
    return float(
        outcome(replays, grid.strategy, stop_index(critical, replays, grid, lam))[1].mean()
    )


def calibrate(
    critical: NDArray[np.float64], replays: Replays, grid: Grid, budget: float
) -> Calibration:
    """Prices meeting ``budget`` in expectation over the replays (exact, by binary search over
    the critical prices, where the cost steps)."""
    at_zero = mean_cost(critical, replays, grid, 0.0)
    if at_zero <= budget:
        return Calibration(0.0, 0.0, 0.0, at_zero, slack=True)
    finite = critical[np.isfinite(critical) & (critical > 0)]
    candidates = np.unique(np.concatenate([[0.0], finite]))
    cheapest = mean_cost(critical, replays, grid, np.inf)
    if cheapest > budget * (1 + 1e-12):
        raise BudgetError(
            f"budget {budget:g} is below the cost of stopping as early as allowed ({cheapest:.4g})"
        )
    # smallest candidate whose cost fits; cost is non-increasing along candidates
    lo, hi = 0, len(candidates)  # candidates[hi] fits (hi == len: only inf fits)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mean_cost(critical, replays, grid, float(candidates[mid])) <= budget:
            hi = mid
        else:
            lo = mid
    lam_hi = float(candidates[hi]) if hi < len(candidates) else np.inf
    lam_lo = float(candidates[lo])
    c_hi = mean_cost(critical, replays, grid, lam_hi)
    c_lo = mean_cost(critical, replays, grid, lam_lo)
    p_lo = 0.0 if c_lo <= c_hi else float(np.clip((budget - c_hi) / (c_lo - c_hi), 0.0, 1.0))
    return Calibration(lam_lo, lam_hi, p_lo, p_lo * c_lo + (1 - p_lo) * c_hi)


def calibrate_with_margin(
    critical: NDArray[np.float64], replays: Replays, grid: Grid, budget: float, z: float
) -> tuple[Calibration, float]:
    """Prices whose expected cost plus ``z`` standard errors meets ``budget``, and that error.

    The expected cost is a mean over the problems calibrated on; with a verifier it is
    heavy-tailed (a problem never solved runs to the cap), so its standard error over problems
    is a sizeable share of the budget and new problems spend more about half the time.  The
    target is lowered to ``budget - z * se(target)`` (a fixed point, found by iteration: the
    error grows slowly with the target; where it steps, a bisection); ``z = 0`` is
    :func:`calibrate`.  Never below the
    cost of stopping as early as allowed.

    Raises:
        BudgetError: the budget is below the cost of stopping as early as allowed.
    """
    cal = calibrate(critical, replays, grid, budget)
    se = cost_error(critical, replays, grid, cal)
    if z <= 0 or cal.cost + z * se <= budget * (1 + 1e-9):  # slack included
        return cal, se
    floor = mean_cost(critical, replays, grid, np.inf)

    def at(target: float) -> tuple[Calibration, float, bool]:
        c = calibrate(critical, replays, grid, target)
        e = cost_error(critical, replays, grid, c)
        return c, e, c.cost + z * e <= budget * (1 + 1e-9) or target <= floor

    target = min(budget, cal.cost)
    for _ in range(10):  # the fixed point: usually a few steps
        new = max(budget - z * se, floor)
        if abs(new - target) <= 1e-9 * budget:
            break
        target = new
        cal, se, _ = at(target)
    if cal.cost + z * se <= budget * (1 + 1e-9) or target <= floor:
        return cal, se
    # the error steps where states flip: bisect between the floor (always kept) and here
    lo, hi = floor, target
    best = at(floor)
    for _ in range(30):
        mid = (lo + hi) / 2
        got = at(mid)
        if got[2]:
            lo, best = mid, got
        else:
            hi = mid
    return best[0], best[1]


def cost_error(
    critical: NDArray[np.float64], replays: Replays, grid: Grid, cal: Calibration
) -> float:
    """Standard error over problems of the calibrated rule's mean cost (0 with one problem)."""
    cost = mixed_outcome(critical, replays, grid, cal)[1]
    return float(cost.std(ddof=1) / np.sqrt(len(cost))) if len(cost) > 1 else 0.0


def mixed_outcome(
    critical: NDArray[np.float64], replays: Replays, grid: Grid, cal: Calibration
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-problem expected accuracy and cost of the calibrated (mixed) rule."""
    acc_hi, cost_hi = outcome(
        replays, grid.strategy, stop_index(critical, replays, grid, cal.lam_hi)
    )
    if cal.p_lo == 0.0:
        return acc_hi, cost_hi
    acc_lo, cost_lo = outcome(
        replays, grid.strategy, stop_index(critical, replays, grid, cal.lam_lo)
    )
    w = cal.p_lo
    return w * acc_lo + (1 - w) * acc_hi, w * cost_lo + (1 - w) * cost_hi


def first_success(replays: Replays, cap: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """With a verifier: draw until the first correct sample, at most ``cap`` samples."""
    grid = Grid(cap=cap, checkpoints=(), strategy="pass")
    never = np.full(replays.ids.shape, np.inf)  # no price stops it: only a success or the cap
    return outcome(replays, "pass", stop_index(never, replays, grid, 0.0))
