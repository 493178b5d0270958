"""Shrinking a learned policy's scores towards uniform allocation, by a weight chosen out of fold.

A learned policy picks ``argmax_a score(a | x) - mu * cost(a)``.  With the score replaced by
``target(a)``, the mean accuracy curve of the training problems, every problem gets the same
scores, and the only choices mu can make are the actions of that curve's upper concave hull:
exactly the actions uniform allocation mixes.  The shrunk score

    score_w(a | x) = target(a) + w * score(a | x)

moves from uniform (w -> 0) to the learner (w = inf, the unshrunk scores).  At w = 0 the policy
*is* uniform allocation: a hash of each question decides which problems get the costlier of
uniform's two actions.  At the next weight the learner only makes that decision, so the
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

# 0: uniform itself (a hash of the question, not the learner, decides which problems get the
# costlier of uniform's two actions); 1e-6: the learner only breaks those ties; inf: unshrunk.
UNIFORM = 0.0
TIE = 1e-6
WEIGHTS: tuple[float, ...] = (
    UNIFORM,
    TIE,
    *(float(10**e) for e in np.arange(-3.0, 3.01, 0.5)),
    math.inf,
)


def shrink(
    scores: FloatArray, target: FloatArray, weight: float, draws: FloatArray | None = None
) -> FloatArray:
    """``target + weight * scores`` per row (the scores themselves for an infinite weight).

    At weight :data:`UNIFORM` the learner's scores are not used: ``draws`` (one number in [0, 1)
    per row, a hash of the question) break the ties between uniform's two actions, so the
    problems getting the costlier one are a random subset and the policy is uniform allocation
    in distribution.  Unavailable actions (``-inf`` scores) stay unavailable.
    """
    if math.isinf(weight):
        return scores
    t = np.asarray(target, dtype=np.float64)[None, :]
    if weight == UNIFORM:
        if draws is None:
            raise ValueError("the uniform weight needs one draw per row")
        # target(a) grows along uniform's actions, so a larger draw prefers the costlier one
        tie = np.asarray(draws, dtype=np.float64)[:, None] * t
        out: FloatArray = np.where(np.isfinite(scores), t + TIE * tie, scores)
        return out
    out = t + weight * scores
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
