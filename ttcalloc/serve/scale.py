"""How much the served models' samples cost against what the policy was trained on.

A policy over several models decides in the dollars its training samples cost (each model's
mean dollars per sample); the served models' samples may cost more or less (longer prompts,
other completions).  :class:`CostScale` keeps the ratio of what the samples served so far cost
to what the same samples cost in training, so a window decides at the budget its realized
dollars are expected to meet (1 until a sample has arrived; always 1 for one model, whose
policy counts its own unit).
"""

from __future__ import annotations

from ttcalloc.artifacts.policy_file import parse_action
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.stages.run.kinds import AnyPolicy


def trained_costs(policy: AnyPolicy) -> dict[str, float]:
    """Each model's mean cost per sample in training: a cascade's unit costs, else the mean of
    cost / k over the model's ``MODEL:maj@k`` actions ({}: a policy on one model)."""
    if isinstance(policy, CascadePolicy):
        return {m: float(c) for m, c in zip(policy.models, policy.unit_cost, strict=True)}
    per: dict[str, list[float]] = {}
    actions, costs = getattr(policy, "actions", []), getattr(policy, "costs", [])
    for name, cost in zip(actions, costs, strict=True):
        parsed = parse_action(name)
        if parsed is not None and parsed[0]:
            per.setdefault(parsed[0], []).append(float(cost) / parsed[2])
    return {m: sum(c) / len(c) for m, c in per.items()}


class CostScale:
    """Realized dollars of the samples served / their models' training dollars per sample."""

    def __init__(self, trained: dict[str, float]) -> None:
        self.trained = trained
        self.realized = 0.0
        self.expected = 0.0
        self.by: dict[str, list[float]] = {}  # model -> [realized, training] dollars

    def add(self, model: str, cost: float) -> None:
        """A sample of ``model`` arrived, costing ``cost``."""
        if model in self.trained and self.trained[model] > 0:
            got = self.by.setdefault(model, [0.0, 0.0])
            got[0] += cost
            got[1] += self.trained[model]
            self.realized += cost
            self.expected += self.trained[model]

    @property
    def ratio(self) -> float:
        """Of every model's samples so far (1 before any)."""
        return self.realized / self.expected if self.expected > 0 else 1.0

    def of(self, model: str | None) -> float:
        """Of ``model``'s samples so far (every model's before one of it has arrived)."""
        got = self.by.get(model or "")
        return got[0] / got[1] if got else self.ratio
