"""Online answering under a budget: majority votes, uniform's sample counts, the hard-budget ledger.

Pure Python and numpy (``ttcalloc run`` calls it with its samples already clustered into labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


def majority(labels: Sequence[str | None]) -> str | None:
    """The most frequent label (None: a sample without an answer, never chosen); ties go to the
    label seen first.  None when no sample has an answer."""
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, label in enumerate(labels):
        if label is None:
            continue
        counts[label] = counts.get(label, 0) + 1
        first.setdefault(label, i)
    if not counts:
        return None
    return min(counts, key=lambda a: (-counts[a], first[a]))


def uniform_counts(keys: NDArray[np.float64], mean: float, cap: int) -> NDArray[np.int64]:
    """Samples per question for uniform allocation at mean ``mean`` (at most ``cap``, at least 1).

    Every question gets ``floor(mean)`` samples and the share ``mean - floor(mean)`` of them with
    the smallest ``keys`` (seeded hashes in [0, 1), so the choice is reproducible) one more; the
    mean of the counts is ``mean`` up to one question's rounding.
    """
    mean = float(np.clip(mean, 1.0, cap))
    lo = int(np.floor(mean))
    n = keys.size
    extra = round((mean - lo) * n) if lo < cap else 0
    counts = np.full(n, lo, dtype=np.int64)
    counts[np.argsort(keys, kind="stable")[:extra]] += 1
    return counts


def paired_difference(
    a: NDArray[np.float64], b: NDArray[np.float64], n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``a - b`` and its paired bootstrap 95% interval (questions resampled)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    means = d[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)


@dataclass
class Ledger:
    """A total budget that is never exceeded, with a floor kept for every question.

    Each sample is reserved at its worst case ``worst`` (in the budget's unit) while in flight
    and charged its realized cost (at most ``worst``) when done.  Every question is owed
    ``floor`` samples until it has them (received or in flight); a draw is admitted only if the
    spend, the reservations, the draw and what is still owed to the *other* questions fit in
    ``total``.  So when ``total >= questions * floor * worst`` at the start, every question can
    always get its floor, and the total is never exceeded.

    If a sample costs more than ``worst`` (:meth:`raise_worst`), that no longer holds: ``worst``
    rises to its cost, and once what is owed no longer fits, only the draws a question is owed
    are admitted, while they fit in ``total`` at the new ``worst`` (a question may then get none).
    """

    total: float
    worst: float
    floor: int
    owed: dict[str, int] = field(default_factory=dict)  # samples still owed per question
    spent: float = 0.0
    reserved: float = 0.0

    def open(self, questions: Sequence[str], have: Sequence[int]) -> None:
        """Owe each question its floor, less the samples it already has."""
        self.owed = {q: max(0, self.floor - h) for q, h in zip(questions, have, strict=True)}

    def feasible(self) -> bool:
        return self.spent + self.reserved + self.owed_cost() <= self.total + 1e-9

    def owed_cost(self) -> float:
        return sum(self.owed.values()) * self.worst

    def admit(self, question: str, n: int) -> int:
        """How many of ``n`` samples of ``question`` may be drawn now (0: none; reserved)."""
        mine = self.owed.get(question, 0)
        others = self.owed_cost() - mine * self.worst
        room = self.total - self.spent - self.reserved - others + 1e-9
        m = min(n, int(np.floor(room / self.worst)) if self.worst > 0 else n)
        if not self.feasible():  # (only after :meth:`raise_worst`) floors alone, while they fit
            free = self.total - self.spent - self.reserved + 1e-9
            m = min(n, mine, int(np.floor(free / self.worst)) if self.worst > 0 else n)
        if m <= 0:
            return 0
        self.reserved += m * self.worst
        self.owed[question] = max(0, mine - m)
        return m

    def fits(self, question: str, draws: Sequence[tuple[int, float]]) -> bool:
        """Whether every one of ``draws`` (samples, their realized cost) of ``question``, each
        admitted then settled in turn, would be admitted in full now (nothing is reserved)."""
        others = self.owed_cost() - self.owed.get(question, 0) * self.worst
        room = self.total - self.spent - self.reserved - others + 1e-9
        for n, cost in draws:
            if n * self.worst > room:
                return False
            room -= cost
        return True

    def raise_worst(self, cost: float) -> bool:
        """A sample cost ``cost``, more than its reserved worst case (the server counts more
        prompt tokens than estimated): every sample is reserved at ``cost`` from now on, those
        in flight included (their reservations grow), and every question is owed at it.  True
        when the worst case rose.  The total then holds only if no later sample costs more."""
        if cost <= self.worst + 1e-9:
            return False
        if self.worst > 0:
            self.reserved *= cost / self.worst
        self.worst = cost
        return True

    def settle(self, n: int, charged: float) -> None:
        """``n`` reserved samples are done, costing ``charged`` in all (failed ones nothing)."""
        self.reserved -= n * self.worst
        self.spent += charged

    def owe(self, question: str, samples: int) -> None:
        """What is still owed to a question after a request failed (its reservation is freed,
        so owing again never breaks the total)."""
        if question in self.owed:
            self.owed[question] = max(0, samples)

    def drop(self, question: str) -> None:
        """The question is answered (or given up): nothing more is owed to it."""
        self.owed.pop(question, None)
