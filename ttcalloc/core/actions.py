"""Action labels: ``maj@4`` / ``pass@4``, or ``MODEL:maj@4`` when the curves span several models."""

from __future__ import annotations

import re
from dataclasses import dataclass

LABEL = re.compile(r"^(?:(?P<model>.+):)?(?P<strategy>maj|pass)@(?P<k>[1-9][0-9]*)$")


@dataclass(frozen=True)
class Action:
    """One action's parts: the model ("" when the label names none), the strategy and k."""

    model: str
    strategy: str  # "maj" or "pass"
    k: int


def parse_action(label: str) -> Action | None:
    """The parts of an action label, or None when it is not ``[MODEL:](maj|pass)@k``."""
    m = LABEL.match(label)
    if m is None:
        return None
    return Action(m.group("model") or "", m.group("strategy"), int(m.group("k")))


def action_models(labels: list[str]) -> list[str]:
    """Each label's model ("" when unnamed or not an action label), in label order."""
    out = []
    for label in labels:
        a = parse_action(label)
        out.append(a.model if a is not None else "")
    return out
