"""Requests gathered into short windows, each decided as one ``run`` batch at one budget.

A request waits at most ``wait`` seconds (or until ``size`` requests are gathered) for the
others of its window; requests that carry their own budget (the budget header) are gathered
by that budget, apart from the fleet's.  The fleet's windows are decided at the budget
:class:`~ttcalloc.serve.pacer.FleetPacer` gives them.  A request's reply is sent as soon as
the policy is done with its question; the window is committed to the ledger once all its
requests are answered, on the ledger's own thread (a write waiting for a lock another process
holds does not hold up the event loop).  At most ``max_queue`` requests are admitted at once
(:class:`QueueFull` beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from ttcalloc.common.console import warn
from ttcalloc.common.redact import redact
from ttcalloc.serve.answering import Answerer, Reply
from ttcalloc.serve.ledger import FleetLedger, LedgerUnwritable
from ttcalloc.serve.metrics import Metrics
from ttcalloc.serve.pacer import FleetPacer
from ttcalloc.serve.replayed import NotRecorded

RETRY_LEDGER_S = 1.0  # an unwritable ledger is tried again at most this often

# several models: the fleet windows decided one at a time when the server starts (the first
# at the policy's training costs, the second at the first's realized ones)
WARM_UP = 2


class QueueFull(Exception):
    """Too many requests are waiting or in flight: the caller answers 503."""


class LedgerDown(Exception):
    """Windows answered earlier could not be written to the ledger, and still cannot: the
    caller answers 503 (no new spend goes unrecorded)."""


class WindowFailed(Exception):
    """The window of a request failed as a whole (the model refused every request)."""


@dataclass
class Waiting:
    """Requests gathered for one window, and the timer that closes it."""

    questions: list[str] = field(default_factory=list)
    futures: list[asyncio.Future[tuple[Reply, float]]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class Windows:
    """Gathers requests into windows and answers each window as one batch."""

    def __init__(
        self,
        answerer: Answerer,
        pacer: FleetPacer,
        ledger: FleetLedger,
        metrics: Metrics,
        size: int,
        wait: float,
        max_queue: int,
    ) -> None:
        self.answerer, self.pacer, self.ledger, self.metrics = answerer, pacer, ledger, metrics
        self.size, self.wait, self.max_queue = size, wait, max_queue
        self.waiting: dict[float | None, Waiting] = {}
        self.admitted = 0
        self.tasks: set[asyncio.Task[None]] = set()
        # several models: fleet windows decided one at a time until WARM_UP are answered
        self.warming = WARM_UP if answerer.scale.trained else 0
        # the last failed write to the ledger: its monotonic time and why (None: none failed)
        self.ledger_down: tuple[float, str] | None = None
        # the ledger's writes, one at a time, off the event loop
        self.ledger_thread = ThreadPoolExecutor(1, thread_name_prefix="ttcalloc-ledger")
        self.writer: asyncio.Task[None] | None = None  # writing the kept rows
        self.retrying = False  # a request is trying the unwritable ledger again

    @property
    def unwritten(self) -> int:
        """Windows kept in memory because a write of theirs failed (0 while none has)."""
        return len(self.ledger.pending) if self.ledger_down is not None else 0

    async def ask(self, question: str, budget: float | None) -> tuple[Reply, float]:
        """The reply to ``question`` and the budget it was decided at (``budget``: the
        request's own, None: the fleet's).

        Raises:
            NotRecorded: on ``replay:PATH``, a question its samples do not hold (refused before
                it joins a window: the window's other requests are answered).
        """
        replay = self.answerer.replay
        if replay is not None and (why := replay.missing(question)) is not None:
            raise NotRecorded(why)
        if self.admitted >= self.max_queue:
            raise QueueFull(f"{self.admitted} requests waiting or in flight")
        await self.ledger_writable()
        self.admitted += 1
        try:
            future: asyncio.Future[tuple[Reply, float]] = asyncio.get_running_loop().create_future()
            waiting = self.waiting.setdefault(budget, Waiting())
            waiting.questions.append(question)
            waiting.futures.append(future)
            if len(waiting.questions) >= self.size:
                self.close(budget)
            elif waiting.timer is None:
                waiting.timer = asyncio.get_running_loop().call_later(self.wait, self.close, budget)
            return await future
        finally:
            self.admitted -= 1

    def close(self, budget: float | None) -> None:
        """The window of ``budget`` is gathered: answer it."""
        waiting = self.waiting.pop(budget, None)
        if waiting is None:
            return
        if waiting.timer is not None:
            waiting.timer.cancel()
        task = asyncio.create_task(self.run(waiting, budget))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self, waiting: Waiting, budget: float | None) -> None:
        n = len(waiting.questions)
        if budget is None:
            await self.warm_up()
        wid, b = self.pacer.start(n) if budget is None else (None, budget)
        try:
            driver = self.answerer.driver(waiting.questions, b)
            if wid is not None and (expected := self.answerer.expected(driver)) is not None:
                self.pacer.expect(wid, expected)
            track = partial(self.pacer.spend, wid) if wid is not None else None
            result = await self.answerer.answer(driver, partial(self.deliver, waiting, b), track)
        except BaseException as exc:  # the window failed as a whole: each request says why
            if wid is not None:
                self.pacer.finish(wid, 0, 0.0)
            warn(redact(f"a window of {n} requests failed: {exc}"))
            self.metrics.window_failed()
            for f in waiting.futures:
                if not f.done():
                    f.set_exception(WindowFailed(str(exc) or type(exc).__name__))
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            if wid is not None:
                self.warming -= 1
            self.answerer.arrived.set()  # a window waiting for the warm-up may go on
        answered = [r for r in result.replies if r.error is None]
        spent = sum(r.cost for r in answered)
        if wid is not None:
            self.pacer.finish(wid, len(answered), spent)
        samples = sum(r.samples for r in answered)
        self.ledger.keep(len(answered), samples, spent, b, result.price, budget is not None)
        if self.ledger_down is None:  # else the next request's retry writes it
            self.write()
        self.metrics.window(result.replies)
        for f, reply in zip(waiting.futures, result.replies, strict=True):
            if not f.done():
                f.set_result((reply, b))

    def write(self) -> None:
        """Write the kept rows on the ledger's thread, unless a write is under way (it writes
        them after its own)."""
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while self.ledger.pending and not self.ledger.closed:
            try:
                await loop.run_in_executor(self.ledger_thread, self.ledger.flush)
            except LedgerUnwritable as exc:
                if self.ledger_down is None:  # one line per outage, not per window
                    warn(f"{exc}; new requests get 503 until it can be written")
                self.ledger_down = (time.monotonic(), str(exc))
                return

    async def ledger_writable(self) -> None:
        """Write the windows an earlier failure kept in memory before admitting a request
        (tried at most every :data:`RETRY_LEDGER_S`, one request at a time, on the ledger's
        thread).

        Raises:
            LedgerDown: they still cannot be written (or another request is trying).
        """
        if self.ledger_down is None or not self.ledger.pending:
            return
        failed, why = self.ledger_down
        if self.retrying or time.monotonic() - failed < RETRY_LEDGER_S:
            raise LedgerDown(why)
        self.retrying = True
        try:
            await asyncio.get_running_loop().run_in_executor(self.ledger_thread, self.ledger.flush)
        except LedgerUnwritable as exc:
            self.ledger_down = (time.monotonic(), str(exc))
            raise LedgerDown(str(exc)) from None
        finally:
            self.retrying = False
        self.ledger_down = None
        warn(f"{self.ledger.path}: written again; serving")
        self.write()  # the rows kept while it was being written

    async def warm_up(self) -> None:
        """Several models: until the first :data:`WARM_UP` fleet windows are answered, and so
        have shown what the served models cost against the policy's training dollars
        (:class:`~ttcalloc.serve.scale.CostScale`) and what the first window, decided at the
        training costs, overspent, one fleet window at a time is decided (a burst decided at
        once would all be decided on what the first window cost); no wait for one model."""
        while self.warming > 0 and self.pacer.open:
            self.answerer.arrived.clear()
            await self.answerer.arrived.wait()

    @staticmethod
    def deliver(waiting: Waiting, budget: float, i: int, reply: Reply) -> None:
        """Request ``i`` of the window is answered (the rest of the window may not be)."""
        future = waiting.futures[i]
        if not future.done():
            future.set_result((reply, budget))

    async def drain(self, grace: float) -> int:
        """Answer what is gathered and wait for every window in flight, at most ``grace``
        seconds; the windows still running then are cancelled (their requests fail, and they
        are not in the ledger); how many were."""
        for budget in list(self.waiting):
            self.close(budget)
        late: set[asyncio.Task[None]] = set()
        if self.tasks:
            _, late = await asyncio.wait(set(self.tasks), timeout=grace)
        for task in late:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*late, return_exceptions=True)
        if late:
            warn(f"{len(late)} windows still running after {grace:g} s were cancelled")
        if self.writer is not None:  # its write ends within the ledger's busy timeout
            await asyncio.gather(self.writer, return_exceptions=True)
        self.ledger_thread.shutdown(wait=True)  # a retry's write too; the ledger's close
        return len(late)  # writes what is left
