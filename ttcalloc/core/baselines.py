"""Baselines every learned policy is shown against, tuned to meet a target mean cost.

A baseline is a function ``(data, target) -> Outcome`` in :data:`BASELINES`; the target is the
cost every policy at a budget is matched to, or the budget itself for those in
:data:`AT_BUDGET` (the plain "k each").  It may tune itself on the train split (``data.train``,
``data.train_replays``, train questions) and is then scored on the test split (``data.test``:
the curves of held-out samples when cross-fitted).  Outcomes are expectations (mixtures are
averaged, not sampled), so they carry no sampling noise of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ttcalloc.core import replays as sequential
from ttcalloc.core import stopping
from ttcalloc.core.mixes import (
    EvalData,
    Outcome,
    Unavailable,
    gibbs_weights,
    mix_at_budget,
    mix_probs,
    outcome_from_probs,
    uniform_at_budget,
)
from ttcalloc.core.oracle import FloatArray
from ttcalloc.core.routes import best_single, models_of, random_route, single_model

if TYPE_CHECKING:
    pass


def uniform(data: EvalData, target: float) -> Outcome:
    """The same k for every problem, mixing two adjacent k so the mean cost equals the target."""
    mix = uniform_at_budget(data.test.acc, data.test.cost, target)
    if mix is None:
        raise Unavailable(f"target {target:g} is below the cheapest action's mean cost")
    probs = mix_probs(data.test.acc.shape, mix.action_lo, mix.action_hi, mix.p_hi)
    params = {
        "lo": data.actions[mix.action_lo],
        "hi": data.actions[mix.action_hi],
        "p_hi": mix.p_hi,
    }
    return outcome_from_probs(data.test, probs, params)


def same_k_each(data: EvalData, budget: float) -> Outcome:
    """The plain reading of a budget: the one action whose mean cost is the budget, for every
    problem (at B = 2 samples, maj@2 for all: "2 each").  Uniform is never below it at that
    cost (it mixes the two actions on the hull of the actions' mean cost and accuracy around
    the budget, which may skip this one).

    Scored at the budget itself, not at a learned policy's realized cost: the point is the
    figure a reader compares with.  Raises :class:`Unavailable` when no action's mean cost is
    the budget (to 1e-9 relative): no action is invented between two others.
    """
    mean_cost = data.test.cost.mean(axis=0)
    hit = np.flatnonzero(np.abs(mean_cost - budget) <= 1e-9 * max(1.0, abs(budget)))
    if hit.size == 0:
        costs = ", ".join(f"{a} {c:.4g}" for a, c in zip(data.actions, mean_cost, strict=True))
        raise Unavailable(f"no action costs exactly {budget:g} per problem ({costs})")
    # the best if several do; of several models' (each model's maj@2 at B = 2 samples), the
    # best on train: which model to run is a choice, never made on the test problems
    pick_on = data.train.acc if models_of(data.actions) else data.test.acc
    j = int(hit[np.argmax(pick_on[:, hit].mean(axis=0))])
    probs: FloatArray = np.zeros(data.test.acc.shape)
    probs[:, j] = 1.0
    return outcome_from_probs(data.test, probs, {"action": data.actions[j]})


def random_policy(data: EvalData, target: float) -> Outcome:
    """Random actions, the same spread-out distribution for every problem, costing the target."""
    w = gibbs_weights(data.test.cost.mean(axis=0), target)
    probs = np.broadcast_to(w, data.test.acc.shape).copy()
    return outcome_from_probs(
        data.test, probs, {a: float(p) for a, p in zip(data.actions, w, strict=True)}
    )


def length_heuristic(data: EvalData, target: float) -> Outcome:
    """Longer questions get more compute: the longest share of questions gets the costlier action.

    For every pair of actions that brackets the target (on train mean costs), the share of the
    longest questions that gets the costlier action is set so the train mean cost meets the
    target, and the length threshold is that quantile of train question lengths.  The pair with
    the best train accuracy is kept and applied to the test questions with the same threshold.
    """
    train_len = np.array([len(q) for q in data.train_questions], dtype=np.float64)
    test_len = np.array([len(q) for q in data.test_questions], dtype=np.float64)
    mean_cost = data.train.cost.mean(axis=0)
    target = min(target, float(mean_cost.max()))  # a slack budget buys the costliest action
    order = np.argsort(-train_len, kind="stable")  # longest first
    n = len(train_len)
    best: tuple[float, int, int, float] | None = None
    for lo in range(len(data.actions)):
        for hi in range(len(data.actions)):
            c_lo, c_hi = mean_cost[lo], mean_cost[hi]
            if not c_lo <= target <= c_hi or (lo != hi and c_hi <= c_lo):
                continue
            share = 0.0 if c_hi == c_lo else (target - c_lo) / (c_hi - c_lo)
            m = round(share * n)
            pick = np.full(n, lo)
            pick[order[:m]] = hi
            acc = float(data.train.acc[np.arange(n), pick].mean())
            threshold = float(train_len[order[m - 1]]) if m > 0 else np.inf
            if best is None or acc > best[0] + 1e-12:
                best = (acc, lo, hi, threshold)
    if best is None:
        raise Unavailable(f"target {target:g} is outside the actions' mean costs on train")
    _, lo, hi, threshold = best
    probs = np.zeros_like(data.test.acc)
    long_q = test_len >= threshold
    probs[~long_q, lo] = 1.0
    probs[long_q, hi] = 1.0
    params = {
        "short": data.actions[lo],
        "long": data.actions[hi],
        "min_chars_long": None if np.isinf(threshold) else threshold,
    }
    return outcome_from_probs(data.test, probs, params)


def _sequential(rule: str) -> Callable[[EvalData, float], Outcome]:
    def baseline(data: EvalData, target: float) -> Outcome:
        if data.strategy != "majority":
            raise Unavailable("a majority-vote rule; the curves' actions are pass@k")
        if data.train_replays is None or data.test_replays is None:
            raise Unavailable(data.replay_note or "needs the samples (pass --samples)")
        grid = sequential.settings(rule, data.max_k)
        if rule not in data.tuning:  # the train grid does not depend on the target: once
            results = [sequential.run(rule, data.train_replays, s) for s in grid]
            data.tuning[rule] = (
                np.array([r[0].mean() for r in results]),
                np.array([r[1].mean() for r in results]),
            )
        mean_acc, mean_cost = data.tuning[rule]
        mix = mix_at_budget(mean_acc, mean_cost, target)
        if mix is None:
            raise Unavailable(f"target {target:g} is below its cheapest setting on train")
        acc_lo, cost_lo = sequential.run(rule, data.test_replays, grid[mix.lo])
        acc_hi, cost_hi = sequential.run(rule, data.test_replays, grid[mix.hi])
        p = mix.p_hi
        return Outcome(
            acc=(1 - p) * acc_lo + p * acc_hi,
            cost=(1 - p) * cost_lo + p * cost_hi,
            params={"lo": grid[mix.lo], "hi": grid[mix.hi], "p_hi": p},
        )

    baseline.__doc__ = f"Sequential early stopping ({rule}), tuned on train to meet the target."
    return baseline


def first_success(data: EvalData, target: float) -> Outcome:
    """With a verifier (pass@k): draw until the first correct sample, at most K; the two caps
    around the target (tuned on train) are mixed to meet it."""
    if data.strategy != "pass":
        raise Unavailable("needs a verifier: the curves' actions are majority votes")
    if data.train_replays is None or data.test_replays is None:
        raise Unavailable(data.replay_note or "needs the samples (pass --samples)")
    caps = list(range(1, min(data.max_k, data.train_replays.max_samples) + 1))
    if "verify" not in data.tuning:
        results = [stopping.first_success(data.train_replays, k) for k in caps]
        data.tuning["verify"] = (
            np.array([r[0].mean() for r in results]),
            np.array([r[1].mean() for r in results]),
        )
    mean_acc, mean_cost = data.tuning["verify"]
    mix = mix_at_budget(mean_acc, mean_cost, target)
    if mix is None:
        raise Unavailable(f"target {target:g} is below its cheapest setting on train")
    acc_lo, cost_lo = stopping.first_success(data.test_replays, caps[mix.lo])
    acc_hi, cost_hi = stopping.first_success(data.test_replays, caps[mix.hi])
    p = mix.p_hi
    return Outcome(
        acc=(1 - p) * acc_lo + p * acc_hi,
        cost=(1 - p) * cost_lo + p * cost_hi,
        params={"lo": {"cap": caps[mix.lo]}, "hi": {"cap": caps[mix.hi]}, "p_hi": p},
    )


Baseline = Callable[[EvalData, float], Outcome]

BASELINES: dict[str, Baseline] = {
    "uniform": uniform,
    "k-each": same_k_each,
    "random": random_policy,
    "length": length_heuristic,
    "esc": _sequential("esc"),
    "adaptive": _sequential("adaptive"),
    "verify": first_success,
    "best-single": best_single,
    "random-route": random_route,
}
"""Registered baselines, in report order (``single`` is one row per model: ``PER_MODEL``)."""

PER_MODEL: dict[str, Callable[[EvalData, float, str], Outcome]] = {"single": single_model}
"""Baselines scored once per model of the curves, as ``NAME:MODEL`` (``single:gpt-4``)."""

DESCRIPTIONS: dict[str, str] = {
    "uniform": "the same action for every problem, mixing the two actions on the upper hull of "
    "the actions' (mean cost, accuracy) points around the budget so the mean cost meets it "
    "exactly (at B = 2 it may mix maj@1 with maj@4 and skip maj@2)",
    "k-each": "the plain reading of the budget: the one action costing exactly B for every "
    'problem (maj@2 at B = 2 samples: "2 each"), at B itself; absent where no action costs B',
    "random": "random actions, one max-entropy distribution meeting the budget",
    "length": "longest questions get the costlier of two actions (tuned on train)",
    "esc": "early-stopping self-consistency: stop at a unanimous window (tuned on train)",
    "adaptive": "adaptive-consistency: stop when the leader is likely the majority (tuned)",
    "verify": "with a verifier: draw until the first correct sample, at most K (tuned)",
    "single": "one model alone (single:MODEL): uniform over that model's actions, two adjacent "
    "actions on its hull mixed so the mean cost meets the budget; absent where its cheapest "
    "action costs more than the budget",
    "best-single": "the single model whose uniform allocation is best on the train problems at "
    "the budget, scored on the test problems: the one to beat",
    "random-route": "random routing: each problem a random model (equally likely when the "
    "budget affords it), every model the same k, mixed so the mean cost meets the budget",
}

NAMES = tuple(DESCRIPTIONS)
"""Every baseline name ``--baselines`` accepts, in report order."""

MULTI_MODEL = ("single", "best-single", "random-route")
"""Baselines for curves whose actions span several models (left out on one model's curves)."""


def applicable(names: tuple[str, ...], actions: list[str]) -> tuple[str, ...]:
    """The baselines of ``names`` that apply to curves over ``actions``: those for several
    models are left out when the actions span one."""
    multi = bool(models_of(actions))
    return tuple(n for n in names if multi or n not in MULTI_MODEL)


AT_BUDGET = ("k-each",)
"""Baselines scored at the budget itself rather than at the cost the others are matched to."""

SEQUENTIAL = ("esc", "adaptive", "verify")
"""Baselines replayed from the samples; each applies to one strategy (see ``APPLIES``)."""
APPLIES: dict[str, str] = {"esc": "majority", "adaptive": "majority", "verify": "pass"}
