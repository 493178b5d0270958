"""What a policy of each kind (static, stop, cascade) may draw per question."""

from __future__ import annotations

import numpy as np

from ttcalloc.artifacts.policy_file import MAX_SAMPLES, parse_action
from ttcalloc.common.errors import InputError
from ttcalloc.core.cascade_rule import ThresholdRule, UniformRule
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.learn.policy import Policy

AnyPolicy = Policy | AdaptivePolicy | CascadePolicy


def policy_ks(policy: AnyPolicy) -> tuple[list[int], tuple[int, float]]:
    """Samples per action (static), and the cheapest action's (samples, expected cost)."""
    if isinstance(policy, CascadePolicy):
        return [], cascade_cheapest(policy)
    if isinstance(policy, AdaptivePolicy):
        if policy.grid.strategy != "majority":
            raise InputError(
                "run: this adaptive policy stops for pass@k (a verifier); run "
                "answers by majority vote only"
            )
        return [], (1, 0.0)
    ks = []
    for name in policy.actions:
        parsed = parse_action(name)
        if parsed is None:
            raise InputError(f"run: action {name!r} of the policy is not maj@k or MODEL:maj@k")
        if parsed[1] != "maj":
            raise InputError(f"run: action {name!r} needs a verifier; run answers by majority vote")
        ks.append(parsed[2])
    i = int(np.argmin(policy.costs))
    return ks, (ks[i], float(policy.costs[i]))


def cascade_cheapest(policy: CascadePolicy) -> tuple[int, float]:
    """A cascade's cheapest answer, (samples, expected dollars): one sample of its cheapest
    model; a rule's, the samples it always draws (the MoT rule's ``k`` of its cheap model, one
    of a single rule's model)."""
    rule, unit = policy.model, policy.unit_cost
    if isinstance(rule, ThresholdRule):
        return rule.k, rule.k * float(unit[rule.first])
    if isinstance(rule, UniformRule):
        return 1, float(unit[rule.model])
    return 1, float(min(unit))


def draw_limit(policy: AnyPolicy) -> int:
    """The most samples one question may draw: the policy's largest action (static) or its
    cap (adaptive; a cascade's caps summed), never above :data:`MAX_SAMPLES`."""
    if isinstance(policy, CascadePolicy):
        most = sum(policy.ladder.caps)
    else:
        most = policy.grid.cap if isinstance(policy, AdaptivePolicy) else max(policy_ks(policy)[0])
    return min(int(most), MAX_SAMPLES)
