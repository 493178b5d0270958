"""A static policy's source: one action (k samples) per question, chosen as it starts."""

from __future__ import annotations

from typing import Any

import numpy as np

from ttcalloc.learn.policy import Policy, calibrate, decide
from ttcalloc.stages.run.driver import Driver, chunks
from ttcalloc.stages.run.items import Item
from ttcalloc.stages.run.ledger import ModelLedger, settle


class StaticDriver(Driver):
    """One action (k samples) per question, chosen when the question starts.

    Without a hard budget mu is calibrated once on the whole batch (as ``allocate --budget``);
    with one, it is recalibrated every ``len(items) // 20`` questions (in input order) on those
    not yet started, against what is left of the budget after the realized spend.  A
    recalibration waits until every question started before it is finished: the spend it reads
    is then that of those questions whatever the concurrency, the order samples arrive in, or
    which of them an earlier run drew (charged at their recorded cost as they are used), so a
    rerun, or a run at another concurrency, decides as the first (a sample's realized cost in
    tokens is not its expected cost: a spend read mid-flight was not).
    """

    def __init__(
        self,
        policy: Policy,
        scores: np.ndarray,
        mu: float,
        ks: list[int],
        models: list[str | None] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.policy, self.scores, self.mu, self.ks = policy, scores, mu, ks
        # several models: each action's model (their worst cases in dollars are the ledger's)
        self.models = models or []
        self.index = {it.pid: i for i, it in enumerate(self.items)}
        self.started_n = 0  # questions started with a draw (recalibration points count them)
        self.every = max(1, len(self.items) // 20)
        self.mus: dict[str, float] = {}  # serve: a question's own multiplier (else mu)

    def choices(self) -> np.ndarray:
        """The action each question takes at its multiplier (without a hard budget)."""
        mus = [self.mus.get(it.pid, self.mu) for it in self.items]
        return np.array(
            [
                int(decide(self.scores[i : i + 1], self.policy.costs, m)[0])
                for i, m in enumerate(mus)
            ],
            dtype=np.int64,
        )

    def start(self, item: Item, draw: bool = True) -> None:
        item.started = True
        row = self.index[item.pid]
        if self.ledger is not None and draw:
            if self.started_n % self.every == 0:
                self.recalibrate(row)
            self.started_n += 1
        mu = self.mus.get(item.pid, self.mu)
        a = int(decide(self.scores[row : row + 1], self.policy.costs, mu)[0])
        decision: dict[str, Any] = {}
        if self.models:
            a, decision = self.take_model(item, a, draw)
        item.action = self.policy.actions[a]
        k = self.ks[a]
        item.decisions.append({"mu": mu, "action": item.action, "k": k} | decision)
        item.used = [i for i in range(k)]
        held = [i for i in range(k) if i in item.got]
        if self.ledger is not None and held and draw:
            # samples an earlier run drew count against the hard budget as drawn ones do, in
            # the requests that drew them
            n = 0
            for size, _ in self.held_draws(item, held):
                m = self.ledger.admit(item.pid, size)
                settle(self.ledger, item.pid, m, sum(item.got[i].cost for i in held[n : n + m]))
                self.overran(item.pid, max((item.got[i].cost for i in held[n : n + m]), default=0))
                n += m
                if m < size:
                    item.cut = True
                    item.decisions.append({"cut_by_hard_budget_at": n})
                    item.used = held[:n]
                    self.finish(item)
                    return
        todo = [i for i in range(k) if i not in item.got]
        if not todo or not draw:
            self.finish(item)
        else:
            self.enqueue(item, todo)

    def take_model(self, item: Item, a: int, draw: bool) -> tuple[int, dict[str, Any]]:
        """Action ``a``'s model becomes the question's (its held samples of that model its
        own).  Under a hard budget in dollars an action whose model's worst case no longer
        fits beside what every other question is owed gives way to the cheapest action: the
        action and its decision note (``instead_of``: the action the policy chose)."""
        note: dict[str, Any] = {}
        if isinstance(self.ledger, ModelLedger) and draw:
            model = self.models[a]
            if model is not None and not self.ledger.assign(item.pid, model):
                note = {"instead_of": self.policy.actions[a]}
                a = int(np.argmin(self.policy.costs))
                cheap = self.models[a]
                if cheap is not None:
                    self.ledger.assign(item.pid, cheap)
        item.model = self.models[a]
        if item.model is not None:
            item.got = dict(item.held.get(item.model, {}))
        return a, note

    def may_start(self) -> bool:
        """A recalibration point waits for every question started before it to finish, and so
        does a question whose held samples the hard budget would cut (as :meth:`must_wait`)."""
        if self.ledger is None:
            return True
        if self.started_n % self.every == 0:
            return all(it.finished for it in self.items if it.started)
        item = self.unstarted[0]
        row = self.index[item.pid]
        k = self.ks[int(decide(self.scores[row : row + 1], self.policy.costs, self.mu)[0])]
        held = [i for i in range(k) if i in item.got]
        return not held or self.ledger.fits(item.pid, self.held_draws(item, held))

    def held_draws(self, item: Item, held: list[int]) -> list[tuple[int, float]]:
        """The held samples in the requests a run drawing them asks for (size, realized cost)."""
        draws = []
        for first, n in chunks(held, self.per_request):
            draws.append((n, sum(item.got[i].cost for i in range(first, first + n))))
        return draws

    def recalibrate(self, row: int) -> None:
        assert self.ledger is not None
        left = [row, *(self.index[it.pid] for it in self.unstarted)]
        progress = 0.0  # expected cost still to come of questions in progress
        for it in self.items:
            if it.action and not it.finished:
                k = self.ks[self.policy.actions.index(it.action)]
                rest = k - len([i for i in it.used if i in it.got])
                progress += self.policy.expected_cost(it.action) * max(0, rest) / max(1, k)
        # the samples questions left already hold (an earlier run drew them) are charged when
        # they start, as the first run was charged for drawing them: a rerun decides alike
        per_q = (self.ledger.total - self.ledger.spent - progress) / len(left)
        s = self.scores[left]
        costs = self.policy.costs
        self.mu = calibrate(s, costs, np.broadcast_to(costs, s.shape), max(per_q, 0.0))

    def after(self, item: Item, failed: bool) -> None:
        if item.inflight == 0 and item.queued == 0:
            self.finish(item)

    def place(self, item: Item) -> None:
        k = len(item.used)
        item.used = [i for i in item.used if i in item.got]
        if len(item.used) < k:
            item.cut = True
