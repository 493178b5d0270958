"""What ``run`` asks the sampler for: a static policy's k per question, or an adaptive policy's
decisions round by round, with live budget tracking and the hard budget.  This module holds
what both share (:class:`Driver`); :mod:`.static_driver` and :mod:`.adaptive_driver` each kind.

Both are :class:`ttcalloc.sampler.loop.Source` s, and both use the samples the folder already
holds before drawing (a rerun draws nothing twice).  :class:`StaticDriver` starts a question when
a worker needs work (in input order) and asks for the k samples of its action; a hard budget's
:class:`ttcalloc.core.vote.Ledger` admits them (every question owed at least the cheapest action's
samples, so none is left without one).  :class:`AdaptiveDriver` draws in synchronous rounds and
decides each round at one price (:mod:`ttcalloc.core.pacing`), so its decisions do not depend on
the order samples arrive in.  A question is *finished* when its policy is done with it, when the
hard budget cuts it (it keeps what it has), or when the run stops.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ttcalloc.backends import Request
from ttcalloc.common.console import warn
from ttcalloc.common.wording import samples_text
from ttcalloc.core.vote import Ledger
from ttcalloc.sampler.options import SampleOptions
from ttcalloc.sampler.plan import request_for
from ttcalloc.sampler.result import Stats
from ttcalloc.sampler.variants import split_by_variant
from ttcalloc.stages.run.items import Item, to_got
from ttcalloc.stages.run.ledger import (
    RESERVE_MOST,
    ModelLedger,
    overrun_warning,
    settle,
    worst_for,
)


class Driver:
    """The shared part of both sources: the queue of requests, admission, progress."""

    def __init__(
        self,
        items: list[Item],
        options: SampleOptions,
        template: str | None,
        per_request: int,
        unit: str,
        budget: float,
        ledger: Ledger | None,
        limit: int,
    ) -> None:
        self.items = items
        self.limit = limit  # the most samples one question may draw in this run
        self.by_pid = {it.pid: it for it in items}
        self.options, self.template, self.per_request = options, template, per_request
        self.per_model: dict[str, SampleOptions] = {}
        self.unit, self.budget, self.ledger = unit, budget, ledger
        self.unstarted = collections.deque(items)
        self.ready: collections.deque[Request] = collections.deque()
        self.changed = asyncio.Event()
        self.closed = False
        self.total = len(items)
        self.done = 0
        self.reported = 0  # answered questions the sampler's progress count has seen
        self.done_cost = 0.0
        self.drawn = 0
        self.over_worst = False  # a sample cost more than its reserved worst case (warned)

    # --- Source ---------------------------------------------------------------------------

    async def next(self) -> Request | None:
        while not self.closed:
            if self.ready:
                if self.must_wait(self.ready[0]):
                    self.changed.clear()
                    await self.changed.wait()
                    continue
                request = self.admit(self.ready.popleft())
                if request is not None:
                    return request
                continue
            if self.unstarted and (self.may_start() or not self.in_progress()):
                self.start(self.unstarted.popleft())
                continue
            if self.in_progress():
                self.changed.clear()
                await self.changed.wait()
                continue
            return None
        return None

    def received(self, request: Request, rows: Sequence[dict[str, Any]]) -> int:
        item = self.by_pid[request.problem_id]
        item.inflight -= 1
        item.inflight_n -= request.n
        charged, ok, most = 0.0, 0, 0.0
        for row in rows:
            idx = int(row["sample_idx"])
            if row.get("error") is None:
                got = to_got(row, item.problem["grader"], self.unit)
                item.got[idx] = got
                charged += got.cost
                most = max(most, got.cost)
                ok += 1
                item.drawn_here += 1
                self.drawn += 1
            else:
                item.failed.add(idx)
        if self.ledger is not None:
            settle(self.ledger, item.pid, request.n, charged)
            self.overran(item.pid, most)
            if ok < request.n:
                self.ledger.owe(item.pid, self.ledger.floor - len(item.got) - item.inflight_n)
        if not item.finished and not self.closed:
            self.after(item, ok < request.n)
        self.changed.set()
        return self.settled()

    def overran(self, question: str, cost: float) -> None:
        """A sample of ``question`` cost ``cost``: more than its reserved worst case, every
        later draw (and those in flight) is reserved at it (over several models in dollars,
        every sample of its model); warned once."""
        if self.ledger is None or cost <= (worst := worst_for(self.ledger, question)) + 1e-9:
            return
        if isinstance(self.ledger, ModelLedger):
            self.ledger.raise_worst_of(question, cost)
        else:
            self.ledger.raise_worst(cost)
        self.warn_overrun(cost, worst, "draws")

    def warn_overrun(self, cost: float, worst: float, later: str) -> None:
        """The run's one warning that a sample cost ``cost``, more than the ``worst`` reserved
        for it, and that ``later`` draws or rounds reserve the most a sample has cost."""
        if not self.over_worst:
            self.over_worst = True
            warn(overrun_warning(cost, worst, self.unit, RESERVE_MOST.format(later)))

    def settled(self) -> int:
        """Questions answered since the last call: the progress count's step (an adaptive
        run answers questions when a round is decided, not only when a sample arrives)."""
        step, self.reported = self.done - self.reported, self.done
        return step

    def status(self, stats: Stats) -> str:
        per_q = self.done_cost / self.done if self.done else 0.0
        spend = f"${stats.cost:.4f}" if stats.cost_known else "$?"
        text = (
            f"{self.done}/{self.total} answered, {samples_text(self.drawn)}, "
            f"cost {per_q:.3g}/{self.budget:g} {self.unit} per question, {spend}"
        )
        if self.ledger is not None:
            text += f", {self.ledger.spent:.4g}/{self.ledger.total:.4g} of the hard budget"
        return text

    def close(self) -> None:
        self.closed = True
        self.changed.set()

    def must_wait(self, request: Request) -> bool:
        """A hard-budget draw that would be cut waits for the requests in flight: a cut is
        decided on the realized spend alone, as a run at concurrency 1 (or a rerun) decides it."""
        if self.ledger is None or self.by_pid[request.problem_id].finished:
            return False
        worst = (request.n, request.n * worst_for(self.ledger, request.problem_id))
        return self.in_progress() and not self.ledger.fits(request.problem_id, [worst])

    def in_progress(self) -> bool:
        """Whether a request is in flight (its question will finish or draw again)."""
        return any(it.inflight for it in self.items)

    # --- shared -----------------------------------------------------------------------------

    def admit(self, request: Request) -> Request | None:
        item = self.by_pid[request.problem_id]
        item.queued -= 1
        if item.finished:
            return None
        # the policy's largest action or cap bounds every question's draws, whatever the
        # policy file or the driver's decisions say
        n = max(0, min(request.n, self.limit - item.drawn_here - item.inflight_n))
        if n < request.n:
            item.cut = True
            item.decisions.append({"cut_at_policy_limit": self.limit})
            self.drop_queued(item)
        if self.ledger is not None and n > 0:
            wanted = n
            n = self.ledger.admit(item.pid, n)
            if n < wanted:
                item.cut = True
                item.decisions.append({"cut_by_hard_budget_at": len(item.got)})
                self.drop_queued(item)
        if n == 0:
            if item.inflight == 0:
                self.finish(item)
            return None
        item.inflight += 1
        item.inflight_n += n
        return request if n == request.n else replace(request, n=n)

    def drop_queued(self, item: Item) -> None:
        if item.queued:
            self.ready = collections.deque(r for r in self.ready if r.problem_id != item.pid)
            item.queued = 0

    def enqueue(self, item: Item, indices: list[int]) -> None:
        options = self.options if item.model is None else self.model_options(item.model)
        runs = [
            part
            for first, n in chunks(indices, self.per_request)
            for part in split_by_variant(options, item.pid, first, n)
        ]  # with prompt variants, a request holds samples of one variant
        for first, n in runs:
            request = request_for(options, self.template, item.problem, first, n)
            if item.model is not None:  # several models: the backend of the question's model
                request = replace(request, model=item.model)
            self.ready.append(request)
            item.queued += 1

    def model_options(self, model: str) -> SampleOptions:
        """The options a request to ``model`` is made with (its seeds are the model's own)."""
        if model not in self.per_model:
            self.per_model[model] = replace(self.options, model=model)
        return self.per_model[model]

    def finish(self, item: Item) -> None:
        if item.finished:
            return
        item.finished = True
        self.drop_queued(item)
        self.place(item)
        if self.ledger is not None:
            self.ledger.drop(item.pid)
        self.done += 1
        self.done_cost += item.cost()

    def finish_all(self) -> None:
        """The run stopped: every question keeps what it has."""
        for item in self.items:
            if not item.finished:
                if not item.started:
                    self.start(item, draw=False)
                item.cut = item.cut or not item.finished
                self.finish(item)

    # --- per policy kind --------------------------------------------------------------------

    def may_start(self) -> bool:
        """Whether the next question may start now (else it waits for the requests in flight)."""
        return True

    def start(self, item: Item, draw: bool = True) -> None:
        raise NotImplementedError

    def after(self, item: Item, failed: bool) -> None:
        raise NotImplementedError

    def place(self, item: Item) -> None:
        """Settle ``item.used`` (the samples its answer uses) as it finishes."""
        raise NotImplementedError


class RoundDriver(Driver):
    """A source that draws in synchronous rounds (adaptive and cascade policies): requests of
    the round are handed out; when none is pending, :meth:`advance` decides the round and
    begins the next (False when every question is answered)."""

    pending: Any  # the questions whose sample of this round is not in yet

    async def next(self) -> Request | None:
        while not self.closed:
            if self.ready:
                if self.hold():
                    self.changed.clear()
                    await self.changed.wait()
                    continue
                if not self.ready:
                    continue
                request = self.ready.popleft()
                item = self.by_pid[request.problem_id]
                item.queued -= 1
                item.inflight += 1
                item.inflight_n += request.n
                return request
            if not self.pending:
                if not self.advance():
                    return None
                continue
            self.changed.clear()
            await self.changed.wait()
        return None

    def advance(self) -> bool:
        raise NotImplementedError

    def hold(self) -> bool:
        """Whether the queued requests wait for those in flight (a cascade's hard budget)."""
        return False

    def finish_all(self) -> None:
        """The run stopped: every question keeps the samples of its completed rounds and the
        one of this round if it arrived."""
        for item in self.items:
            if not item.finished:
                item.started = True
                item.cut = True
                self.finish(item)

    def start(self, item: Item, draw: bool = True) -> None:  # rounds start questions
        raise NotImplementedError

    def after(self, item: Item, failed: bool) -> None:  # rounds decide as a round ends
        raise NotImplementedError


def chunks(indices: list[int], per: int) -> list[tuple[int, int]]:
    """Consecutive runs of sorted ``indices`` cut into requests of at most ``per`` samples."""
    out: list[tuple[int, int]] = []
    start = prev = indices[0]
    for i in [*indices[1:], None]:
        if i is not None and i == prev + 1 and i - start < per:
            prev = i
            continue
        out.append((start, prev - start + 1))
        if i is not None:
            start = prev = i
    return out
