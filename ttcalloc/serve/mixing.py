"""A static policy's window decided nearest its budget: two neighbouring multipliers mixed.

``run`` calibrates one multiplier on a whole file: the smallest whose choices fit the budget.
A window of ``serve`` holds a few dozen questions, often alike (equal scores), so the next
smaller multiplier moves many of them to a costlier action at once and the one that fits may
spend well under the budget, window after window.  As a cascade's rounds mix two neighbouring
prices (:func:`ttcalloc.core.cascade_pacing.round_prices`), a window's questions take the
smaller multiplier one at a time, in a seeded order of their text, while the window's expected
cost is nearest ``budget x questions``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ttcalloc.common.hashing import seeded_unit
from ttcalloc.learn.policy import decide


def mixed_mus(
    scores: np.ndarray,
    costs: np.ndarray,
    mu: float,
    cost: np.ndarray,
    budget: float,
    questions: Sequence[str],
) -> list[float]:
    """Each question's multiplier: ``mu`` (the smallest that fits ``budget``, as calibrated) or
    the next smaller one, whose choices cost more; ``cost``: each action's expected cost in the
    budget's unit (``costs``: the policy's, which decide)."""
    n = scores.shape[0]
    below = mu - 1e-9 * max(1.0, abs(mu))
    hi, lo = decide(scores, costs, mu), decide(scores, costs, below)
    c_hi, c_lo = cost[hi], cost[lo]
    target = budget * n
    order = sorted(range(n), key=lambda i: (seeded_unit("serve-mix", questions[i]), i))
    along = float(c_hi.sum()) + np.concatenate([[0.0], np.cumsum((c_lo - c_hi)[order])])
    dist = np.abs(along - target)
    m = int(np.flatnonzero(dist <= dist.min() + 1e-15)[0])
    out = [mu] * n
    for i in order[:m]:
        out[i] = below
    return out
