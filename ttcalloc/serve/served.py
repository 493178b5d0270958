"""The policy ``ttcalloc serve`` answers with, loaded and checked as ``run`` loads it.

``serve`` runs static policies (``maj@k`` actions on one model, or ``MODEL:maj@k`` actions over
several), adaptive stop policies that vote by majority, and learned cascades; a policy over
several models takes ``--model NAME=SPEC`` for each of them and a price for each
(:func:`ttcalloc.stages.run.models.plan_for`, as ``run`` does).  A budget below the cheapest
answer or in another unit than the policy's is refused with one line (the checks of ``run``).  A
policy trained on samples of several prompt variants is served as ``run`` runs it: its questions
are asked with the recorded variants in turn (``--prompt-variant NAME=PROMPT`` where one is
given, needed for imported ones), program variants' programs run for their answers
(:func:`ttcalloc.stages.run.asking.asking`).  Those programs are written by the model for
questions arriving over the network and the runner is not a sandbox: a policy with program
variants is refused in one line unless ``--run-programs`` allows it (then one warning).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ttcalloc.common.errors import DataError, InputError
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.learn.policy import load_policy
from ttcalloc.sampler.variants import warn_programs
from ttcalloc.stages.run.asking import asking, grader_for
from ttcalloc.stages.run.kinds import AnyPolicy, draw_limit, policy_ks
from ttcalloc.stages.run.models import ModelPlan, PriceFlags, plan_for, prompts_sent
from ttcalloc.stages.run.units import budget_unit, check_unit_flag
from ttcalloc.text.variants import PromptVariant

RUN_PROGRAMS_FLAG = "--run-programs"


@dataclass(frozen=True)
class ServedPolicy:
    """A loaded policy and what answering with it needs: its kind, cost unit, prompt (or prompt
    ``variants``), grader, the least a request may cost (``floor``), the most samples it may
    draw (``limit``) and, over several models, each model's backend and price (``plan``)."""

    path: Path
    policy: AnyPolicy
    kind: str  # static, adaptive or cascade
    unit: str
    template: str | None
    prompt_label: str
    grader: str
    floor: float
    limit: int
    plan: ModelPlan | None = None  # several models: each one's backend and price
    variants: tuple[PromptVariant, ...] = ()  # the prompt variants drawn in turn (none: one)


def load_served(
    path: Path,
    budget: float,
    max_samples: int | None,
    budget_unit_flag: str | None = None,
    models: tuple[tuple[str, str], ...] = (),
    model: str = "",
    prices: PriceFlags | None = None,
    given: tuple[PromptVariant, ...] = (),
    run_programs: bool = False,
) -> ServedPolicy:
    """Load ``path`` for ``serve`` at ``budget`` (in ``--budget-unit`` when given, which must
    be the policy's); a policy over several models on the ``--model NAME=SPEC`` pairs
    ``models`` (``model``: the ``--model`` label), each priced (``prices``); one line naming
    the flag or file otherwise; ``given``: the ``--prompt-variant`` prompts; ``run_programs``:
    whether program variants may be served (``--run-programs``), refused otherwise."""
    policy = load_policy(path)
    plan = plan_for(policy, models, model, prices or PriceFlags(), Path(path))
    if plan is not None:  # every sample's dollars are counted at its model's price
        plan.prices.require(plan.names, hint=" (--prices FILE)")
    _, cheapest = policy_ks(policy)  # refuses actions that need a verifier
    _needs_no_metadata(policy, Path(path))
    limit = draw_limit(policy)
    if max_samples is not None:
        if max_samples < 1:
            raise InputError(f"--max-samples {max_samples}: must be at least 1")
        limit = min(limit, max_samples)
    check_unit_flag(budget_unit_flag)
    unit = budget_unit(path, policy.info, budget, budget_unit_flag, limit)
    adaptive = isinstance(policy, AdaptivePolicy)
    # a cascade's cheapest answer: one sample of its cheapest model, or the samples its rule
    # always draws (policy_ks)
    floor = (1.0 if unit == "samples" else 0.0) if adaptive else cheapest[1]
    if budget < floor - 1e-12:
        raise InputError(
            f"--budget {budget:g}: below the cheapest answer's expected cost {floor:g} {unit}"
        )
    # the policy's prompt variants, or its one prompt; a cascade that reads prompt kinds
    # without recorded variants is refused; program variants: refused without --run-programs,
    # else one warning (replayed samples keep their recorded answers: no program is run)
    sent = prompts_sent(model, plan)
    variants, template, label = asking(policy, Path(path), given, None, sent, False)
    if sent:
        allow_programs(variants, run_programs)
    grader = grader_for(None, policy.info)
    return ServedPolicy(
        path=Path(path),
        policy=policy,
        kind=_kind(policy),
        unit=unit,
        template=template,
        prompt_label=label,
        grader="numeric" if grader == "auto" else grader,
        floor=floor,
        limit=limit,
        plan=plan,
        variants=variants,
    )


def allow_programs(variants: tuple[PromptVariant, ...], run_programs: bool) -> None:
    """Refuse prompt variants of kind program unless ``run_programs``; with it, warn once.

    Raises:
        InputError: program variants without ``--run-programs`` (one line naming them).
    """
    programs = [v.name for v in variants if v.kind == "program"]
    if not programs:
        return
    if not run_programs:
        raise InputError(
            f"prompt variants of kind program ({', '.join(programs)}): serving them executes the "
            "Python programs the model writes for questions arriving over the network, on this "
            "machine (child processes with time and memory limits; NOT a sandbox); give "
            f"{RUN_PROGRAMS_FLAG} to allow it"
        )
    warn_programs(variants)


def _kind(policy: AnyPolicy) -> str:
    if isinstance(policy, CascadePolicy):
        return "cascade"
    return "adaptive" if isinstance(policy, AdaptivePolicy) else "static"


def _needs_no_metadata(policy: AnyPolicy, path: Path) -> None:
    """A request is a question alone: a policy whose features read a problem's level or
    subject cannot score it."""
    import polars as pl

    probe = pl.DataFrame({"problem_id": ["probe"], "question": ["probe"]})
    try:
        policy.metas(probe, path)
    except DataError as exc:
        raise InputError(
            f"{path}: the policy's features read problem metadata (level or subject) that a "
            "chat request does not carry; serve a policy trained without the meta feature group"
        ) from exc
