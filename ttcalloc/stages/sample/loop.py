"""The async request loop of ``ttcalloc sample``: workers, retries, accounting and progress.

``concurrency`` workers share one lazy iterator of requests.  Each request is sent (within the
rate limits and ``--max-cost``), retried on 429/5xx/timeouts, and its samples (or errors) are
counted, graded and handed to the part writer as they arrive.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.backends import (
    Backend,
    Choice,
    FatalError,
    Request,
    RequestError,
    RetryableError,
    count_prompt_tokens,
)
from ttcalloc.common.console import err_console, warn
from ttcalloc.common.errors import TtcallocError
from ttcalloc.common.redact import redact
from ttcalloc.stages.sample.limits import CostGuard, RateLimiter
from ttcalloc.stages.sample.options import SampleOptions, worst_cost
from ttcalloc.stages.sample.parts import PartWriter, folder_samples, sample_rows
from ttcalloc.stages.sample.plan import gold_answers, requests
from ttcalloc.stages.sample.result import SampleResult, Stats

if TYPE_CHECKING:
    import polars as pl
    from rich.progress import Progress


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
    run = _Run(backend, problems, out, options, template, params, missing, problems_path)
    await run.run()
    wall = time.monotonic() - run.stats.started
    return SampleResult.from_stats(
        out,
        options.model,
        backend.simulated,
        run.total,
        run.stats,
        wall,
        folder_samples(out),
        run.stop[0] if run.stop else None,
    )


class _Run:
    """The state the workers of one run share (one event loop: no locks needed)."""

    def __init__(
        self,
        backend: Backend,
        problems: pl.DataFrame,
        out: Path,
        options: SampleOptions,
        template: str | None,
        params: dict[str, Any],
        missing: dict[str, list[int]],
        problems_path: Path,
    ) -> None:
        self.backend, self.options, self.out = backend, options, out
        per_request = max(1, min(options.requests_per_batch, backend.max_n))
        self.total = sum(len(v) for v in missing.values())
        self.gold = gold_answers(problems, missing)
        self.pending = requests(problems, options, template, missing, per_request)
        self.stats = Stats()
        self.writer = PartWriter(
            out, params, {"problems": problems_path}, options.flush_every, options.flush_seconds
        )
        self.limiter = RateLimiter(options.rpm, options.tpm)
        self.remaining = collections.Counter({pid: len(v) for pid, v in missing.items()})
        self.n_problems = problems.height
        self.problems_done = problems.height - len(self.remaining)
        self.stop: list[str] = []
        self.guard = CostGuard(options.max_cost)
        prices = getattr(backend, "prices", None)
        self.prices: tuple[float, float] | None = prices() if callable(prices) else None
        self.prompt_tokens: dict[str, int] = {}  # per problem: every request has its prompt
        self.failures = 0  # consecutive failed requests
        self.broken: str | None = None
        _warn_about(options, backend, worst_cost(options, 0, 1, self.prices) is not None)
        self.progress = _progress_bar(options)
        self.task = self.progress.add_task("sample", total=self.total, stats=self.stats_text())

    async def run(self) -> None:
        """Run the workers; a fatal error (auth, unknown model) stops them all, keeping samples."""
        fatal: BaseException | None = None
        with self.progress:
            workers = [asyncio.create_task(self.worker()) for _ in range(self.options.concurrency)]
            try:
                await asyncio.gather(*workers)
            except FatalError as exc:
                fatal = exc
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
            finally:
                self.writer.flush()
        if fatal is not None:
            raise TtcallocError(
                f"{self.options.model}: {fatal} (samples received so far are kept in {self.out})"
            )
        if self.broken is not None:
            raise TtcallocError(
                f"{self.options.model}: stopped: {self.broken}; {self.stats.samples} samples "
                f"received, {self.stats.errors} failed, {self.stats.requests} requests; what was "
                f"received is kept in {self.out}, rerun to retry the rest"
            )

    async def worker(self) -> None:
        while not self.stop:
            request = next(self.pending, None)  # no await in between: safe to share across workers
            if request is None:
                return
            worst = self.worst(request)
            if not await self.guard.reserve(worst):
                if not self.stop:
                    self.stop.append(self.guard.stop_reason())
                return
            if self.stop:  # stopped while waiting for the reservation
                await self.guard.settle(worst, 0.0)
                return
            started = time.monotonic()
            choices, errors = await self.complete(request)
            await self.guard.settle(worst, self.charged(request, choices, errors, worst))
            self.record(request, choices, errors, time.monotonic() - started)

    def worst(self, request: Request) -> float | None:
        """The request's worst-case dollars (None when no price is known)."""
        tokens = self.prompt_tokens.get(request.problem_id)
        if tokens is None:
            tokens = count_prompt_tokens(self.options.model, request.messages)
            self.prompt_tokens = {request.problem_id: tokens}  # requests come problem by problem
        return worst_cost(self.options, tokens, request.n, self.prices)

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
        options = self.options
        est_tokens = (
            sum(len(m["content"]) for m in request.messages) / 4 + options.max_tokens * request.n
        )
        choices: list[Choice | None] = [None] * request.n
        errors: list[str | None] = [None] * request.n
        for attempt in range(options.retries + 1):
            await self.limiter.acquire(est_tokens)
            try:
                self.stats.requests += 1
                got = await self.backend.complete(request)
            except RetryableError as exc:
                if attempt == options.retries:
                    errors = [redact(str(exc))[:500]] * request.n
                    break
                self.stats.retries += 1
                await asyncio.sleep(_backoff(exc, attempt, options.backoff_base))
                continue
            except RequestError as exc:
                errors = [str(exc)[:500]] * request.n
                break
            choices = list(got[: request.n]) + [None] * max(0, request.n - len(got))
            errors = [
                None if c is not None else f"server returned {len(got)} of {request.n} choices"
                for c in choices
            ]
            break
        return choices, errors

    def record(
        self,
        request: Request,
        choices: list[Choice | None],
        errors: list[str | None],
        latency: float,
    ) -> None:
        """Count, grade and write the samples of one request; advance the progress bar."""
        gold = self.gold[request.problem_id]
        rows = sample_rows(gold, self.options.model, request, choices, errors, latency)
        self.writer.add(rows)  # journaled first: counted only once it is on disk
        self.stats.count(choices, errors)
        if any(c is not None and e is None for c, e in zip(choices, errors, strict=True)):
            self.failures = 0
        else:
            self.failures += 1
            if self.failures >= self.options.max_failures and self.broken is None:
                last = next((e for e in errors if e), "no choices")
                self.broken = f"{self.failures} consecutive requests failed (last: {last[:300]})"
                self.stop.append(self.broken)
        self.remaining[request.problem_id] -= request.n
        if self.remaining[request.problem_id] == 0:
            self.problems_done += 1
        if not self.progress.disable:
            self.progress.update(self.task, advance=request.n, stats=self.stats_text())

    def stats_text(self) -> str:
        stats = self.stats
        rate = stats.requests / max(1e-9, time.monotonic() - stats.started)
        cost = f"${stats.cost:.4f}" if stats.cost_known else "$?"
        tokens = stats.prompt_tokens + stats.completion_tokens
        tok = f"{tokens / 1e6:.2f}M" if tokens >= 1e6 else f"{tokens / 1e3:.1f}k"
        return (
            f"{self.problems_done}/{self.n_problems} problems {tok} tok {cost} "
            f"{rate:.1f} req/s {stats.errors} err"
        )


def _warn_about(options: SampleOptions, backend: Backend, priced: bool) -> None:
    if options.max_cost is not None and not priced:
        warn(
            "--max-cost: no price is known for this model, so requests are sent one at a time "
            "and the run stops once the reported cost reaches the cap (--price-in/--price-out "
            "let it reserve ahead and run concurrently)"
        )
    if backend.simulated:
        warn(f"{options.model} is the SIMULATED backend: samples are synthetic, not from an LLM")


def _backoff(exc: RetryableError, attempt: int, base: float) -> float:
    """Seconds to wait before retry ``attempt + 1``: the server's Retry-After, else exponential."""
    delay = exc.retry_after if exc.retry_after is not None else base * 2**attempt
    return min(delay, 120.0) * random.uniform(0.8, 1.2)


def _progress_bar(options: SampleOptions) -> Progress:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]sampling[/bold]"),
        BarColumn(bar_width=16),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(compact=True),
        console=err_console,
        disable=not options.progress or not err_console.is_terminal,
        transient=False,
    )
