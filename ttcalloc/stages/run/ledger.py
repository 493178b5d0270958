"""The hard budget in dollars over several models: each sample reserved at its own model's
worst case (:class:`ModelLedger`), and the two helpers the drivers call on any ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ttcalloc.core.vote import Ledger


@dataclass
class ModelLedger(Ledger):
    """A :class:`~ttcalloc.core.vote.Ledger` whose worst case per sample is the question's
    model's (``worsts``, the question's model set by :meth:`assign` when its action is chosen);
    a question not yet assigned is owed its floor at ``worst``, the cheapest action's model's
    (``cheapest``) worst case.

    The invariant is the base ledger's: assigning a question a dearer model is refused
    (:meth:`assign` returns False) when what every other question is owed would no longer fit,
    so every question can always get its floor of the cheapest action.  If a sample costs more
    than its model's worst case (:meth:`raise_worst_of`), that model's worst case rises to its
    cost (its samples in flight too) and, as on the base ledger, once what is owed no longer
    fits only owed draws are admitted, while they fit.
    """

    worsts: dict[str, float] = field(default_factory=dict)  # a sample's worst case per model
    cheapest: str = ""  # the model of the cheapest action (its worst case is ``worst``)
    model: dict[str, str] = field(default_factory=dict)  # each assigned question's model
    flying: dict[str, int] = field(default_factory=dict)  # samples in flight per model

    def model_of(self, question: str) -> str:
        return self.model.get(question, self.cheapest)

    def worst_for(self, question: str) -> float:
        model = self.model.get(question)
        return self.worst if model is None else self.worsts[model]

    def owed_cost(self) -> float:
        return sum(n * self.worst_for(q) for q, n in self.owed.items())

    def assign(self, question: str, model: str) -> bool:
        """Reserve ``question``'s samples at ``model``'s worst case from now on, if the budget
        still holds what everyone is owed; False (nothing changed) otherwise."""
        before = self.model.get(question)
        self.model[question] = model
        if self.feasible():
            return True
        if before is None:
            del self.model[question]
        else:
            self.model[question] = before
        return False

    def admit(self, question: str, n: int) -> int:
        w = self.worst_for(question)
        mine = self.owed.get(question, 0)
        others = self.owed_cost() - mine * w
        room = self.total - self.spent - self.reserved - others + 1e-9
        m = min(n, int(np.floor(room / w)) if w > 0 else n)
        if not self.feasible():  # (only after :meth:`raise_worst_of`) floors alone, if they fit
            free = self.total - self.spent - self.reserved + 1e-9
            m = min(n, mine, int(np.floor(free / w)) if w > 0 else n)
        if m <= 0:
            return 0
        self.reserved += m * w
        self.owed[question] = max(0, mine - m)
        model = self.model_of(question)
        self.flying[model] = self.flying.get(model, 0) + m
        return m

    def fits(self, question: str, draws: Sequence[tuple[int, float]]) -> bool:
        w = self.worst_for(question)
        others = self.owed_cost() - self.owed.get(question, 0) * w
        room = self.total - self.spent - self.reserved - others + 1e-9
        for n, cost in draws:
            if n * w > room:
                return False
            room -= cost
        return True

    def raise_worst_of(self, question: str, cost: float) -> bool:
        """A sample of ``question`` cost ``cost``, more than its model's worst case: that
        model's samples are reserved at ``cost`` from now on, those in flight included, and
        every question is owed at it (the cheapest model's: the floors).  True when it rose."""
        model = self.model_of(question)
        old = self.worst_for(question)
        if cost <= old + 1e-9:
            return False
        self.reserved += self.flying.get(model, 0) * (cost - old)
        if model in self.worsts:
            self.worsts[model] = cost
        if model == self.cheapest:
            self.worst = cost
        return True

    def settle_for(self, question: str, n: int, charged: float) -> None:
        """``n`` reserved samples of ``question`` are done, costing ``charged`` in all."""
        self.reserved -= n * self.worst_for(question)
        self.spent += charged
        model = self.model_of(question)
        self.flying[model] = self.flying.get(model, 0) - n


def worst_for(ledger: Ledger, question: str) -> float:
    """A sample's worst case for ``question`` (one for every question on a plain ledger)."""
    return ledger.worst_for(question) if isinstance(ledger, ModelLedger) else ledger.worst


def settle(ledger: Ledger, question: str, n: int, charged: float) -> None:
    """``n`` reserved samples of ``question`` are done, costing ``charged``."""
    if isinstance(ledger, ModelLedger):
        ledger.settle_for(question, n, charged)
    else:
        ledger.settle(n, charged)


RESERVE_MOST = "later {} reserve the most a sample has cost"


def overrun_warning(cost: float, worst: float, unit: str, then: str) -> str:
    """The one line a run warns in when a sample cost more than its reserved worst case:
    ``then`` says what the run does about it."""
    return (
        f"a sample cost {cost:g} {unit}, more than the {worst:g} reserved for it (the server "
        f"counts more prompt tokens than litellm's tokenizer?); {then}"
    )
