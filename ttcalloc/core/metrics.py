"""Evaluation metrics: paired bootstrap intervals, regret, imitation and the paper's bound."""

from __future__ import annotations

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
