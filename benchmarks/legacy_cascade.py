"""The cascade replay simulation before 2026-12-03, kept to benchmark old and new side by side.

The old :func:`simulate` priced every option of every state of every path before the first
step (``(P, R, S, O)`` arrays: 42 million values at the fit-half caps on the Date set); today's
looks only at the states the live paths are in.  The paths are the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from unittest import mock

import numpy as np
from numpy.typing import NDArray

from ttcalloc.core import cascade as cc
from ttcalloc.core.replays import Replays


def simulate(
    replays: Sequence[Replays],
    ladder: cc.Ladder,
    gains: NDArray[np.float64],
    extra: NDArray[np.float64],
    usable: NDArray[np.bool_],
    lam: float,
) -> cc.Paths:
    """Before: the rule at price ``lam`` with every state's values computed up front."""
    p, r = gains.shape[:2]
    with np.errstate(invalid="ignore"):
        price = np.where(extra > 0, lam * extra, 0.0)
    value = np.where(usable, gains - price, -np.inf)
    state = np.zeros((p, r), dtype=np.int64)
    pi, ri = np.meshgrid(np.arange(p), np.arange(r), indexing="ij")
    levels = np.array([lv for lv, _ in ladder.states], dtype=np.int64)
    js = np.array([j for _, j in ladder.states], dtype=np.int64)
    drawn = np.zeros((p, r, ladder.levels), dtype=np.int64)
    active = np.ones((p, r), dtype=bool)
    for step in range(len(ladder.states)):
        v = value[pi, ri, state]
        best = v.argmax(axis=2)
        top = np.take_along_axis(v, best[..., None], axis=2)[..., 0]
        if step == 0:
            cheapest = np.where(usable[:, :, 0], extra[:, :, 0], np.inf).argmin(axis=2)
            best = np.where(np.isfinite(top), best, cheapest)
            top = np.where(np.isfinite(top), top, 0.0)
        go = active & ((top > 0) | (step == 0))
        if not go.any():
            break
        state = np.where(go, ladder.successor[state, best], state)
        active = go
        at_level, at_j = levels[state], js[state]
        for m in range(ladder.levels):
            drawn[:, :, m] = np.where(go & (at_level == m), at_j, drawn[:, :, m])
    level, j = levels[state], js[state]
    cost = np.zeros((p, r))
    credit = np.zeros((p, r))
    for m, rep in enumerate(replays):
        d = drawn[:, :, m]
        idx = np.maximum(d - 1, 0)[..., None]
        c = np.take_along_axis(rep.cost, idx, axis=2)[..., 0]
        cost += np.where(d > 0, c, 0.0)
        credit = np.where(level == m, cc._credit(rep, np.where(level == m, j, 0)), credit)
    return cc.Paths(level, drawn, cost, credit)


@contextmanager
def old_simulate() -> Iterator[None]:
    """The old simulation patched in, for the duration of the block."""
    with mock.patch.object(cc, "simulate", simulate):
        yield
