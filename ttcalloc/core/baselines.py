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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.core import replays as sequential
from ttcalloc.core import stopping
from ttcalloc.core.actions import parse_action
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


def model_columns(actions: list[str]) -> dict[str, list[int]]:
    """Each model's action columns, models in the order they first appear ("" when the labels
    name no model: curves of one model)."""
    out: dict[str, list[int]] = {}
    for j, label in enumerate(actions):
        parsed = parse_action(label)
        out.setdefault(parsed.model if parsed is not None else "", []).append(j)
    return out


def models_of(actions: list[str]) -> list[str]:
    """The models the actions span, when they span several (``MODEL:maj@k``); else empty."""
    models = list(model_columns(actions))
    return models if len(models) > 1 else []


def model_uniform_mix(acc: FloatArray, cost: FloatArray, cols: list[int], target: float) -> Mix:
    """Uniform over one model's actions (``cols``): the mix of two adjacent actions on the upper
    hull of their (mean cost, mean accuracy) points that costs ``target`` (the most accurate
    action alone when the target is slack), with ``lo``/``hi`` indices into all actions.

    Raises :class:`Unavailable` when the target is below the model's cheapest action.
    """
    mean_cost = cost[:, cols].mean(axis=0)
    mix = mix_at_budget(acc[:, cols].mean(axis=0), mean_cost, target)
    if mix is None:
        raise Unavailable(
            f"its cheapest action costs {float(mean_cost.min()):.4g} per problem on average, "
            f"above the target {target:.4g}: it cannot run at this budget"
        )
    return Mix(cols[mix.lo], cols[mix.hi], mix.p_hi, mix.accuracy, mix.cost)


def single_model(data: EvalData, target: float, model: str) -> Outcome:
    """One model alone: uniform over its actions (two adjacent actions on its hull mixed so the
    mean cost meets the target), as ``uniform`` is over all actions."""
    cols = model_columns(data.actions).get(model)
    if cols is None:
        raise Unavailable(f"no action of model {model!r} in the curves")
    mix = model_uniform_mix(data.test.acc, data.test.cost, cols, target)
    probs = mix_probs(data.test.acc.shape, mix.lo, mix.hi, mix.p_hi)
    params = {
        "model": model,
        "lo": data.actions[mix.lo],
        "hi": data.actions[mix.hi],
        "p_hi": mix.p_hi,
    }
    return outcome_from_probs(data.test, probs, params)


def best_single(data: EvalData, target: float) -> Outcome:
    """The best single model, chosen on the train problems and scored on the test problems.

    Each model's uniform allocation at the target is computed on the train curves; the model
    with the highest train accuracy (the first listed on a tie) is scored as
    :func:`single_model` on the test curves.  Models that cannot run at the target are out.
    """
    models = models_of(data.actions)
    if not models:
        raise Unavailable("the curves hold one model")
    columns = model_columns(data.actions)
    train_acc: dict[str, float] = {}
    for model in models:
        try:
            mix = model_uniform_mix(data.train.acc, data.train.cost, columns[model], target)
        except Unavailable:
            continue
        train_acc[model] = mix.accuracy
    if not train_acc:
        raise Unavailable(f"no model's cheapest action costs {target:.4g} or less on train")
    chosen = max(train_acc, key=lambda m: train_acc[m])  # max keeps the first of equals
    out = single_model(data, target, chosen)
    out.params["train_accuracy"] = train_acc
    return out


def random_route(data: EvalData, target: float) -> Outcome:
    """Random routing: each problem goes to a model drawn at random, and every model draws the
    same k (two adjacent k mixed) so that the mean cost meets the target.

    Models are equally likely when the target affords that with one sample each; below, k is 1
    and the model distribution is the most spread-out one whose mean cost is the target (the
    costliest models drawn less often).  Only the k that every model has are used; when the
    target is above every model at the largest such k, that k is drawn (the cost stays below).
    """
    models = models_of(data.actions)
    if not models:
        raise Unavailable("the curves hold one model")
    columns = model_columns(data.actions)
    prefix = "maj" if data.strategy == "majority" else "pass"  # the curves' own combination
    ks_of: dict[str, dict[int, int]] = {}
    for model in models:
        parsed = [(parse_action(data.actions[j]), j) for j in columns[model]]
        ks_of[model] = {a.k: j for a, j in parsed if a is not None and a.strategy == prefix}
    ks = sorted(set.intersection(*(set(v) for v in ks_of.values())))
    if not ks:
        raise Unavailable("no k that every model has")
    mean_cost = data.test.cost.mean(axis=0)
    grid = np.array([[mean_cost[ks_of[m][k]] for m in models] for k in ks])  # (ks, models)
    weights = np.full(len(models), 1.0 / len(models))
    if float(grid[0] @ weights) > target:
        weights = gibbs_weights(grid[0], target)  # raises below the cheapest model's k
    level = grid @ weights  # mean cost at each k
    hi = int(np.searchsorted(level, target - 1e-12 * max(1.0, abs(target))))
    if hi >= len(ks):
        lo = hi = len(ks) - 1
        p_hi = 1.0
    elif hi == 0 or level[hi] == level[hi - 1]:
        lo, p_hi = hi, 1.0
    else:
        lo = hi - 1
        p_hi = float((target - level[lo]) / (level[hi] - level[lo]))
    probs: FloatArray = np.zeros(data.test.acc.shape)
    for m, w in zip(models, weights, strict=True):
        probs[:, ks_of[m][ks[lo]]] += w * (1 - p_hi)
        probs[:, ks_of[m][ks[hi]]] += w * p_hi
    params = {
        "models": {m: float(w) for m, w in zip(models, weights, strict=True)},
        "k_lo": ks[lo],
        "k_hi": ks[hi],
        "p_hi": p_hi,
    }
    return outcome_from_probs(data.test, probs, params)


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
