"""The unit ``--budget`` is read in, checked against the policy's before any request, and the
realized cost's drift from the budget, said once the run is over.

A policy records its cost unit (``cost_unit`` in policy.json: samples, tokens, completion-tokens
or usd) and the budget it was trained at; ``--budget`` is a mean cost per question in that unit.
A budget in another unit is refused when it can be told: ``--budget-unit`` names a unit other
than the policy's; a token or dollar budget is below a tenth of the budget the policy was trained
at, or above ten times it (``--budget 1.5`` meant as samples for a policy that counts tokens);
a budget in samples is above ten times the most samples the policy draws for one question
(``--budget 480`` meant as tokens).  Naming the policy's unit with ``--budget-unit`` confirms
such a budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ttcalloc.artifacts.policy_file import COST_UNITS, UNKNOWN_UNIT
from ttcalloc.common.errors import InputError

# a budget this far from the training budget (a unit other than samples), or this far above the
# most samples a question may draw (samples), is taken as given in another unit, unless
# --budget-unit names the policy's unit
FAR = 10.0
# the realized mean cost may drift this far from the budget without a warning
DRIFT = 0.10


def budget_unit(
    policy_path: Path, info: dict[str, Any], budget: float, given: str | None, most: int
) -> str:
    """The policy's cost unit, once ``budget`` (and ``--budget-unit``, when given) are checked
    against it; one line naming the flag and both units otherwise.  ``most``: the most samples
    the policy draws for one question."""
    unit = str(info.get("cost_unit") or "samples")  # policies from before units: samples
    where = Path(policy_path) / "policy.json"
    if unit == UNKNOWN_UNIT:
        raise InputError(
            f"{where}: cost_unit is unknown (the curves it was trained on recorded none), so "
            "run cannot count --budget in it; retrain on curves with a unit (estimate --cost)"
        )
    trained = info.get("budget")
    at = f" (trained at {trained:g} {unit} per question)" if trained else ""
    if given is not None and given != unit:
        raise InputError(
            f"--budget-unit {given}: the policy counts cost in {unit}{at}; give --budget in {unit}"
        )
    if given is not None:
        return unit  # confirmed in the policy's unit
    confirm = f"(--budget-unit {unit} confirms it)"
    if unit == "samples" and budget > FAR * most:
        raise InputError(
            f"--budget {budget:g}: read in the policy's unit, samples, it is more than {FAR:g} "
            f"times the most this policy draws for one question ({most}); was it meant in "
            f"tokens? {confirm}"
        )
    if unit != "samples" and trained and not 1 / FAR <= budget / float(trained) <= FAR:
        side = "below a tenth of" if budget < float(trained) else f"more than {FAR:g} times"
        raise InputError(
            f"--budget {budget:g}: read in the policy's unit, {unit}, it is {side} the "
            f"{trained:g} {unit} per question the policy was trained at; was it meant in "
            f"another unit? {confirm}"
        )
    return unit


def check_unit_flag(given: str | None) -> None:
    """``--budget-unit``: one of the cost units."""
    if given is not None and given not in COST_UNITS:
        raise InputError(f"--budget-unit {given!r}: expected one of {', '.join(COST_UNITS)}")


def drift_warning(
    mean_cost: float, budget: float, unit: str, stopped: str | None, paced: bool = True
) -> str | None:
    """One line when a run that finished spent more than :data:`DRIFT` away from its budget
    (``paced``: False when ``--no-pace`` applied the trained prices as they are)."""
    if stopped is not None or budget <= 0:
        return None
    ratio = mean_cost / budget
    if abs(ratio - 1.0) <= DRIFT:
        return None
    unpaced = (
        "the trained prices, applied as they are (--no-pace), drift on other questions (a few "
        "escalations or samples more or less move the mean; pacing, the default, meets the "
        "budget on the questions at hand); else "
    )
    why = ("" if paced else unpaced) + (
        "its samples cost more than the policy's training samples (another model, prompt or "
        "--max-tokens?), or the budget is in another unit than the policy's"
        if ratio > 1
        else "the policy saw little to gain from more samples, or its samples cost less than "
        "in training"
    )
    return (
        f"realized mean cost {mean_cost:.4g} {unit} per question is {ratio:.2f}x the budget "
        f"{budget:g} {unit} (more than {DRIFT:.0%} off): {why}"
    )
