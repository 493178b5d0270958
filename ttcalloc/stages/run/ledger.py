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
    model's (``each``, set when the question's action is chosen); a question not yet assigned
    is owed its floor at ``worst``, the cheapest action's model's worst case.

    The invariant is the base ledger's: assigning a question a dearer model is refused
    (:meth:`assign` returns False) when what every other question is owed would no longer fit,
    so every question can always get its floor of the cheapest action.
    """

    each: dict[str, float] = field(default_factory=dict)

    def worst_for(self, question: str) -> float:
        return self.each.get(question, self.worst)

    def owed_cost(self) -> float:
        return sum(n * self.worst_for(q) for q, n in self.owed.items())

    def assign(self, question: str, worst: float) -> bool:
        """Reserve ``question``'s samples at ``worst`` each from now on, if the budget still
        holds what everyone is owed; False (nothing changed) otherwise."""
        before = self.each.get(question)
        self.each[question] = worst
        if self.feasible():
            return True
        if before is None:
            del self.each[question]
        else:
            self.each[question] = before
        return False

    def admit(self, question: str, n: int) -> int:
        w = self.worst_for(question)
        mine = self.owed.get(question, 0)
        others = self.owed_cost() - mine * w
        room = self.total - self.spent - self.reserved - others + 1e-9
        m = min(n, int(np.floor(room / w)) if w > 0 else n)
        if m <= 0:
            return 0
        self.reserved += m * w
        self.owed[question] = max(0, mine - m)
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

    def settle_for(self, question: str, n: int, charged: float) -> None:
        """``n`` reserved samples of ``question`` are done, costing ``charged`` in all."""
        self.reserved -= n * self.worst_for(question)
        self.spent += charged


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
