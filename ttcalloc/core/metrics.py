"""Evaluation metrics: paired bootstrap intervals, regret, imitation and the paper's bound."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ttcalloc.core.oracle import FloatArray, IntArray

CHUNK = 250  # resamples per block: bounds memory at CHUNK x problems


def bootstrap_means(values: FloatArray, n_boot: int, seed: int) -> FloatArray:
    """Means of ``values`` (problems x columns) over ``n_boot`` resamples of the problems.

    Every column is resampled with the same problems (paired), so differences between columns
    can be read off the same draws.  Deterministic for a seed and ``n_boot``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n = values.shape[0]
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, values.shape[1]))
    for lo in range(0, n_boot, CHUNK):
        m = min(CHUNK, n_boot - lo)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=m).astype(np.float64)
        out[lo : lo + m] = counts @ values / n
    return out


def interval(draws: FloatArray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap draws."""
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return float(lo), float(hi)


def share_of_gain(accuracy: float, uniform: float, oracle: float) -> float | None:
    """The share of the oracle's gain over uniform that a policy captures (None if no gain)."""
    room = oracle - uniform
    return (accuracy - uniform) / room if room > 1e-12 else None


def confusion(truth: IntArray, chosen: IntArray, n_actions: int) -> IntArray:
    """Counts with the oracle's action as the row and the policy's as the column."""
    out: IntArray = np.zeros((n_actions, n_actions), dtype=np.int64)
    np.add.at(out, (truth, chosen), 1)
    return out


@dataclass(frozen=True)
class Imitation:
    """How well a policy imitates the oracle, and the paper's regret bound.

    For a per-problem oracle, ``regret = mean_i [p_i(o_i) - p_i(a_i)]`` and each term is 0 where
    the actions agree and at most the problem's accuracy range where they do not, so
    ``regret <= imitation_error * max_gap`` (the paper's bound); ``mean_gap_bound`` is the
    tighter ``mean_i [a_i != o_i] * range_i``.
    """

    accuracy: float
    regret: float
    max_gap: float
    bound: float
    mean_gap_bound: float
    holds: bool
    matrix: IntArray


def imitation(acc: FloatArray, truth: IntArray, chosen: IntArray) -> Imitation:
    """Imitation accuracy of ``chosen`` against the oracle's ``truth``, its regret, the bound."""
    rows = np.arange(acc.shape[0])
    differ = truth != chosen
    spread = np.nanmax(acc, axis=1) - np.nanmin(acc, axis=1)
    regret = float((acc[rows, truth] - acc[rows, chosen]).mean())
    max_gap = float(spread.max())
    bound = float(differ.mean()) * max_gap
    return Imitation(
        accuracy=float(1 - differ.mean()),
        regret=regret,
        max_gap=max_gap,
        bound=bound,
        mean_gap_bound=float((differ * spread).mean()),
        holds=regret <= bound + 1e-12,
        matrix=confusion(truth, chosen, acc.shape[1]),
    )


def upper_hull(cost: FloatArray, acc: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The upper concave hull of (cost, accuracy) points, from the cheapest point (the most
    accurate of the cheapest) to the most accurate (the cheapest of those): the accuracy a mix of
    two points buys at each cost.  Vertices have strictly increasing cost and accuracy."""
    order = np.lexsort((-np.asarray(acc), np.asarray(cost)))
    xs: list[float] = []
    ys: list[float] = []
    for j in order:
        c, a = float(cost[j]), float(acc[j])
        if ys and a <= ys[-1]:
            continue  # dominated: costs no less, is no more accurate
        while len(xs) >= 2 and (ys[-1] - ys[-2]) * (c - xs[-2]) <= (a - ys[-2]) * (xs[-1] - xs[-2]):
            xs.pop()  # below the chord from the vertex before it to this point
            ys.pop()
        xs.append(c)
        ys.append(a)
    return np.array(xs), np.array(ys)


@dataclass(frozen=True)
class Reach:
    """The smallest cost at which a curve reaches an accuracy (None: not reached).

    ``at_most``: the curve's cheapest point already reaches it, so the true smallest cost (below
    the costs evaluated) may be lower.
    """

    cost: float | None
    at_most: bool = False


def cost_to_reach(cost: FloatArray, acc: FloatArray, target: float, tol: float = 1e-12) -> Reach:
    """The smallest cost at which the piecewise-linear curve through the (cost, accuracy) points,
    sorted by cost, reaches ``target`` (linear interpolation between neighbouring points)."""
    order = np.lexsort((np.asarray(acc), np.asarray(cost)))
    c = np.asarray(cost, dtype=np.float64)[order]
    a = np.asarray(acc, dtype=np.float64)[order]
    if c.size == 0:
        return Reach(None)
    if a[0] >= target - tol:
        return Reach(float(c[0]), at_most=True)
    for i in range(1, c.size):
        if a[i] >= target - tol:
            share = min(1.0, max(0.0, (target - a[i - 1]) / (a[i] - a[i - 1])))
            return Reach(float(c[i - 1] + share * (c[i] - c[i - 1])))
    return Reach(None)


def cost_to_reach_monotone(
    accuracy_at: Callable[[float], float], lo: float, hi: float, target: float, iters: int = 60
) -> Reach:
    """The smallest cost in [lo, hi] at which a non-decreasing accuracy function reaches
    ``target``, by bisection (exact to about (hi - lo) / 2**iters); None when ``hi`` does not."""
    tol = 1e-12
    if accuracy_at(lo) >= target - tol:
        return Reach(lo)
    if accuracy_at(hi) < target - tol:
        return Reach(None)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if accuracy_at(mid) >= target - tol:
            hi = mid
        else:
            lo = mid
    return Reach(hi)
