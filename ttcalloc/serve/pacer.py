"""The fleet's pacing: the mean cost per request each window of requests is decided at.

Requests arrive one by one; :mod:`ttcalloc.serve.windows` gathers them into short windows and
each window is decided as ``run`` decides a file of questions at one budget (one price per
round).  The window's budget is what keeps the fleet's running mean cost per request at
``B``: what the committed windows spent, plus what the windows in flight are expected to
spend, plus this window's share, equals ``B`` times all their requests::

    b = (B x (committed + in flight + n) - spent - expected in flight) / n

clamped to ``[floor, ceiling]`` (the cheapest action's expected cost; a few times ``B``, so
one quiet stretch does not make a burst of expensive answers).  A window in flight is expected
to spend its budget times its requests until its decisions say more (:meth:`FleetPacer.expect`:
a static policy's chosen actions' expected costs), never less than its samples have cost so
far (:meth:`FleetPacer.spend`), and what it spent once it is answered.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ttcalloc.serve.ledger import Totals

# the most a window's budget may be above the fleet's: the debt of an under-spent stretch is
# paid back over several windows, not in one
CEILING = 3.0


@dataclass
class Window:
    """A window in flight: its requests and what it is expected to spend."""

    requests: int
    budget: float
    expected: float
    spent: float = 0.0  # what its samples have cost so far


class FleetPacer:
    """The budget of each window, from the ledger's totals and the windows in flight."""

    def __init__(self, budget: float, floor: float, totals: Totals) -> None:
        self.budget, self.floor = budget, floor
        self.requests, self.spent = totals.requests, totals.spend
        self.open: dict[int, Window] = {}
        self.ids = itertools.count()

    def start(self, n: int) -> tuple[int, float]:
        """A window of ``n`` requests starts: its id and the budget it is decided at."""
        inflight = sum(w.requests for w in self.open.values())
        expected = sum(max(w.expected, w.spent) for w in self.open.values())
        owed = self.budget * (self.requests + inflight + n) - self.spent - expected
        b = min(max(owed / n, self.floor), CEILING * self.budget)
        wid = next(self.ids)
        self.open[wid] = Window(n, b, b * n)
        return wid, b

    def expect(self, wid: int, expected: float) -> None:
        """The window's decisions say what it is expected to spend."""
        self.open[wid].expected = expected

    def spend(self, wid: int, cost: float) -> None:
        """A sample of the window arrived: it is expected to spend at least what it has."""
        if wid in self.open:
            self.open[wid].spent += cost

    def finish(self, wid: int, answered: int, spent: float) -> None:
        """The window is over: ``answered`` of its requests were, for ``spent`` (a request
        that got no sample is not counted; nor is a window that failed)."""
        del self.open[wid]
        self.requests += answered
        self.spent += spent

    @property
    def mean_cost(self) -> float | None:
        return self.spent / self.requests if self.requests else None
