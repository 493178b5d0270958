"""The words of a cascade report: the header, the notes on methods that spent other dollars than
the budget, the table (report.md), and where each method reaches the strongest model's
one-sample accuracy."""

from __future__ import annotations

from typing import Any

OVER_BUDGET = 0.05  # a cascade this far off its budget (either way) gets a note
SHORT = 0.05  # a baseline spending this far below the budget gets a note and a mark


def budget_notes(name: str, rows: list[dict[str, Any]], recalibrated: bool) -> list[str]:
    """One note naming the budgets where the cascade's realized dollars on these questions are
    more than :data:`OVER_BUDGET` above or below the budget (at the prices calibrated on train:
    the methods are then compared at different dollars); none with ``recalibrated``."""
    if recalibrated:
        return []
    off = [
        f"{abs(r['cost_over_budget'] - 1):.0%} {'over' if r['cost_over_budget'] > 1 else 'under'}"
        f" at ${r['budget']:g} (${r['cost']:.3g} per question)"
        for r in rows
        if r["method"] == "cascade" and abs(r["cost_over_budget"] - 1) > OVER_BUDGET
    ]
    if not off:
        return []
    return [
        f"{name} spent {', '.join(off)} at the prices calibrated on train, so the methods there "
        "spent different dollars: `evaluate --recalibrate` compares them at the budget on these "
        "questions (no labels); `run` re-prices each round to the budget."
    ]


def is_short(row: dict[str, Any]) -> bool:
    """A baseline whose dollars on these questions are more than :data:`SHORT` below its
    budget: the cascade's gain over it is not at matched dollars."""
    return bool(row["method"] != "cascade" and row["cost_over_budget"] < 1 - SHORT)


def short_notes(name: str, rows: list[dict[str, Any]], recalibrated: bool) -> list[str]:
    """One note per budget naming each baseline that spent more than :data:`SHORT` below it
    (its dollars and their share of the budget)."""
    notes = []
    for budget in sorted({r["budget"] for r in rows}):
        short = [r for r in rows if r["budget"] == budget and is_short(r)]
        if not short:
            continue
        same = {r.get("chosen") for r in short}  # the best single model is its model's row
        spent = ", ".join(
            f"{r['method']}"
            + (" (the best single model chosen on train)" if r["method"] in same else "")
            + f" ${r['cost']:.3g} per question ({r['cost_over_budget']:.0%})"
            for r in short
            if r.get("chosen") not in {x["method"] for x in short}
        )
        why = (
            "even the costliest setting tuned on train spends no more on these questions"
            if recalibrated
            else "at the settings and mix tuned on train"
        )
        notes.append(
            f"{name} at ${budget:g}: {spent} spent less than the budget ({why}), so "
            f"'cascade - this' there compares the cascade at ${budget:g} with fewer dollars, "
            "not at matched dollars."
        )
    return notes


def header(half: str, n: int, orders: int, recalibrate: bool, rows: list[dict[str, Any]]) -> str:
    """The report's first line: what was scored and how the methods meet the budgets."""
    text = (
        f"Scored on the {n} test problems' {half}-half samples, {orders} replay "
        "orders each; baselines tuned on the train replays at each budget (by `train`)"
    )
    if not recalibrate:
        return text + "."
    off = any(
        is_short(r)
        or r["cost_over_budget"] > 1 + OVER_BUDGET
        or (r["method"] == "cascade" and r["cost_over_budget"] < 1 - OVER_BUDGET)
        for r in rows
    )
    if not off:
        return (
            text
            + "; every method recalibrated to meet each budget on the test dollars (no labels)."
        )
    return text + (
        "; every method recalibrated to each budget on the test dollars (no labels), but some "
        "could not spend it: their dollars are marked in the table and named in the notes."
    )


def reach(points: list[tuple[float, float]], target: float) -> dict[str, Any]:
    """Where (cost, accuracy) points, joined by straight lines in cost order, first reach
    ``target``: ``how`` is ``at`` (a point reaches it and the one before does not), ``at_most``
    (the cheapest point already does: the true smallest dollars may be lower), ``interpolated``
    (between the last point below it, ``below``, and the first at or above it, ``above``) or
    ``not_reached`` (``largest``, the costliest point, and how far ``short`` it is there)."""
    pts = sorted(points)
    for i, (c, a) in enumerate(pts):
        if a < target:
            continue
        if i == 0:
            return {"how": "at_most", "cost": c, "above": [c, a]}
        c0, a0 = pts[i - 1]
        t = (target - a0) / (a - a0) if a > a0 else 1.0
        if t >= 1 - 1e-12:
            return {"how": "at", "cost": c, "above": [c, a]}
        return {
            "how": "interpolated",
            "cost": c0 + t * (c - c0),
            "below": [c0, a0],
            "above": [c, a],
        }
    c, a = pts[-1]
    return {"how": "not_reached", "cost": None, "largest": [c, a], "short": target - a}


def reach_share(points: list[tuple[float, float]], target: float, ref_cost: float) -> float | None:
    """Smallest dollars at which the (cost, accuracy) points, joined by straight lines in cost
    order, reach ``target``, as a share of ``ref_cost``; None when they never do."""
    cost = reach(points, target)["cost"]
    return None if cost is None else cost / ref_cost


def reach_text(r: dict[str, Any], ref_cost: float, questions: int) -> str:
    """A :func:`reach` in words, its dollars as shares of ``ref_cost``."""

    def at(point: list[float]) -> str:
        return f"${point[0]:.4g} ({point[0] / ref_cost:.0%}), accuracy {point[1]:.4f}"

    if r["how"] == "not_reached":
        short = r["short"]
        return (
            f"not reached at the budgets evaluated: at its most dollars, {at(r['largest'])}, "
            f"{short:.4f} short ({short * questions:.3g} of {questions} questions)"
        )
    share = f"{r['cost'] / ref_cost:.0%}"
    if r["how"] == "at_most":
        return f"at most {share}: already at its cheapest budget evaluated ({at(r['above'])})"
    if r["how"] == "at":
        return share
    return f"{share}, interpolated in dollars between {at(r['below'])} and {at(r['above'])}"


def markdown(
    name: str,
    models: list[str],
    strong: int,
    ref_acc: float,
    ref_cost: float,
    rows: list[dict[str, Any]],
    reached: dict[str, str],
) -> list[str]:
    """One cascade's section of report.md: its table and where each method reaches the
    strongest model's one-sample accuracy (``reached``: in words, by method)."""
    out = ["", f"## {name}: {' -> '.join(models)}", ""]
    out.append(
        f"Strongest model: {models[strong]}, one sample: accuracy {ref_acc:.4f} at "
        f"${ref_cost:.5f} per question."
    )
    out += [
        "",
        "| budget | method | accuracy [95%] | $ / question | cost / budget "
        "| cascade - this [95%] |",
    ]
    out.append("|---|---|---|---|---|---|")
    for r in rows:
        g = r["cascade_minus_this"]
        gain = "" if g is None else f"{g['diff']:+.4f} [{g['lo']:+.4f}, {g['hi']:+.4f}]"
        flag = " (over budget)" if r["cost_over_budget"] > 1 + OVER_BUDGET else ""
        if is_short(r):
            flag = " (under budget)"
            gain += f" (this spent ${r['cost']:.3g}, not ${r['budget']:g})"
        out.append(
            f"| ${r['budget']:.5g} | {method_label(r)} | {r['accuracy']:.4f} "
            f"[{r['accuracy_lo']:.4f}, {r['accuracy_hi']:.4f}] | ${r['cost']:.5f} "
            f"| {r['cost_over_budget']:.3f}{flag} "
            f"| {gain} |"
        )
    out += [
        "",
        f"Share of {models[strong]}'s one-sample dollars at which each reaches its accuracy:",
        "",
    ]
    out += [f"- {n}: {text}" for n, text in reached.items()]
    return out


def method_label(row: dict[str, Any]) -> str:
    """A report row's method, with the cascade's gains where they are the MoT rule."""
    gains = row.get("gains")
    return row["method"] if gains in (None, "learned") else f"{row['method']} ({gains})"
