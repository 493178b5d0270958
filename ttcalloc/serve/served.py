"""The policy ``ttcalloc serve`` answers with, loaded and checked as ``run`` loads it.

``serve`` runs static policies (``maj@k`` actions on one model) and adaptive stop policies
that vote by majority; a policy over several models (``MODEL:maj@k`` actions, cascades) is
refused with one line, as is a budget below the cheapest action or in another unit than the
policy's (the checks of ``run``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ttcalloc.common.errors import DataError, InputError
from ttcalloc.core.actions import action_models
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.learn.policy import load_policy
from ttcalloc.stages.run.asking import grader_for, prompt_for
from ttcalloc.stages.run.kinds import AnyPolicy, draw_limit, policy_ks
from ttcalloc.stages.run.units import budget_unit, check_unit_flag


@dataclass(frozen=True)
class ServedPolicy:
    """A loaded policy and what answering with it needs: its kind, cost unit, prompt, grader,
    the least a request may cost (``floor``) and the most samples it may draw (``limit``)."""

    path: Path
    policy: AnyPolicy
    kind: str  # static or adaptive
    unit: str
    template: str | None
    prompt_label: str
    grader: str
    floor: float
    limit: int


def load_served(
    path: Path, budget: float, max_samples: int | None, budget_unit_flag: str | None = None
) -> ServedPolicy:
    """Load ``path`` for ``serve`` at ``budget`` (in ``--budget-unit`` when given, which must
    be the policy's); one line naming the flag or file otherwise."""
    policy = load_policy(path)
    if isinstance(policy, CascadePolicy):
        raise InputError(
            f"{path}: a cascade policy (several models); serve answers with static and "
            "adaptive stop policies on one model"
        )
    if not isinstance(policy, AdaptivePolicy) and action_models(policy.actions):
        raise InputError(
            f"{path}: a policy over several models (MODEL:maj@k actions); serve answers with "
            "static and adaptive stop policies on one model"
        )
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
    floor = (1.0 if unit == "samples" else 0.0) if adaptive else cheapest[1]
    if budget < floor - 1e-12:
        raise InputError(
            f"--budget {budget:g}: below the cheapest answer's expected cost {floor:g} {unit}"
        )
    template, label = prompt_for(None, policy.info)
    grader = grader_for(None, policy.info)
    return ServedPolicy(
        path=Path(path),
        policy=policy,
        kind="adaptive" if adaptive else "static",
        unit=unit,
        template=template,
        prompt_label=label,
        grader="numeric" if grader == "auto" else grader,
        floor=floor,
        limit=limit,
    )


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
