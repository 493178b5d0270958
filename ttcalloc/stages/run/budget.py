"""The hard budget a run holds (``--hard-budget``): its ledger, built from the flags, the
questions and each sample's worst case, and refused in one line when it cannot guarantee every
question its floor."""

from __future__ import annotations

import numpy as np

from ttcalloc.artifacts.policy_file import parse_action
from ttcalloc.backends import Backend, count_prompt_tokens
from ttcalloc.common.errors import InputError
from ttcalloc.core.vote import Ledger
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.learn.policy import Policy
from ttcalloc.sampler.options import SampleOptions, worst_cost
from ttcalloc.sampler.plan import request_for
from ttcalloc.stages.run.items import Item
from ttcalloc.stages.run.kinds import AnyPolicy, policy_ks
from ttcalloc.stages.run.ledger import ModelLedger
from ttcalloc.stages.run.models import ModelPlan, dollar_worst
from ttcalloc.stages.run.options import RunOptions


def ledger_for(
    options: RunOptions,
    backend: Backend,
    items: list[Item],
    template: str | None,
    unit: str,
    floor: int,
) -> Ledger | None:
    """The hard budget: ``budget x questions`` in the policy's unit, each sample reserved at
    its worst case, every question owed the cheapest action's samples."""
    if not options.hard_budget:
        return None
    so = options.sample
    if unit == "samples":
        worst: float | None = 1.0
    elif unit == "completion-tokens":
        worst = float(so.max_tokens)
    else:
        prompt = max(count_prompt_tokens(so.model, m) for m in every_prompt(so, template, items))
        if unit == "tokens":
            worst = float(prompt + so.max_tokens)
        else:
            prices = getattr(backend, "prices", None)
            worst = worst_cost(so, prompt, 1, prices() if callable(prices) else None)
    if worst is None:
        raise InputError(
            "--hard-budget: no price is known for this model; give --price-in/--price-out"
        )
    recorded = replayed_most(backend, unit, items)
    ledger = Ledger(total=options.budget * len(items), worst=max(worst, recorded), floor=floor)
    # the budget bounds what the answers' samples cost: samples the folder already holds are
    # charged as they are used (an earlier run's uniform draws or unused samples are not)
    ledger.open([it.pid for it in items], [0] * len(items))
    if not ledger.feasible():
        raise InputError(
            f"--hard-budget: {options.budget:g} x {len(items)} questions = {ledger.total:g} {unit} "
            f"cannot guarantee every question {floor} sample(s) at their worst case "
            f"({ledger.worst:g} {unit} each{_dearest(recorded, worst)}"
        )
    return ledger


def replayed_most(backend: Backend | None, unit: str, items: list[Item]) -> float:
    """The most one sample ``backend`` serves to ``items`` may cost in ``unit`` beyond what
    ``--max-tokens`` bounds: the dearest recorded sample of the questions on ``replay:PATH``
    (which serves samples as drawn, never cut at ``--max-tokens``); 0 on any other backend."""
    most = getattr(backend, "most_cost", None)
    return float(most(unit, [it.pid for it in items])) if callable(most) else 0.0


def _dearest(recorded: float, worst: float) -> str:
    """The end of the refusal: what sets the worst case, and what to change."""
    if recorded > worst:
        return ", the dearest recorded sample replayed); raise --budget"
    return "); raise --budget or lower --max-tokens"


def every_prompt(
    so: SampleOptions, template: str | None, items: list[Item]
) -> list[list[dict[str, str]]]:
    """The messages of every question under each prompt variant it may be asked with (samples
    ``0 .. V-1`` take each variant once, in turn; one prompt without variants): a sample's worst
    case is its longest prompt, whichever variant it draws."""
    turns = range(max(1, len(so.prompt_variants)))
    return [request_for(so, template, it.problem, i, 1).messages for it in items for i in turns]


def dollar_worst_for(
    plan: ModelPlan | None,
    options: RunOptions,
    items: list[Item],
    template: str | None,
    unit: str,
    backend: Backend | None = None,
) -> dict[str, float] | None:
    """Several models under a hard budget in dollars: a sample's worst case per model (a
    ``replay:PATH`` model's at least its dearest recorded sample of the questions)."""
    if plan is None or unit != "usd" or not options.hard_budget:
        return None
    so = options.sample
    messages = every_prompt(so, template, items)
    worst = dollar_worst(plan, messages, so.max_tokens)
    backends = getattr(backend, "backends", {})
    for name in worst:
        worst[name] = max(worst[name], replayed_most(backends.get(name), unit, items))
    return worst


def cheapest_floor(policy: AnyPolicy) -> tuple[str, int]:
    """The model of a multi-model policy's cheapest start and the samples every question is
    owed of it: a static policy's cheapest action, a cascade's cheapest model (one sample)."""
    if isinstance(policy, CascadePolicy):
        return policy.models[int(np.argmin(policy.unit_cost))], 1
    assert isinstance(policy, Policy)
    cheapest = parse_action(policy.actions[int(np.argmin(policy.costs))])
    assert cheapest is not None and cheapest[0] is not None
    return cheapest[0], policy_ks(policy)[1][0]


def model_ledger(
    options: RunOptions, policy: AnyPolicy, items: list[Item], worst: dict[str, float]
) -> ModelLedger:
    """The hard budget in dollars over several models: ``budget x questions``, each sample
    reserved at its model's worst case, every question owed :func:`cheapest_floor`; refused in
    one line when that cannot be guaranteed."""
    cheapest, floor = cheapest_floor(policy)
    ledger = ModelLedger(
        total=options.budget * len(items),
        worst=worst[cheapest],
        floor=floor,
        worsts=dict(worst),
        cheapest=cheapest,
    )
    ledger.open([it.pid for it in items], [0] * len(items))
    if not ledger.feasible():
        raise InputError(
            f"--hard-budget: {options.budget:g} x {len(items)} questions = ${ledger.total:g} "
            f"cannot guarantee every question {floor} sample(s) of {cheapest} at their worst "
            f"case (${ledger.worst:.4g} each); raise --budget or lower --max-tokens"
        )
    return ledger
