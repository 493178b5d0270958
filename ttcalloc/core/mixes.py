"""What every baseline is built from: the evaluation data, an outcome, and mixes of two options
that meet a mean cost exactly (on one row of mean accuracies and costs, or uniform over all
actions' curves), and the most spread-out distribution with a given mean cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.core import replays as sequential
from ttcalloc.core.oracle import FloatArray, InfeasibleBudget, IntArray, solve_exact

if TYPE_CHECKING:
    from ttcalloc.core.curves import Dense


class Unavailable(ValueError):
    """The baseline cannot run on this data or at this target (the message says why)."""


@dataclass(frozen=True)
class Mix:
    """Two options mixed so that the mean cost meets a budget: ``hi`` with probability p_hi."""

    lo: int
    hi: int
    p_hi: float
    accuracy: float
    cost: float


def mix_at_budget(mean_acc: FloatArray, mean_cost: FloatArray, budget: float) -> Mix | None:
    """The best mix of two options (one row of mean accuracies and costs) costing ``budget``.

    The two options are adjacent vertices of the upper hull of the (cost, accuracy) points; when
    the budget affords the most accurate option, that option alone.  None when the budget is
    below the cheapest option.
    """
    try:
        sol = solve_exact(mean_acc[None, :], mean_cost[None, :], budget)
    except InfeasibleBudget:
        return None
    return Mix(
        lo=int(sol.action_lo[0]),
        hi=int(sol.action_hi[0]),
        p_hi=float(sol.p_hi[0]),
        accuracy=sol.objective,
        cost=sol.expected_cost,
    )


@dataclass(frozen=True)
class UniformMix:
    """The same action for every problem, mixing two actions so that the mean cost meets B."""

    accuracy: float
    cost: float
    action_lo: int
    action_hi: int
    p_hi: float

    def per_problem(self, acc: FloatArray) -> FloatArray:
        """Each problem's expected accuracy under the mix."""
        out: FloatArray = (1 - self.p_hi) * acc[:, self.action_lo] + self.p_hi * acc[
            :, self.action_hi
        ]
        return out


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
    mix = mix_at_budget(acc[:, cols].mean(axis=0), cost[:, cols].mean(axis=0), budget)
    if mix is None:
        return None
    return UniformMix(
        accuracy=mix.accuracy,
        cost=mix.cost,
        action_lo=int(cols[mix.lo]),
        action_hi=int(cols[mix.hi]),
        p_hi=mix.p_hi,
    )


@dataclass(frozen=True)
class Outcome:
    """What a policy does on the test problems, in expectation."""

    acc: FloatArray  # (P,) expected accuracy per problem
    cost: FloatArray  # (P,) expected cost per problem
    probs: FloatArray | None = None  # (P, A) probability of each action, for action policies
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalData:
    """Everything a baseline may look at: train data to tune on, test data to be scored on.

    Curves are dense over the same actions and every action is available for every problem.
    """

    actions: list[str]
    test: Dense
    train: Dense
    test_questions: list[str]
    train_questions: list[str]
    test_replays: sequential.Replays | None = None
    train_replays: sequential.Replays | None = None
    replay_note: str = ""
    max_k: int = 1
    strategy: str = "majority"  # how the curves' actions combine samples: majority or pass
    tuning: dict[str, tuple[FloatArray, FloatArray]] = field(default_factory=dict, compare=False)


def mix_probs(
    shape: tuple[int, ...],
    lo: int | IntArray,
    hi: int | IntArray,
    p_hi: float | FloatArray,
) -> FloatArray:
    """(problems x actions) probabilities of a mix: ``hi`` with probability p_hi, else ``lo``.

    ``lo``, ``hi`` and ``p_hi`` are one value for every problem or one per problem.
    """
    probs: FloatArray = np.zeros(shape)
    rows = np.arange(shape[0])
    probs[rows, lo] += 1 - np.asarray(p_hi)
    probs[rows, hi] += p_hi
    return probs


def outcome_from_probs(test: Dense, probs: FloatArray, params: dict[str, Any]) -> Outcome:
    """Score a (problems x actions) action distribution on the test curves."""
    return Outcome(
        acc=(probs * test.acc).sum(axis=1),
        cost=(probs * test.cost).sum(axis=1),
        probs=probs,
        params=params,
    )


def gibbs_weights(mean_cost: FloatArray, target: float, iters: int = 200) -> FloatArray:
    """The most spread-out distribution over actions whose mean cost is ``target``.

    Maximum entropy subject to the mean cost: weights proportional to ``exp(-t * cost)``, with t
    found by bisection.  Raises :class:`Unavailable` outside [min cost, max cost].
    """
    lo_c, hi_c = float(mean_cost.min()), float(mean_cost.max())
    span = hi_c - lo_c
    tol = 1e-9 * max(1.0, abs(target))
    if target < lo_c - tol:
        raise Unavailable(f"target {target:g} is below the cheapest action's mean cost {lo_c:g}")
    if span <= tol or target >= hi_c - tol:
        top: FloatArray = (mean_cost >= hi_c - tol).astype(np.float64)
        top /= top.sum()
        return top
    if target <= lo_c + tol:
        bottom: FloatArray = (mean_cost <= lo_c + tol).astype(np.float64)
        bottom /= bottom.sum()
        return bottom
    x = (mean_cost - lo_c) / span  # in [0, 1]
    goal = (target - lo_c) / span

    def weights(t: float) -> FloatArray:
        logits = -t * x
        z = np.exp(logits - logits.max())
        out: FloatArray = z / z.sum()
        return out

    def mean_at(t: float) -> float:
        return float((weights(t) * x).sum())

    a, b = -1.0, 1.0
    while mean_at(a) < goal:
        a *= 2
    while mean_at(b) > goal:
        b *= 2
    for _ in range(iters):
        mid = 0.5 * (a + b)
        if mean_at(mid) > goal:
            a = mid
        else:
            b = mid
    return weights(0.5 * (a + b))
