"""Plain sentences on what the scored records say, for the report's notes and the CLI.

One vocabulary everywhere (CLI notes, report.md, README, ``run --compare``): see
:mod:`ttcalloc.common.wording`.
"""

from __future__ import annotations

from typing import Any

from ttcalloc.common.wording import (
    AHEAD,
    BEHIND,
    SMALL_TEST,
    alike,
    compared,
    cost_text,
    difference,
    share_text,
)

OFF_TARGET = 0.05  # a baseline's cost this far from its target gets a note
OVER_BUDGET = 0.05  # a learned policy spending this far above its budget gets a note

__all__ = ["compared", "verdicts"]


def verdicts(records: list[dict[str, Any]]) -> list[str]:
    """Plain sentences on what the intervals say about each learned policy, and surprises.

    Ends with how many intervals the sentences read (about 1 in 20 excludes 0 by chance) and,
    on fewer than ``SMALL_TEST`` test problems, that the intervals are wide.
    """
    out = []
    read = 0
    for r in records:
        b = f"{r['budget']:g}"
        sequential = r["policy"] in ("esc", "adaptive", "verify") or (
            r["kind"] == "learned" and (r.get("params") or {}).get("learner") == "stop"
        )
        if sequential and (r["regret"] or 0.0) < -1e-9:
            out.append(
                f"{r['policy']} at {b} is above the fixed-k oracle by {-r['regret']:.4f}: the "
                "oracle chooses one fixed action per problem (knowing its curve), a sequential "
                "policy adapts within a problem to the answers it sees."
            )
        if r["kind"] != "learned" or r["gain_vs_uniform_ci"] is None:
            continue
        lo, hi = r["gain_vs_uniform_ci"]
        gain = difference(r["gain_vs_uniform"], lo, hi)
        fallback = bool((r.get("params") or {}).get("uniform_fallback"))
        if alike(r["gain_vs_uniform"], lo, hi):
            verdict = "scores as uniform does on every test problem (gain +0.0000)"
        else:
            read += 1
            verdict = f"is {compared(lo, hi)} uniform at the same cost: {gain}"
        if fallback:
            verdict += (
                " (it fell back to uniform allocation when trained: a hash of each question, "
                "not its features, decides which questions get the costlier of the two actions "
                "uniform mixed on the train problems, so this gain is not what the features know)"
            )
        rivals = [
            o
            for o in records
            if o["budget"] == r["budget"] and o["kind"] == "baseline" and o["policy"] != "uniform"
        ]
        best = max(rivals, key=lambda o: o["gain_vs_uniform"] or 0.0, default=None)
        mine = r["gain_vs_uniform"] or 0.0
        if best is not None and (best["gain_vs_uniform"] or 0.0) > mine:
            verdict += (
                f"; {best['policy']} has the higher point gain over uniform "
                f"({best['gain_vs_uniform']:+.4f} against {mine:+.4f})"
            )
        for name, (diff, d_lo, d_hi, cost) in sorted(r.get("gain_vs", {}).items()):
            read += 1
            rival = f"{cost:g} each" if name == "k-each" else name
            verdict += (
                f"; {compared(d_lo, d_hi)} {rival} ({difference(diff, d_lo, d_hi)} in "
                f"accuracy, paired, at cost {r['cost']:.3g} against {cost:.3g})"
            )
        out.append(f"{r['policy']} at {b} {verdict}.")
    out += over_budget(records)
    for r in records:  # a baseline that could not be tuned to the cost it is shown at
        target, cost = r.get("target_cost"), r.get("cost")
        if r["kind"] == "baseline" and target and cost and abs(cost / target - 1) > OFF_TARGET:
            out.append(
                f"{r['policy']} at {r['budget']:g} spent {cost:.3g} per problem, "
                f"{abs(cost / target - 1):.0%} {'above' if cost > target else 'below'} the cost "
                f"it was tuned to ({target:.3g}): its rule cannot reach that cost on these "
                "problems; its gain over uniform is at its own cost."
            )
    if read >= 2:
        out.append(
            f"These notes read {read} intervals at 95%: with no real difference anywhere, about "
            f"{read / 20:.2g} of them would come out '{AHEAD}' or '{BEHIND}' by chance, so one "
            "such verdict among many is weak evidence on its own."
        )
    tested = max((int(r.get("problems") or 0) for r in records), default=0)
    if 0 < tested < SMALL_TEST:
        out.append(
            f"{tested} test problems: the intervals are wide and differences of a few points go "
            "unseen; read these results as a demonstration of the pipeline, not as evidence."
        )
    return out


def over_budget(records: list[dict[str, Any]]) -> list[str]:
    """A note for each learned policy whose realized test cost is more than
    :data:`OVER_BUDGET` above the budget it was run at."""
    out = []
    for r in records:
        budget, cost = r.get("budget"), r.get("cost")
        if r["kind"] != "learned" or not budget or cost is None:
            continue
        if cost > budget * (1 + OVER_BUDGET):
            recal = (r.get("params") or {}).get("recalibrated")
            how = (
                "its prices were recalibrated on the test replays"
                if recal == "test replays" or recal == "test questions"
                else "`evaluate --recalibrate` meets the budget on the test questions (no "
                "labels); the gain over uniform is at the cost it spent"
            )
            out.append(
                f"{r['policy']} at {budget:g} spent {cost:.3g} per problem, "
                f"{cost / budget - 1:.0%} over its budget: {how}."
            )
    return out


def strongest_notes(strongest: dict[str, Any], unit: str) -> list[str]:
    """One sentence: the strongest model's reference point and the cost share at which each
    policy reaches its accuracy (those that do, cheapest first; then those that do not)."""
    ref = (
        f"{strongest['model']} is the strongest model ({strongest['action']}: accuracy "
        f"{strongest['accuracy']:.4f} at {cost_text(strongest['cost'], unit, '.4g')} per problem "
        "on the test problems)"
    )
    entries = strongest["policies"]
    reached = sorted(
        (n for n in entries if entries[n]["cost"] is not None), key=lambda n: entries[n]["cost"]
    )
    missed = [n for n in entries if entries[n]["cost"] is None]
    parts = [f"{n} {share_text(entries[n])} ({entries[n]['how']})" for n in reached]
    text = f"{ref}; the share of its cost at which each policy reaches that accuracy: "
    text += "; ".join(parts) if parts else "none reaches it"
    if missed:
        text += "; not reached: " + ", ".join(f"{n} ({entries[n]['how']})" for n in missed)
    return [text + "."]
