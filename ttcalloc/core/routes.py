"""Baselines over several models (actions ``MODEL:maj@k``): each model alone at the budget,
the best single model (chosen on train), and random routing."""

from __future__ import annotations

import numpy as np

from ttcalloc.core.actions import parse_action
from ttcalloc.core.mixes import (
    EvalData,
    Mix,
    Outcome,
    Unavailable,
    gibbs_weights,
    mix_at_budget,
    mix_probs,
    outcome_from_probs,
)
from ttcalloc.core.oracle import FloatArray


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
