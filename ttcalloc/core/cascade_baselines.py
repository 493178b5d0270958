"""What a learned cascade is compared with, on the same replays: the MoT threshold rule, one
model's ``maj@k``, the best mix of two (cost, accuracy) points at a budget, and both tuned at
one."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from ttcalloc.core.replays import Replays

K = TypeVar("K")

MOT_KS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32)  # the MoT rule's cheap samples tried
# 0: never escalate (the cheap model's maj@k alone; 0.1-0.2 added with it on 2026-12-05: a
# much weaker cheap model's leader share is often below 0.3, so every setting escalated a lot)
MOT_THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def mot_rule(
    cheap: Replays, strong: Replays, k: int, threshold: float, strong_k: int = 1
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The MoT cascade (Yue et al., ICLR 2024): ``k`` samples of the cheap model; when the
    leading answer's share is below ``threshold``, ``strong_k`` samples of the strong model
    answer instead.  Per-problem accuracy, dollars and escalation rate, averaged over orders."""
    kk = np.minimum(k, cheap.n)[:, None]  # (P, 1)
    idx = (kk - 1)[..., None]
    top = np.take_along_axis(cheap.top1, np.broadcast_to(idx, (*cheap.top1.shape[:2], 1)), 2)
    share = top[..., 0] / kk
    up = share < threshold
    c_cheap = np.take_along_axis(cheap.cost, np.broadcast_to(idx, (*cheap.cost.shape[:2], 1)), 2)
    c_cheap = c_cheap[..., 0]
    a_cheap = np.take_along_axis(
        cheap.credit, np.broadcast_to(idx, (*cheap.credit.shape[:2], 1)), 2
    )[..., 0]
    sk = np.minimum(strong_k, strong.n)[:, None]
    sidx = np.broadcast_to((sk - 1)[..., None], (*strong.cost.shape[:2], 1))
    c_strong = np.take_along_axis(strong.cost, sidx, 2)[..., 0]
    a_strong = np.take_along_axis(strong.credit, sidx, 2)[..., 0]
    acc = np.where(up, a_strong, a_cheap).mean(axis=1)
    cost = (c_cheap + np.where(up, c_strong, 0.0)).mean(axis=1)
    return acc, cost, up.mean(axis=1).astype(np.float64)


def single_model(rep: Replays, k: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-problem accuracy and dollars of ``maj@k`` of one model, averaged over orders."""
    kk = np.minimum(k, rep.n)[:, None]
    idx = np.broadcast_to((kk - 1)[..., None], (*rep.cost.shape[:2], 1))
    return (
        np.take_along_axis(rep.credit, idx, 2)[..., 0].mean(axis=1),
        np.take_along_axis(rep.cost, idx, 2)[..., 0].mean(axis=1),
    )


def hull_mix(points: Sequence[tuple[float, float]], budget: float) -> tuple[int, int, float] | None:
    """On the upper concave hull of ``(cost, accuracy)`` points, the two neighbours around
    ``budget`` and the weight on the first (costlier) one: ``(i, j, w)``; None when even the
    cheapest point costs more than the budget.  At or above the costliest hull point, that point
    alone (``w`` 1)."""
    hull = upper_hull(points)
    if not hull or points[hull[0]][0] > budget * (1 + 1e-12):
        return None
    if budget <= points[hull[0]][0]:  # at the cheapest point (within rounding)
        return hull[0], hull[0], 1.0
    for lo, hi in itertools.pairwise(hull):
        if points[lo][0] <= budget <= points[hi][0]:
            span = points[hi][0] - points[lo][0]
            w = 1.0 if span <= 0 else (budget - points[lo][0]) / span
            return hi, lo, w
    return hull[-1], hull[-1], 1.0


def upper_hull(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the upper concave hull of ``(cost, accuracy)`` points, cheapest first (a
    point that costs no less and is no better than the one before is left out)."""
    pts = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    hull: list[int] = []
    for i in pts:
        c, a = points[i]
        if hull and a <= points[hull[-1]][1]:
            continue  # dominated: costs no less and is no better
        while len(hull) >= 2:
            (c1, a1), (c2, a2) = points[hull[-2]], points[hull[-1]]
            if (a2 - a1) * (c - c1) <= (a - a1) * (c2 - c1):
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


def tune_mot(reps: Sequence[Replays], budget: float) -> dict[str, Any] | None:
    """The MoT rule tuned on these replays at ``budget``: every (cheap model, k, threshold)
    with the last model as the strong one answering with one sample, then the mix of two
    settings on the upper hull of (dollars, accuracy) that meets the budget."""
    strong = len(reps) - 1
    settings, points = [], []
    for cheap in range(strong):
        for k in MOT_KS:
            if k > int(reps[cheap].n.min()):
                continue
            for th in MOT_THRESHOLDS:
                acc, cost, _ = mot_rule(reps[cheap], reps[strong], k, th)
                settings.append({"cheap": cheap, "k": k, "threshold": th})
                points.append((float(cost.mean()), float(acc.mean())))
    mix = hull_mix(points, budget)
    if mix is None:
        return None
    i, j, w = mix
    return {
        "settings": [settings[i], settings[j]],
        "weight": w,
        "train_accuracy": (w * points[i][1] + (1 - w) * points[j][1]),
    }


def tune_single(reps: Sequence[Replays], budget: float) -> list[dict[str, Any] | None]:
    """Each model's uniform allocation at ``budget`` on these replays: the two ``maj@k`` on its
    hull and the mix that meets the budget (None: its one sample costs more)."""
    out: list[dict[str, Any] | None] = []
    for rep in reps:
        ks = list(range(1, int(rep.n.min()) + 1))
        points = []
        for k in ks:
            acc, cost = single_model(rep, k)
            points.append((float(cost.mean()), float(acc.mean())))
        mix = hull_mix(points, budget)
        if mix is None:
            out.append(None)
            continue
        i, j, w = mix
        out.append(
            {
                "ks": [ks[i], ks[j]],
                "weight": w,
                "train_accuracy": w * points[i][1] + (1 - w) * points[j][1],
            }
        )
    return out


def best_tuned(tuned: Mapping[K, dict[str, Any] | None]) -> K | None:
    """Of the tuned allocations (:func:`tune_single`'s, by model), the key of the one with the
    best train accuracy (None: none fits the budget)."""
    fits = {k: v for k, v in tuned.items() if v is not None}
    return max(fits, key=lambda k: fits[k]["train_accuracy"]) if fits else None
