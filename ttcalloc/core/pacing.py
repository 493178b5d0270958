"""Pacing an adaptive policy to a budget online, one synchronous round at a time.

In round ``r`` every question still drawing holds ``r`` samples, and the policy gives each a
*critical price* ``c_i``: it continues while the price is below ``c_i`` (0: no price makes it
continue).  All decisions of the round are taken at one price, so they do not depend on the order
in which the samples arrived: the questions are ranked by critical price (highest first; equal
prices by a seeded key, then by position), and the first ``m`` continue.  ``m`` is chosen so that
the *projected* total cost meets the target::

    projected(m) = spent + (step_1 + ... + step_m) * S(m / n),    S(q) = 1 + q + ... + q^(h-1)

``spent``: what every question has cost so far (those that stopped included); ``step_i``: the
expected cost of one more sample of the ``i``-th ranked question; ``h``: the samples a continuing
question may still draw; ``q = m / n``: the share of this round's ``n`` questions that continue,
taken as the chance that a continuing question continues again at each later round (the last
hazard observed: in synchronous rounds no question has reached a later round yet).  A question
that continues draws its next sample for sure, the one after with chance ``q``, and so on.

``projected`` is non-decreasing in ``m`` (so non-increasing in the price), and the next round
recalibrates from what was actually spent, so errors of the projection are corrected while
questions remain.  Pure numpy, no IO.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Pace:
    """The decisions of one round.

    ``go[i]``: question ``i`` continues.  ``price``: the round's price, the critical price of the
    first ranked question that stops (continue iff ``critical > price``, or ``critical ==
    price`` and ranked before it); 0 when every question with a positive critical price
    continues.  ``wanted``: how many the projection lets continue; ``m``: how many do (fewer
    when ``most`` cuts them).  ``projected``: the projected total cost at ``m``.
    """

    go: NDArray[np.bool_]
    price: float
    m: int
    wanted: int
    projected: float


def rank(critical: NDArray[np.float64], keys: NDArray[np.float64]) -> NDArray[np.int64]:
    """Indices of the questions that may continue (critical price > 0), highest critical price
    first; equal prices by ``keys`` (seeded, in [0, 1)), then by index."""
    critical = np.asarray(critical, dtype=np.float64)
    eligible = np.flatnonzero(critical > 0)
    order = np.lexsort((eligible, np.asarray(keys)[eligible], -critical[eligible]))
    out: NDArray[np.int64] = eligible[order].astype(np.int64)
    return out


def continuation(q: NDArray[np.float64] | float, horizon: int) -> NDArray[np.float64]:
    """``S(q) = 1 + q + ... + q^(horizon-1)``: expected samples a continuing question draws."""
    q = np.asarray(q, dtype=np.float64)
    powers = q[..., None] ** np.arange(max(horizon, 0))
    out: NDArray[np.float64] = powers.sum(axis=-1)
    return out


def projections(
    ranked_steps: NDArray[np.float64], n: int, spent: float, horizon: int
) -> NDArray[np.float64]:
    """``projected(m)`` for ``m = 0 .. len(ranked_steps)`` (``ranked_steps``: the steps of the
    eligible questions in rank order; ``n``: all questions of the round)."""
    steps = np.asarray(ranked_steps, dtype=np.float64)
    m = np.arange(steps.size + 1)
    cum = np.concatenate([[0.0], np.cumsum(steps)])
    q = m / max(n, 1)
    out: NDArray[np.float64] = spent + cum * continuation(q, horizon)
    return out


def projected_at_price(
    critical: NDArray[np.float64],
    steps: NDArray[np.float64],
    spent: float,
    horizon: int,
    price: float,
) -> float:
    """The projected total cost when the questions with ``critical > price`` continue."""
    critical = np.asarray(critical, dtype=np.float64)
    go = critical > price
    q = go.sum() / max(critical.size, 1)
    return float(spent + np.asarray(steps)[go].sum() * continuation(q, horizon))


def pace(
    critical: NDArray[np.float64],
    keys: NDArray[np.float64],
    steps: NDArray[np.float64],
    spent: float,
    target: float,
    horizon: int,
    nearest: bool = False,
    most: int | None = None,
) -> Pace:
    """Who continues this round so that the projected total cost meets ``target``.

    The largest ``m`` with ``projected(m) <= target`` (none continues when even ``m = 0``
    exceeds it); with ``nearest``, ``m + 1`` instead when its projection is strictly closer to
    the target (a soft budget: the mean realized cost then straddles it instead of staying
    below).  ``most`` caps ``m`` (a hard budget's room for worst-case samples).
    """
    critical = np.asarray(critical, dtype=np.float64)
    n = critical.size
    order = rank(critical, keys)
    go = np.zeros(n, dtype=bool)
    if horizon <= 0 or order.size == 0:
        return Pace(go, 0.0, 0, 0, float(spent))
    proj = projections(np.asarray(steps, dtype=np.float64)[order], n, spent, horizon)
    fits = np.flatnonzero(proj <= target * (1 + 1e-12) + 1e-12)
    wanted = int(fits[-1]) if fits.size else 0
    if (
        nearest
        and wanted + 1 < proj.size
        and abs(proj[wanted + 1] - target) < abs(proj[wanted] - target)
    ):
        wanted += 1
    m = wanted if most is None else max(0, min(wanted, int(most)))
    go[order[:m]] = True
    price = float(critical[order[m]]) if m < order.size else 0.0
    return Pace(go, price, m, wanted, float(proj[m]))
