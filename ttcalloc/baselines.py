"""Trivial allocation baselines that every result is shown against."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ttcalloc.oracle import FloatArray, InfeasibleBudget, solve_exact


@dataclass(frozen=True)
class UniformMix:
    """The same action for every problem, mixing two actions so that the mean cost meets B."""

    accuracy: float
    cost: float
    action_lo: int
    action_hi: int
    p_hi: float


def uniform_at_budget(acc: FloatArray, cost: FloatArray, budget: float) -> UniformMix | None:
    """Best fixed action, or mix of two, over actions available for every problem.

    Each action is summarized by its mean accuracy and mean cost over problems; the mix of two
    actions on the upper hull of those points that spends exactly ``budget`` (or the best action
    when the budget is slack) is returned.  None when no action is available for every problem or
    the budget is below the cheapest action's mean cost.
    """
    full = ~np.isnan(acc).any(axis=0)
    if not full.any():
        return None
    cols = np.flatnonzero(full)
    mean_acc = acc[:, cols].mean(axis=0)[None, :]
    mean_cost = cost[:, cols].mean(axis=0)[None, :]
    try:
        sol = solve_exact(mean_acc, mean_cost, budget)
    except InfeasibleBudget:
        return None
    return UniformMix(
        accuracy=sol.objective,
        cost=sol.expected_cost,
        action_lo=int(cols[sol.action_lo[0]]),
        action_hi=int(cols[sol.action_hi[0]]),
        p_hi=float(sol.p_hi[0]),
    )
