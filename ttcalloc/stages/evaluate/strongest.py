"""The share of the strongest model's cost at which each policy reaches its accuracy.

On curves of several models, the strongest model is the one with the highest one-sample accuracy
(``MODEL:maj@1``) on the test problems; its reference point is that action's mean (cost,
accuracy) on test.  For each policy the smallest mean cost at which it reaches that accuracy is
found: exactly from the curves for uniform-type baselines and the oracle (they can be run at any
cost), else by linear interpolation between the budgets evaluated.  The share is that cost over
the reference cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.core import oracle
from ttcalloc.core.actions import parse_action
from ttcalloc.core.metrics import Reach, cost_to_reach, cost_to_reach_monotone, upper_hull
from ttcalloc.core.routes import model_columns, models_of

if TYPE_CHECKING:
    from ttcalloc.core.mixes import EvalData

ORACLE = "oracle"  # the same name as score.py's (score imports it from here)
EXACT = "exact, from the curves"


def strongest_model(data: EvalData) -> dict[str, Any] | None:
    """The model with the highest one-sample accuracy on test, and its one-sample action's mean
    cost and accuracy; None on one model's curves or when no model has a k = 1 action."""
    if not models_of(data.actions):
        return None
    best: dict[str, Any] | None = None
    for model, cols in model_columns(data.actions).items():
        for j in cols:
            parsed = parse_action(data.actions[j])
            if parsed is None or parsed.k != 1:
                continue
            acc = float(data.test.acc[:, j].mean())
            if best is None or acc > best["accuracy"]:
                cost = float(data.test.cost[:, j].mean())
                best = {"model": model, "action": data.actions[j], "cost": cost, "accuracy": acc}
    return best


def _exact_curve(data: EvalData, name: str, records: list[dict[str, Any]]) -> list[int] | None:
    """The action columns whose hull is this policy's accuracy at every cost, when it is a
    uniform-type baseline (uniform: all actions; single:MODEL and a best-single that chose one
    model at every budget: that model's); else None."""
    columns = model_columns(data.actions)
    if name == "uniform":
        return list(range(len(data.actions)))
    if name.startswith("single:") and name.removeprefix("single:") in columns:
        return columns[name.removeprefix("single:")]
    if name == "best-single":
        chosen = {r["params"].get("model") for r in records}
        if len(chosen) == 1 and (model := chosen.pop()) in columns:
            return columns[model]
    return None


def _oracle_reach(data: EvalData, hulls: oracle.Hulls, target: float) -> Reach:
    """The oracle's smallest mean cost reaching ``target``: its accuracy is non-decreasing in
    the budget, so bisection on the exact solver."""
    test = data.test
    lo = float(np.nanmin(test.cost, axis=1).mean())
    hi = float(np.nanmax(test.cost, axis=1).mean())

    def accuracy_at(c: float) -> float:
        return oracle.solve_exact(test.acc, test.cost, c, hulls=hulls).objective

    return cost_to_reach_monotone(accuracy_at, lo, hi, target)


def strongest_shares(data: EvalData, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The strongest model's reference point and, for every policy in ``records``, the smallest
    cost reaching its accuracy and that cost's share of the reference cost (None on one
    model's curves)."""
    ref = strongest_model(data)
    if ref is None:
        return None
    by_policy: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_policy.setdefault(rec["policy"], []).append(rec)
    test = data.test
    hulls = None
    out: dict[str, dict[str, Any]] = {}
    for name, recs in by_policy.items():
        cols = _exact_curve(data, name, recs)
        if cols is not None:
            xs, ys = upper_hull(test.cost[:, cols].mean(axis=0), test.acc[:, cols].mean(axis=0))
            reach, how = cost_to_reach(xs, ys, ref["accuracy"]), EXACT
            reach = Reach(reach.cost)  # a uniform-type policy cannot run below its cheapest
        elif name == ORACLE:
            hulls = hulls or oracle.upper_hulls(test.acc, test.cost)
            reach, how = _oracle_reach(data, hulls, ref["accuracy"]), EXACT
        else:
            cost = np.array([r["cost"] for r in recs])
            acc = np.array([r["accuracy"] for r in recs])
            reach, how = cost_to_reach(cost, acc, ref["accuracy"]), "interpolated between budgets"
            if reach.at_most:
                how = "at most (reached at the lowest budget evaluated)"
        if reach.cost is None:
            best = max(recs, key=lambda r: r["accuracy"])
            out[name] = {
                "cost": None,
                "share": None,
                "how": "not reached at any cost"
                if how == EXACT
                else "not reached at the budgets evaluated",
                "best_accuracy": best["accuracy"],
                "at_cost": best["cost"],
            }
        else:
            share = reach.cost / ref["cost"] if ref["cost"] > 0 else None
            out[name] = {"cost": reach.cost, "share": share, "how": how}
    return ref | {"policies": out}
