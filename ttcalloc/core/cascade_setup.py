"""What a cascade is trained over, from its models' replays: their mean dollars per sample and
order, the caps to fit, and the cheapest path's dollars (the least budget it can meet)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ttcalloc.core import cascade as cc
from ttcalloc.core.replays import Replays

DEFAULT_CAP = 16  # the smaller of the two caps ``--cap`` chooses between by default


def model_order(models: Sequence[str], units: Sequence[float], given: Sequence[str]) -> list[int]:
    """Indices of ``models`` in cascade order: as given, else by mean dollars per sample."""
    if given:
        return [list(models).index(m) for m in given]
    return sorted(range(len(models)), key=lambda i: units[i])


def unit_costs(reps: Sequence[Replays]) -> list[float]:
    """Mean dollars per sample of each model over the replays' problems (all their samples)."""
    out = []
    for r in reps:
        total = np.take_along_axis(r.cost[:, 0, :], (r.n - 1)[:, None], axis=1)[:, 0]
        out.append(float((total / r.n).mean()))
    return out


def cheapest_path(reps: Sequence[Replays], units: Sequence[float]) -> tuple[float, int]:
    """Mean dollars of the cheapest path a learned cascade can take (one sample of the model
    with the lowest mean dollars per sample, as :func:`ttcalloc.core.cascade.simulate` starts
    at an infinite price), and that model's index."""
    first = int(np.argmin(units))
    return float(reps[first].cost[:, :, 0].mean()), first


def cap_choices(reps: Sequence[Replays], cap: int | None) -> list[tuple[int, ...]]:
    """The caps to fit: ``cap`` of each model (at most its fit half), or by default
    :data:`DEFAULT_CAP` and the fit half (one of them when they are the same)."""
    halves = tuple(int(r.n.min()) for r in reps)
    if cap is not None:
        return [tuple(max(1, min(cap, h)) for h in halves)]
    small = tuple(min(DEFAULT_CAP, h) for h in halves)
    return [small] if small == halves else [small, halves]


def pick_caps(accuracy: Sequence[NDArray[np.float64]]) -> int:
    """Which fit to keep at a budget, from each fit's per-problem out-of-fold accuracy there:
    the first (the smaller cap) unless the second is clearly better
    (:func:`ttcalloc.core.cascade.clearly_better`)."""
    if len(accuracy) < 2:
        return 0
    return 1 if cc.clearly_better(accuracy[0], accuracy[1]) else 0
