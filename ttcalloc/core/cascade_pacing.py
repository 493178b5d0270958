"""Pacing a cascade to a budget online: one price per round, from what each question aims at.

A stop policy's rounds project what continuing questions will still draw from the share that
continues (:mod:`ttcalloc.core.pacing`).  A cascade's options differ 50-fold in cost, so that
projection misleads (measured: it sent 99% of the questions to the dearest model); so did a
table of the dollars still to come from each state at each price, measured on the training
replays (the paths that reach a state at a low price are not the questions that reach it at the
price the run has been paying: at round 3 it sent 42 of 46 questions to gpt-4 and spent 3x the
budget).  What held the budget is the rule's own estimate: at each price of a grid, every
question that has drawn takes its best option, whose estimated extra dollars (the samples still
to draw towards the option's target, at the model's cost per sample) are what it *aims* to
spend.  The round's prices are those whose projection ``spent + sum of aims`` is nearest
``budget x questions`` (:func:`round_prices`: two neighbouring prices of the grid, split among
the questions in a seeded order, since questions alike all switch options at the same price);
the next round starts again from what was actually spent, so a question that stops short of its
aim leaves the money to the others.
Pure numpy, no IO.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ttcalloc.core.cascade import Calibration, Paths

SPAN = 9.0  # the grid spans the calibrated price times e^-SPAN .. e^SPAN
POINTS = 73


def price_grid(center: float) -> NDArray[np.float64]:
    """Prices evenly spaced in log around ``center`` (the calibrated price, > 0 and finite)."""
    if not (0 < center < np.inf):
        raise ValueError("a price grid needs a positive, finite centre")
    out: NDArray[np.float64] = center * np.exp(np.linspace(-SPAN, SPAN, POINTS))
    return out


def slack_grid(unit_cost: NDArray[np.float64], cap: int) -> NDArray[np.float64]:
    """Prices for a cascade whose calibrated price is 0 (trained at a budget above all it would
    buy): 0 first (what it was trained to do), then :func:`price_grid` around the geometric
    middle of the critical prices options can have, from a gain of 0.001 on ``cap`` samples of
    the dearest model to a gain of 1 on one sample of the cheapest (``unit_cost``: each model's
    dollars per sample, > 0), so that a run at a lower budget can still be paced."""
    unit = np.asarray(unit_cost, dtype=np.float64)
    if unit.size == 0 or not np.all((unit > 0) & np.isfinite(unit)):
        raise ValueError("a slack grid needs each model's positive, finite dollars per sample")
    center = 1.0 / np.sqrt(1e3 * max(cap, 1) * unit.max() * unit.min())
    out: NDArray[np.float64] = np.concatenate([[0.0], price_grid(float(center))])
    return out


def aims(
    gains: NDArray[np.float64], dollars: NDArray[np.float64], grid: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``(G,)``: the extra dollars a question that has drawn aims to spend at each price of
    ``grid``: those of its best option (predicted gain minus price times extra dollars), 0 when
    it stops (no option positive)."""
    if not len(gains):
        return np.zeros(grid.size)
    with np.errstate(invalid="ignore"):
        value = gains[None, :] - np.where(dollars[None, :] > 0, grid[:, None] * dollars, 0.0)
    best = value.argmax(axis=1)
    go = value[np.arange(grid.size), best] > 0
    out: NDArray[np.float64] = np.where(go, dollars[best], 0.0)
    return out


@dataclass(frozen=True)
class RoundPrices:
    """A round's prices: ``price[i]`` for the ``i``-th question, one of two neighbouring prices
    of the grid (the lower, costlier one for the first ``m`` questions in key order), and the
    projected total dollars."""

    price: NDArray[np.float64]
    projected: float
    lo: float
    hi: float
    m: int


def round_prices(
    aimed: NDArray[np.float64],
    grid: NDArray[np.float64],
    keys: NDArray[np.float64],
    spent: float,
    target: float,
) -> RoundPrices:
    """Prices for this round's questions whose projection ``spent + sum of each question's aim
    at its price`` is nearest ``target`` (the budget for every question).

    ``aimed``: ``(G, n)``, :func:`aims` of each question still drawing at each price of
    ``grid``.  The projection falls as the price rises; between the two neighbouring prices that
    bracket the target, questions take the lower price one at a time in ``keys`` order (seeded,
    so equal questions split as a mix of the two prices would), and the count nearest the
    target wins (ties: fewer at the lower price).  A target above the projection at the lowest
    price puts every question there, one below it at the highest price every question there.
    """
    aimed = np.asarray(aimed, dtype=np.float64).reshape(grid.size, -1)
    n = aimed.shape[1]
    proj = spent + aimed.sum(axis=1)
    if proj[0] <= target:
        g = 0
    elif proj[-1] >= target:
        g = grid.size - 1
    else:
        g = int(np.flatnonzero(proj > target)[-1])  # proj[g] > target >= proj[g + 1]
        order = np.lexsort((np.arange(n), keys))
        steps = (aimed[g] - aimed[g + 1])[order]
        along = proj[g + 1] + np.concatenate([[0.0], np.cumsum(steps)])  # m at the lower price
        dist = np.abs(along - target)
        m = int(np.flatnonzero(dist <= dist.min() + 1e-12)[0])
        price = np.full(n, grid[g + 1])
        price[order[:m]] = grid[g]
        return RoundPrices(price, float(along[m]), float(grid[g]), float(grid[g + 1]), m)
    return RoundPrices(np.full(n, grid[g]), float(proj[g]), float(grid[g]), float(grid[g]), 0)


MIN_PROBLEMS = 20  # fewer problems continuing at a step than this: its ratio is 1


def pace_ratio(cal: Calibration, priced: Sequence[tuple[Paths, float]]) -> tuple[float, ...]:
    """Per decision ``t`` (after ``t`` samples; 0: the start), the dollars the questions that
    continue there then actually spend per dollar their options aim at, on replays at the
    calibrated prices ``cal`` (``priced``: :func:`ttcalloc.core.cascade.priced_paths` with
    ``trace``; the prices weighted as mixed).

    An option aims at its target's samples, but the rule decides again after each one: it often
    stops sooner (once a vote is clear) and may escalate later, which no aim counts; so summed
    aims misstate what is still to be spent (measured on an SVAMP-based weak + strong set: by a
    third, too high, after the first sample at $0.001, and by half, too low, at $0.0035).
    `run` scales each question's aims by this ratio before :func:`round_prices` (an aim as
    :func:`aims` counts it: 0 for a question with no positive option, even one that must start).
    A step where fewer than :data:`MIN_PROBLEMS` problems continue (in any order), or with no
    aims, has ratio 1: too few to tell.  A slack calibration (price 0) has none: measured at
    price 0 only, it misled a slack policy paced below its training budget (spent 0.955 of it).
    """
    if cal.slack:  # measured at price 0 only, which a paced slack run leaves: no ratio
        return ()
    steps = max(len(p.aimed) for p, _ in priced)

    def total(field: str) -> NDArray[np.float64]:
        out = np.zeros(steps)
        for p, w in priced:
            v = getattr(p, field)
            out[: len(v)] += w * v
        return out

    aimed, left = total("aimed"), total("left")
    going = np.zeros(steps)
    for p, _ in priced:
        going[: len(p.going)] = np.maximum(going[: len(p.going)], p.going)
    ok = (going >= MIN_PROBLEMS) & (aimed > 0)
    ratio = np.where(ok, left / np.where(ok, aimed, 1.0), 1.0)
    return tuple(float(x) for x in ratio)
