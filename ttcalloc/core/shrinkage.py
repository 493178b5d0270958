"""Shrinking a learned policy's scores towards uniform allocation, by a weight chosen out of fold.

A learned policy picks ``argmax_a score(a | x) - mu * cost(a)``.  With the score replaced by
``target(a)``, the mean accuracy curve of the training problems, every problem gets the same
scores, and the only choices mu can make are the actions of that curve's upper concave hull:
exactly the actions uniform allocation mixes.  The shrunk score

    score_w(a | x) = target(a) + w * score(a | x)

moves from uniform (w -> 0) to the learner (w = inf, the unshrunk scores).  At the smallest
weight the learner only decides which problems get the costlier of uniform's two actions, so the
calibrated policy still spends the budget exactly; it can lose to uniform only if its scores rank
problems worse than chance.  The weight is chosen on out-of-fold gains over uniform: the smallest
weight whose mean gain is within ``z`` paired standard errors of the best weight's, and the
smallest weight itself unless that beats it (the one-standard-error rule, biased towards
uniform because a weight chosen by noise can only lose).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

# 1e-6: the learner only breaks ties between uniform's two actions; inf: the unshrunk learner.
WEIGHTS: tuple[float, ...] = (1e-6, *(float(10**e) for e in np.arange(-3.0, 3.01, 0.5)), math.inf)


def shrink(scores: FloatArray, target: FloatArray, weight: float) -> FloatArray:
    """``target + weight * scores`` per row (the scores themselves for an infinite weight).

    Unavailable actions (``-inf`` scores) stay unavailable.
    """
    if math.isinf(weight):
        return scores
    out: FloatArray = np.asarray(target, dtype=np.float64)[None, :] + weight * scores
    return out


def choose_weight(gains: FloatArray, z: float = 1.0) -> int:
    """Index of the weight to deploy, from per-problem out-of-fold gains over uniform.

    ``gains`` is (W, P): row w holds each problem's accuracy under weight w minus uniform's at the
    same cost, weights in increasing order.  The best row by mean gain is found; the first row
    (the smallest weight) whose mean gain is within ``z`` standard errors of the paired
    difference to the best is returned.  Row 0 is returned when no row beats it on the mean.
    """
    gains = np.asarray(gains, dtype=np.float64)
    means = gains.mean(axis=1)
    best = int(np.argmax(means))
    if means[best] <= means[0]:
        return 0
    p = gains.shape[1]
    for w in range(gains.shape[0]):
        diff = gains[best] - gains[w]
        se = float(diff.std(ddof=1) / math.sqrt(p)) if p > 1 else 0.0
        if diff.mean() <= z * se:
            return w
    return best
