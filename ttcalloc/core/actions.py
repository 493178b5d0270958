"""Action labels: ``maj@4`` / ``pass@4``, or ``MODEL:maj@4`` when the curves span several models
(the model is everything before the last ``:``, as ``estimate``'s ``action_label`` writes it)."""

from __future__ import annotations

import re
from dataclasses import dataclass

LABEL = re.compile(r"^(?:(?P<model>.+):)?(?P<strategy>maj|pass)@(?P<k>[1-9][0-9]*)$", re.DOTALL)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # never in a model name


@dataclass(frozen=True)
class Action:
    """One action's parts: the model ("" when the label names none), the strategy and k."""

    model: str
    strategy: str  # "maj" or "pass"
    k: int


def parse_action(label: str) -> Action | None:
    """The parts of an action label, or None when it is not ``[MODEL:](maj|pass)@k`` with
    ``1 <= k`` and a model name (when given) that is not blank and has no control characters."""
    m = LABEL.match(label)
    if m is None:
        return None
    model = m.group("model")
    if model is not None and (not model.strip() or CONTROL.search(model)):
        return None
    return Action(model or "", m.group("strategy"), int(m.group("k")))


def action_models(labels: list[str]) -> list[str]:
    """The models the labels name, in order of first appearance (none: one unnamed model)."""
    out: list[str] = []
    for label in labels:
        a = parse_action(label)
        if a is not None and a.model and a.model not in out:
            out.append(a.model)
    return out
