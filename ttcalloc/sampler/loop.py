"""The async request loop of the sampler: workers, retries, accounting, progress and signals.

``concurrency`` workers ask one :class:`Source` for requests.  Each request is sent (within the
rate limits and ``--max-cost``), retried on 429/5xx/timeouts, and its samples (or errors) are
graded, journaled and handed to the part writer as they arrive, then reported to the source
(which may decide, from them, what to request next).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ttcalloc.backends import (
    Backend,
    Choice,
    FatalError,
    Request,
    count_prompt_tokens,
)
from ttcalloc.backends.endpoints import Endpoints
from ttcalloc.common.console import err_console, warn
from ttcalloc.common.errors import TtcallocError
from ttcalloc.common.progress import StatusLines
from ttcalloc.common.redact import echoed
from ttcalloc.sampler.limits import CostGuard, RateLimiter
from ttcalloc.sampler.options import SampleOptions, per_request, worst_cost
from ttcalloc.sampler.parts import PartWriter, folder_samples
from ttcalloc.sampler.plan import gold_answers, requests
from ttcalloc.sampler.result import SampleResult, Stats
from ttcalloc.sampler.rows import request_rows
from ttcalloc.sampler.send import send
from ttcalloc.sampler.variants import request_answers

if TYPE_CHECKING:
    import polars as pl
    from rich.progress import Progress

    from ttcalloc.text.variants import PromptVariant


class Source(Protocol):
    """What the workers request, and what is told of every request that is done."""

    total: int  # units of the progress bar

    async def next(self) -> Request | None:
        """The next request to send; None when there is nothing more (the worker ends)."""
        ...

    def received(self, request: Request, rows: Sequence[dict[str, Any]]) -> int:
        """The graded rows of a finished request (errors included); the progress it makes."""
        ...

    def status(self, stats: Stats) -> str:
        """The progress line's text."""
        ...

    def settled(self) -> int:
        """Progress made since the last :meth:`received` (an adaptive run decides its last
        round in :meth:`next`); asked once the workers are done."""
        ...

    def close(self) -> None:
        """The run stops: wake any worker waiting in :meth:`next` (it then returns None)."""
        ...


class MissingSamples:
    """``ttcalloc sample``'s source: the missing samples, problem after problem."""

    def __init__(
        self,
        problems: pl.DataFrame,
        options: SampleOptions,
        template: str | None,
        missing: dict[str, list[int]],
        per_request: int,
    ) -> None:
        self.pending: Iterator[Request] = requests(
            problems, options, template, missing, per_request
        )
        self.total = sum(len(v) for v in missing.values())
        self.remaining = collections.Counter({pid: len(v) for pid, v in missing.items()})
        self.n_problems = problems.height
        self.problems_done = problems.height - len(self.remaining)

    async def next(self) -> Request | None:
        return next(self.pending, None)

    def received(self, request: Request, rows: Sequence[dict[str, Any]]) -> int:
        self.remaining[request.problem_id] -= request.n
        if self.remaining[request.problem_id] == 0:
            self.problems_done += 1
        return request.n

    def status(self, stats: Stats) -> str:
        return f"{self.problems_done}/{self.n_problems} problems {stats_text(stats)}"

    def settled(self) -> int:
        return 0  # every sample is counted when it is received

    def close(self) -> None:
        pass


def stats_text(stats: Stats) -> str:
    """Tokens, dollars, request rate and errors so far."""
    rate = stats.requests / max(1e-9, time.monotonic() - stats.started)
    cost = f"${stats.cost:.4f}" if stats.cost_known else "$?"
    tokens = stats.prompt_tokens + stats.completion_tokens
    tok = f"{tokens / 1e6:.2f}M" if tokens >= 1e6 else f"{tokens / 1e3:.1f}k"
    return f"{tok} tok {cost} {rate:.1f} req/s {stats.errors} err"


async def sample_all(
    backend: Backend,
    problems: pl.DataFrame,
    out: Path,
    options: SampleOptions,
    template: str | None,
    params: dict[str, Any],
    missing: dict[str, list[int]],
    problems_path: Path,
) -> SampleResult:
    """Request the ``missing`` samples from ``backend`` and write them into the folder ``out``."""
    choices = per_request(options, backend.max_n, getattr(backend, "shares_prompt", False))
    source = MissingSamples(problems, options, template, missing, choices)
    run = Sampler(
        backend,
        out,
        options,
        params,
        {"problems": problems_path},
        gold_answers(problems, missing),
        source,
    )
    await run.run()
    return run.result()


class Sampler:
    """The state the workers of one run share (one event loop: no locks needed).

    ``gold`` holds each problem's gold answer (None when unlabeled) and grader, for grading.
    """

    def __init__(
        self,
        backend: Backend,
        out: Path,
        options: SampleOptions,
        params: dict[str, Any],
        inputs: dict[str, Path],
        gold: Mapping[str, Mapping[str, Any]],
        source: Source,
        label: str = "sampling",
    ) -> None:
        self.backend, self.options, self.out = backend, options, out
        self.source = source
        self.gold = gold
        # the credentials in use, to mask where a server echoes them: fixed for the run, so
        # read once here instead of scanning the environment for every request
        self.secrets = echoed()
        self.stats = Stats()
        self.writer = PartWriter(out, params, inputs, options.flush_every, options.flush_seconds)
        self.limiter = RateLimiter(options.rpm, options.tpm)
        self.stop: list[str] = []
        self.guard = CostGuard(options.max_cost)
        prices = getattr(backend, "prices", None)
        self.prices: tuple[float, float] | None = prices() if callable(prices) else None
        self.prompt_tokens: dict[str, int] = {}  # per problem: every request has its prompt
        self.failures = 0  # consecutive failed requests
        self.broken: str | None = None
        _warn_about(options, backend)
        self.progress = _progress_bar(options, label)
        self.task = self.progress.add_task(
            "sample", total=source.total, stats=source.status(self.stats)
        )
        # no bar when stderr is not a terminal: a status line every few seconds instead
        self.lines = StatusLines(label, options.progress)
        self.done = 0  # units of progress made (samples, or questions answered for `run`)

    def result(self) -> SampleResult:
        """What the run did, and what the folder now holds (and, with several endpoints, what
        each one did)."""
        result = SampleResult.from_stats(
            self.out,
            self.options.model,
            self.backend.simulated,
            self.source.total,
            self.stats,
            time.monotonic() - self.stats.started,
            folder_samples(self.out),
            self.stop[0] if self.stop else None,
        )
        pool = getattr(self.backend, "endpoints", None)
        if isinstance(pool, Endpoints) and len(pool.all) > 1:
            result = replace(result, endpoints=pool.summary())
        return result

    def halt(self, reason: str) -> None:
        """Stop sending requests (those in flight finish and are recorded)."""
        if not self.stop:
            self.stop.append(reason)
        self.source.close()

    async def run(self) -> None:
        """Run the workers; a fatal error (auth, unknown model) stops them all, keeping samples."""
        fatal: BaseException | None = None
        with self.progress:
            workers = [asyncio.create_task(self.worker()) for _ in range(self.options.concurrency)]
            reporter = asyncio.create_task(self.report()) if self.lines.enabled else None
            try:
                await asyncio.gather(*workers)
            except FatalError as exc:
                fatal = exc
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
            finally:
                if reporter is not None:
                    reporter.cancel()
                self.source.close()
                self.writer.flush()
            if fatal is None and (step := self.source.settled()):
                self.advance(step, last=True)
        if fatal is not None:
            kept = (
                f"the {self.stats.samples} samples received are kept in {self.out}"
                if self.stats.samples
                else "no sample was received"
            )
            raise TtcallocError(f"{self.options.model}: {fatal} ({kept})")
        if self.broken is not None:
            raise TtcallocError(
                f"{self.options.model}: stopped: {self.broken}; {self.stats.samples} samples "
                f"received, {self.stats.errors} failed, {self.stats.requests} requests; what was "
                f"received is kept in {self.out}, rerun to retry the rest"
            )

    async def report(self) -> None:
        """Print the status line every few seconds, also while no sample arrives (a slow local
        model), until cancelled; :meth:`record` prints it too when it is due."""
        seconds = self.lines.seconds or 10.0
        while True:
            await asyncio.sleep(max(0.01, self.lines.last + seconds - time.monotonic()))
            self.status()

    def status(self) -> None:
        """The status line, if one is due (stderr not a terminal)."""
        if self.lines.due():
            self.lines.show(self.done, self.source.total, self.source.status(self.stats))

    async def worker(self) -> None:
        while not self.stop:
            request = await self.source.next()
            if request is None or self.stop:
                return
            worst = self.worst(request)
            if not await self.guard.reserve(worst):
                self.halt(self.guard.stop_reason())
                return
            if self.stop:  # stopped while waiting for the reservation
                await self.guard.settle(worst, 0.0)
                return
            started = time.monotonic()
            choices, errors = await self.complete(request)
            await self.guard.settle(worst, self.charged(request, choices, errors, worst))
            latency = time.monotonic() - started
            variant, answers = await request_answers(self.options, request, choices, errors)
            self.record(request, choices, errors, latency, variant, answers)

    def worst(self, request: Request) -> float | None:
        """The request's worst-case dollars (None when no price is known).

        Only ``--max-cost`` uses it: without it, or without a price, the prompt is not counted
        (the counter is litellm's tokenizer: importing litellm alone takes seconds).
        """
        prices, options = self.prices, self.options
        prices_for = getattr(self.backend, "prices_for", None)
        if request.model is not None and callable(prices_for):  # several models: its own price
            prices = prices_for(request.model)
            options = replace(options, model=request.model, price_in=None, price_out=None)
        if options.max_cost is None or worst_cost(options, 0, 1, prices) is None:
            return None
        key = f"{request.model}\n{request.problem_id}"
        tokens = self.prompt_tokens.get(key)
        if tokens is None:
            tokens = count_prompt_tokens(options.model, request.messages)
            self.prompt_tokens = {key: tokens}  # requests come problem by problem
        return worst_cost(options, tokens, request.n, prices)

    @staticmethod
    def charged(
        request: Request,
        choices: list[Choice | None],
        errors: list[str | None],
        worst: float | None,
    ) -> float:
        """Dollars a request counts for: reported costs, the worst case of a sample without."""
        total = 0.0
        for choice, error in zip(choices, errors, strict=True):
            if choice is None or error is not None:
                continue
            if choice.cost_usd is not None:
                total += choice.cost_usd
            elif worst is not None:
                total += worst / request.n
        return total

    async def complete(self, request: Request) -> tuple[list[Choice | None], list[str | None]]:
        """Send one request, retrying 429/5xx/timeouts: per sample, a choice or an error."""
        return await send(self.backend, request, self.options, self.limiter, self.stats)

    def record(
        self,
        request: Request,
        choices: list[Choice | None],
        errors: list[str | None],
        latency: float,
        variant: PromptVariant | None = None,
        answers: list[str | None] | None = None,
    ) -> None:
        """Count, grade and write the samples of one request (``variant``: the prompt variant
        it was drawn with; ``answers``: a program variant's programs' answers); advance the
        progress bar."""
        gold = self.gold[request.problem_id]
        model = request.model or self.options.model  # several models: the request's own
        rows = request_rows(
            gold, model, request, choices, errors, latency, self.secrets, variant, answers
        )
        self.writer.add(rows.values)  # journaled first: counted only once it is on disk
        self.stats.count(choices, errors)
        if any(c is not None and e is None for c, e in zip(choices, errors, strict=True)):
            self.failures = 0
        else:
            self.failures += 1
            if self.failures >= self.options.max_failures and self.broken is None:
                last = next((e for e in errors if e), "no choices")
                self.broken = f"{self.failures} consecutive requests failed (last: {last[:300]})"
                self.halt(self.broken)
        self.advance(self.source.received(request, rows))

    def advance(self, step: int, last: bool = False) -> None:
        """Count ``step`` more units of progress: the bar, and the status line when one is due
        (``last``: now, the run's final count)."""
        self.done += step
        if last and self.lines.enabled:
            self.lines.show(self.done, self.source.total, self.source.status(self.stats))
        else:
            self.status()
        if not self.progress.disable:
            self.progress.update(
                self.task,
                advance=step,
                total=self.source.total,
                stats=self.source.status(self.stats),
            )


def _warn_about(options: SampleOptions, backend: Backend) -> None:
    if backend.simulated:
        warn(f"{options.model} is the SIMULATED backend: samples are synthetic, not from an LLM")
    if getattr(backend, "replayed", False):
        warn(
            f"{options.model} is the REPLAY backend: recorded samples served again in a seeded "
            "order, not drawn from an LLM now"
        )


def _progress_bar(options: SampleOptions, label: str) -> Progress:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(bar_width=16),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(compact=True),
        console=err_console,
        disable=not options.progress or not err_console.is_terminal,
        transient=False,
    )


def stop_on_signals() -> None:
    """SIGINT and SIGTERM cancel the run (workers stop, what arrived is written), not kill it."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is None:
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(sig, task.cancel)  # main thread only
