"""``ttcalloc sample``: collect samples from an LLM, resumable, concurrent, never paying twice.

Samples go to a folder of Parquet parts, each written atomically as requests complete.  A rerun
of the same command reads the folder and requests only what is missing (failed requests
included); ``--n 32`` after ``--n 16`` adds 16 more per problem.  Later stages read the folder as
one table; a retried sample supersedes its recorded failure.
"""

from __future__ import annotations

import asyncio
import collections
import math
import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.artifacts.io import read_artifact, read_meta, write_artifact
from ttcalloc.artifacts.schemas import PROBLEMS, SAMPLES
from ttcalloc.backends import (
    Backend,
    Choice,
    FatalError,
    Request,
    RequestError,
    RetryableError,
    SamplingParams,
    open_backend,
)
from ttcalloc.common.console import err_console, log, warn
from ttcalloc.common.errors import DataError, InputError, TtcallocError
from ttcalloc.common.hashing import seeded_int
from ttcalloc.common.redact import redact
from ttcalloc.text import grading, prompts

if TYPE_CHECKING:
    import polars as pl

# generation settings that must match between runs writing into one folder
CONSISTENT = ("temperature", "max_tokens", "prompt", "system")


@dataclass(frozen=True)
class SampleOptions:
    """Everything ``ttcalloc sample`` takes besides its input and output paths."""

    model: str
    n: int = 16
    temperature: float = 0.7
    max_tokens: int = 512
    prompt: str | None = None
    system: str | None = None
    seed: int = 0
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    timeout: float = 120.0
    retries: int = 4
    backoff_base: float = 1.0
    max_cost: float | None = None
    limit: int | None = None
    shard: tuple[int, int] | None = None
    requests_per_batch: int = 1
    api_base: str | None = None
    price_in: float | None = None
    price_out: float | None = None
    flush_every: int = 64
    flush_seconds: float = 5.0
    progress: bool = True

    def check(self) -> None:
        positive = {
            "--n": self.n,
            "--concurrency": self.concurrency,
            "--max-tokens": self.max_tokens,
            "--requests-per-batch": self.requests_per_batch,
        }
        for flag, value in positive.items():
            if value < 1:
                raise InputError(f"{flag} {value}: must be at least 1")
        if self.retries < 0:
            raise InputError(f"--retries {self.retries}: must be >= 0")
        if self.timeout <= 0:
            raise InputError(f"--timeout {self.timeout}: must be positive")
        for flag, v in {"--rpm": self.rpm, "--tpm": self.tpm, "--max-cost": self.max_cost}.items():
            if v is not None and v <= 0:
                raise InputError(f"{flag} {v}: must be positive")
        if self.shard is not None:
            i, k = self.shard
            if not (k >= 1 and 0 <= i < k):
                raise InputError(f"--shard {i}/{k}: expected i/n with 0 <= i < n")


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, k = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    return i, k


def in_shard(problem_id: str, shard: tuple[int, int]) -> bool:
    return seeded_int("shard", problem_id) % shard[1] == shard[0]


def request_seed(seed: int, problem_id: str, model: str) -> int:
    """Base seed of a problem; sample ``i`` uses ``base + i`` so seeds never collide.

    Servers such as llama.cpp give choice ``j`` of a request the seed ``seed + j``: a request for
    samples ``i..i+m-1`` is sent with ``base + i``, so every sample keeps its own seed.
    """
    return seeded_int("seed", seed, problem_id, model, nbytes=4) % (2**31 - 2**20)


@dataclass
class Stats:
    samples: int = 0
    errors: int = 0
    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cost_known: bool = True
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class SampleResult:
    """What a run did, and what the folder now holds."""

    out: Path
    model: str
    simulated: bool
    requested: int
    written: int
    errors: int
    requests: int
    retries: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    wall_s: float
    total_samples: int
    stopped: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"out": str(self.out)}

    @classmethod
    def from_stats(
        cls,
        out: Path,
        model: str,
        simulated: bool,
        requested: int,
        stats: Stats,
        wall_s: float,
        total_samples: int,
        stopped: str | None = None,
    ) -> SampleResult:
        """The result of a run from its counters (an empty ``Stats()`` for a run with no work)."""
        return cls(
            out=out,
            model=model,
            simulated=simulated,
            requested=requested,
            written=stats.samples,
            errors=stats.errors,
            requests=stats.requests,
            retries=stats.retries,
            prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens,
            cost_usd=stats.cost if stats.cost_known else None,
            wall_s=wall_s,
            total_samples=total_samples,
            stopped=stopped,
        )


class RateLimiter:
    """Requests and tokens per minute, over a sliding 60 s window."""

    def __init__(self, rpm: float | None, tpm: float | None) -> None:
        self.rpm, self.tpm = rpm, tpm
        self.events: collections.deque[tuple[float, float]] = collections.deque()
        self.lock = asyncio.Lock()

    async def acquire(self, tokens: float) -> None:
        if self.rpm is None and self.tpm is None:
            return
        async with self.lock:
            while True:
                now = time.monotonic()
                while self.events and now - self.events[0][0] >= 60.0:
                    self.events.popleft()
                used = sum(t for _, t in self.events)
                ok_r = self.rpm is None or len(self.events) < self.rpm
                ok_t = self.tpm is None or used + tokens <= self.tpm or not self.events
                if ok_r and ok_t:
                    self.events.append((now, tokens))
                    return
                await asyncio.sleep(max(0.01, 60.0 - (now - self.events[0][0])))


class PartWriter:
    """Buffers sample rows and writes them as atomic Parquet parts."""

    def __init__(
        self,
        folder: Path,
        params: dict[str, Any],
        inputs: dict[str, Path],
        every: int,
        seconds: float,
    ) -> None:
        self.folder, self.params, self.inputs = folder, params, inputs
        self.every, self.seconds = every, seconds
        self.rows: list[dict[str, Any]] = []
        self.last = time.monotonic()
        self.seq = 0
        # sortable by time; pid and a random suffix keep concurrent runs apart
        now = datetime.now(timezone.utc)
        self.tag = f"{now:%Y%m%dT%H%M%S%f}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.rows.extend(rows)
        if len(self.rows) >= self.every or time.monotonic() - self.last >= self.seconds:
            self.flush()

    def flush(self) -> None:
        import polars as pl

        self.last = time.monotonic()
        if not self.rows:
            return
        df = pl.DataFrame(
            self.rows,
            schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
            infer_schema_length=None,
        )
        path = self.folder / f"part-{self.tag}-{self.seq:05d}.parquet"
        write_artifact(df, path, SAMPLES, stage="sample", params=self.params, inputs=self.inputs)
        self.seq += 1
        self.rows = []


def _existing(out: Path, model: str, params: dict[str, Any]) -> pl.DataFrame | None:
    """Samples already in the folder for this model (after superseding), checking settings."""
    import polars as pl

    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is a file; `sample` writes a folder of parts")
    if not out.exists() or not any(out.glob("part-*.parquet")):
        return None
    for part in sorted(out.glob("part-*.parquet")):
        before = read_meta(part).get("params", {})
        if before.get("model") != model:
            continue
        for key in CONSISTENT:
            if key in before and before[key] != params[key]:
                raise InputError(
                    f"--out {out}: holds samples of {model} drawn with {key}={before[key]!r}, "
                    f"not {params[key]!r}; use the same settings or another --out"
                )
        break
    df = read_artifact(out, SAMPLES).df
    return df.filter(pl.col("model") == model)


def _rows(
    problem: dict[str, Any],
    model: str,
    request: Request,
    choices: list[Choice | None],
    errors: list[str | None],
    latency: float,
) -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    out = []
    for j, (choice, error) in enumerate(zip(choices, errors, strict=True)):
        pred = correct = None
        if choice is not None and error is None:
            pred = grading.extract_answer(choice.text, problem["grader"])
            correct = grading.is_correct(pred, problem["answer"], problem["grader"])
        out.append(
            {
                "problem_id": request.problem_id,
                "model": model,
                "sample_idx": request.first_idx + j,
                "response": choice.text if choice else None,
                "pred_answer": pred,
                "correct": correct,
                "prompt_tokens": choice.prompt_tokens if choice else None,
                "completion_tokens": choice.completion_tokens if choice else None,
                "cost_usd": choice.cost_usd if choice else None,
                "latency_s": latency,
                "finish_reason": choice.finish_reason if choice else None,
                "error": error,
                "seed": request.seed + j,
                "timestamp": now,
            }
        )
    return out


def sample_problems(problems_path: Path, out: Path, options: SampleOptions) -> SampleResult:
    """Sample ``options.n`` responses per problem from ``options.model`` into the folder ``out``.

    Args:
        problems_path: problems artifact (``ttcalloc data``).
        out: folder of Parquet parts (created; reused and completed on reruns).
        options: model, sampling settings, concurrency, limits and retries.

    Returns:
        A :class:`SampleResult` (samples written, errors, tokens, dollars, wall time).

    Raises:
        InputError: bad flags, unknown provider, settings that differ from the folder's samples.
        TtcallocError: authentication or unknown-model errors stop the run (samples already
            received are kept).
    """
    import polars as pl

    options.check()
    template, prompt_label = prompts.load_template(options.prompt)
    problems = read_artifact(problems_path, PROBLEMS).df
    if options.shard is not None:
        shard = options.shard
        keep = [in_shard(p, shard) for p in problems["problem_id"].to_list()]
        problems = problems.filter(pl.Series(keep, dtype=pl.Boolean))
    if options.limit is not None:
        problems = problems.head(options.limit)
    if problems.height == 0:
        raise DataError(f"{problems_path}: no problems to sample (after --limit/--shard)")
    params = {
        "model": options.model,
        "n": options.n,
        "temperature": options.temperature,
        "max_tokens": options.max_tokens,
        "prompt": prompt_label,
        "system": options.system,
        "seed": options.seed,
        "requests_per_batch": options.requests_per_batch,
        "api_base": options.api_base,
        "price_in": options.price_in,
        "price_out": options.price_out,
    }
    existing = _existing(Path(out), options.model, params)
    done: dict[str, set[int]] = collections.defaultdict(set)
    if existing is not None:
        ok = existing.filter(existing["error"].is_null())
        for pid, idx in ok.select("problem_id", "sample_idx").iter_rows():
            done[pid].add(idx)

    if not _missing(problems, options.n, done):  # nothing to do: do not start the backend
        log(f"every problem already has {options.n} samples from {options.model}")
        total = existing.height if existing is not None else 0
        simulated = options.model.startswith("sim/")
        return SampleResult.from_stats(Path(out), options.model, simulated, 0, Stats(), 0.0, total)

    async def run() -> SampleResult:
        async with open_backend(options.model, _sampling_params(options)) as backend:
            return await _sample_all(
                backend, problems, Path(out), options, template, params, done, Path(problems_path)
            )

    return asyncio.run(run())


def _sampling_params(options: SampleOptions) -> SamplingParams:
    local = options.model.startswith("local/")
    return SamplingParams(
        temperature=options.temperature,
        max_tokens=options.max_tokens,
        timeout=options.timeout,
        api_base=options.api_base,
        price_in=options.price_in,
        price_out=options.price_out,
        extra={"n_parallel": min(options.concurrency, 4)} if local else {},
    )


def _missing(problems: pl.DataFrame, n: int, done: dict[str, set[int]]) -> dict[str, list[int]]:
    """Sample indices still needed per problem (problems with none missing are left out)."""
    out: dict[str, list[int]] = {}
    for pid in problems["problem_id"].to_list():
        have = done.get(pid)
        missing = [i for i in range(n) if not have or i not in have]
        if missing:
            out[pid] = missing
    return out


def _requests(
    problems: pl.DataFrame,
    options: SampleOptions,
    template: str | None,
    missing: dict[str, list[int]],
    per_request: int,
) -> Iterator[Request]:
    """Requests, generated lazily so memory does not grow with the number of problems."""
    for row in problems.iter_rows(named=True):
        pid = row["problem_id"]
        todo = missing.get(pid)
        if not todo:
            continue
        messages = []
        if options.system:
            messages.append({"role": "system", "content": options.system})
        content = prompts.render(template, row["grader"], row["question"])
        messages.append({"role": "user", "content": content})
        base = request_seed(options.seed, pid, options.model)
        # consecutive runs of missing indices, cut into requests of at most per_request choices
        runs: list[tuple[int, int]] = []
        start = prev = todo[0]
        for i in todo[1:]:
            if i != prev + 1:
                runs.append((start, prev))
                start = i
            prev = i
        runs.append((start, prev))
        for lo, hi in runs:
            for first in range(lo, hi + 1, per_request):
                m = min(per_request, hi + 1 - first)
                yield Request(pid, first, m, messages, base + first, row["question"], row["answer"])


async def _sample_all(
    backend: Backend,
    problems: pl.DataFrame,
    out: Path,
    options: SampleOptions,
    template: str | None,
    params: dict[str, Any],
    done: dict[str, set[int]],
    problems_path: Path,
) -> SampleResult:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    per_request = max(1, min(options.requests_per_batch, backend.max_n))
    missing = _missing(problems, options.n, done)
    total = sum(len(v) for v in missing.values())
    by_id = {
        pid: {"answer": answer, "grader": grader}
        for pid, answer, grader in problems.select("problem_id", "answer", "grader").iter_rows()
        if pid in missing
    }
    pending = _requests(problems, options, template, missing, per_request)
    stats = Stats()
    writer = PartWriter(
        out, params, {"problems": problems_path}, options.flush_every, options.flush_seconds
    )
    limiter = RateLimiter(options.rpm, options.tpm)
    remaining_per_problem = collections.Counter({pid: len(v) for pid, v in missing.items()})
    problems_done = problems.height - len(remaining_per_problem)
    stop: list[str] = []
    reserved = [0.0]
    worst = _worst_cost(options)
    if options.max_cost is not None and worst is None and not backend.simulated:
        warn("--max-cost cannot be enforced before prices are known; it applies to reported costs")
    if backend.simulated:
        warn(f"{options.model} is the SIMULATED backend: samples are synthetic, not from an LLM")

    progress = Progress(
        TextColumn("[bold]sampling[/bold]"),
        BarColumn(bar_width=16),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(compact=True),
        console=err_console,
        disable=not options.progress or not err_console.is_terminal,
        transient=False,
    )

    def stats_text() -> str:
        rate = stats.requests / max(1e-9, time.monotonic() - stats.started)
        cost = f"${stats.cost:.4f}" if stats.cost_known else "$?"
        tokens = stats.prompt_tokens + stats.completion_tokens
        tok = f"{tokens / 1e6:.2f}M" if tokens >= 1e6 else f"{tokens / 1e3:.1f}k"
        return (
            f"{problems_done}/{problems.height} problems {tok} tok {cost} "
            f"{rate:.1f} req/s {stats.errors} err"
        )

    task = progress.add_task("sample", total=total, stats=stats_text())

    async def call(request: Request) -> None:
        nonlocal problems_done
        est_tokens = (
            sum(len(m["content"]) for m in request.messages) / 4 + options.max_tokens * request.n
        )
        choices: list[Choice | None] = [None] * request.n
        errors: list[str | None] = [None] * request.n
        started = time.monotonic()
        for attempt in range(options.retries + 1):
            await limiter.acquire(est_tokens)
            try:
                stats.requests += 1
                got = await backend.complete(request)
            except RetryableError as exc:
                if attempt == options.retries:
                    errors = [redact(str(exc))[:500]] * request.n
                    break
                stats.retries += 1
                delay = (
                    exc.retry_after
                    if exc.retry_after is not None
                    else options.backoff_base * 2**attempt
                )
                await asyncio.sleep(min(delay, 120.0) * random.uniform(0.8, 1.2))
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
        latency = time.monotonic() - started
        rows = _rows(by_id[request.problem_id], options.model, request, choices, errors, latency)
        for c, e in zip(choices, errors, strict=True):
            if e is None and c is not None:
                stats.samples += 1
                stats.prompt_tokens += c.prompt_tokens or 0
                stats.completion_tokens += c.completion_tokens or 0
                if c.cost_usd is None:
                    stats.cost_known = False
                else:
                    stats.cost += c.cost_usd
            else:
                stats.errors += 1
        writer.add(rows)
        remaining_per_problem[request.problem_id] -= request.n
        if remaining_per_problem[request.problem_id] == 0:
            problems_done += 1
        if not progress.disable:
            progress.update(task, advance=request.n, stats=stats_text())

    async def worker() -> None:
        while not stop:
            request = next(pending, None)  # no await in between: safe to share across workers
            if request is None:
                return
            if options.max_cost is not None and worst is not None:
                need = worst * request.n
                if stats.cost + reserved[0] + need > options.max_cost:
                    stop.append(
                        f"--max-cost ${options.max_cost:g} reached (${stats.cost:.4f} spent)"
                    )
                    return
                reserved[0] += need
            try:
                await call(request)
            finally:
                if options.max_cost is not None and worst is not None:
                    reserved[0] -= worst * request.n
            if options.max_cost is not None and stats.cost_known and stats.cost >= options.max_cost:
                stop.append(f"--max-cost ${options.max_cost:g} reached (${stats.cost:.4f} spent)")

    fatal: BaseException | None = None
    with progress:
        workers = [asyncio.create_task(worker()) for _ in range(options.concurrency)]
        try:
            await asyncio.gather(*workers)
        except FatalError as exc:
            fatal = exc
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        finally:
            writer.flush()
    if fatal is not None:
        raise TtcallocError(f"{options.model}: {fatal} (samples received so far are kept in {out})")
    wall = time.monotonic() - stats.started
    total_now = 0
    if out.exists() and any(out.glob("part-*.parquet")):
        total_now = read_artifact(out, SAMPLES).df.height
    return SampleResult.from_stats(
        out,
        options.model,
        backend.simulated,
        total,
        stats,
        wall,
        total_now,
        stop[0] if stop else None,
    )


def _worst_cost(options: SampleOptions) -> float | None:
    """Upper bound on one sample's dollar cost, when prices are given."""
    if options.price_in is None and options.price_out is None:
        return None
    prompt_guess = 2000  # tokens; generous for a chain-of-thought prompt
    return (
        prompt_guess * (options.price_in or 0) + options.max_tokens * (options.price_out or 0)
    ) / 1e6


def describe(result: SampleResult) -> str:
    """The end-of-run summary line."""
    cost = "unknown" if result.cost_usd is None else f"${result.cost_usd:.4f}"
    label = f"{result.model} (SIMULATED)" if result.simulated else result.model
    if result.requests == 0:
        return f"{label}: nothing to sample; {result.out} holds {result.total_samples} samples"
    rate = result.requests / result.wall_s if result.wall_s > 0 else math.inf
    line = (
        f"{label}: {result.written} samples written ({result.errors} failed), "
        f"{result.requests} requests ({rate:.1f}/s, {result.retries} retries), "
        f"{result.prompt_tokens + result.completion_tokens:,} tokens, cost {cost}, "
        f"{result.wall_s:.1f} s; {result.out} holds {result.total_samples} samples"
    )
    if result.stopped:
        line += f"; stopped: {result.stopped}"
    return line
