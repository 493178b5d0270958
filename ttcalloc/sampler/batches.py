"""``sample --batch``: the missing samples through a provider batch API.

Write the missing requests as batch JSONL (:mod:`~ttcalloc.sampler.batch_lines`), split to the
provider's limits; for each batch, journal it (:mod:`~ttcalloc.sampler.batch_state`), upload,
create; poll until every batch is finished; download, grade and write the results as ordinary
sample parts.  Requests that failed or expired are sent once more in a new batch, then recorded
as failed (a later rerun retries them, as for per-request sampling).  ``--max-cost`` reserves
each batch's worst case before it is submitted and submits no batch that does not fit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ttcalloc.backends import Choice, Request, SamplingParams, count_prompt_tokens
from ttcalloc.backends.batch_api import (
    MAX_BYTES,
    MAX_REQUESTS,
    BatchAPI,
    BatchInfo,
    NotAtProvider,
    choices_from_body,
    request_body,
)
from ttcalloc.common.console import log
from ttcalloc.common.errors import InputError
from ttcalloc.common.progress import Tracker
from ttcalloc.common.redact import echoed
from ttcalloc.sampler.batch_lines import (
    Outcome,
    held_indices,
    jsonl_line,
    outcomes,
    parse_custom_id,
    span_id,
    split,
)
from ttcalloc.sampler.batch_state import BatchState, Entry
from ttcalloc.sampler.options import SampleOptions, request_seed, worst_cost
from ttcalloc.sampler.parts import PartWriter, folder_samples
from ttcalloc.sampler.result import SampleResult, Stats
from ttcalloc.sampler.rows import request_rows


@dataclass(frozen=True)
class BatchOptions:
    """What ``sample --batch`` adds to :class:`SampleOptions`."""

    discount: float | None = None  # batch price / normal price (None: litellm's, else 0.5)
    poll_seconds: float = 30.0
    max_requests: int = MAX_REQUESTS  # lines per batch (the provider's limit, or fewer)
    max_bytes: int = MAX_BYTES


@dataclass(frozen=True)
class Problem:
    """What grading and rebuilding a problem's requests need."""

    messages: list[dict[str, str]]
    question: str
    answer: str | None
    grader: str


class BatchRun:
    """One ``sample --batch`` run on a folder whose lock is held."""

    def __init__(
        self,
        api: BatchAPI,
        name: str,
        out: Path,
        options: SampleOptions,
        batch: BatchOptions,
        params: dict[str, Any],
        inputs: dict[str, Path],
        problems: Mapping[str, Problem],
        prices: tuple[float, float] | None,
        sampling: SamplingParams,
        done: Mapping[str, set[int]],
    ) -> None:
        self.api, self.name, self.out = api, name, out
        self.options, self.batch, self.problems = options, batch, problems
        self.prices, self.sampling, self.done = prices, sampling, done
        self.state = BatchState.load(out, options.model, params)
        self.writer = PartWriter(out, params, inputs, options.flush_every, options.flush_seconds)
        self.stats = Stats()
        self.spent = 0.0  # dollars of collected batches (worst cases where none is known)
        self.stop: str | None = None
        self.secrets = echoed()
        self.resent = 0  # requests sent a second time after failing or expiring
        self.gave_up = 0  # requests that failed twice (recorded as failed)
        self.collected = 0  # batches collected in this run
        self.tokens: dict[str, int] = {}

    # --- planning --------------------------------------------------------------------------

    def request(self, cid: str) -> Request:
        """The request a custom id stands for (the same prompt and seeds as per request)."""
        pid, first, n = parse_custom_id(cid)
        p = self.problems[pid]
        seed = request_seed(self.options.seed, pid, self.options.model) + first
        return Request(pid, first, n, p.messages, seed, p.question, p.answer or "")

    def worst(self, cids: list[str]) -> float | None:
        """Worst-case dollars of the lines ``cids`` at the batch price (None: no cap, or no
        price): each prompt as counted, ``max_tokens`` per completion."""
        if self.options.max_cost is None:
            return None
        plain = replace(self.options, price_in=None, price_out=None)
        total = 0.0
        for cid in cids:
            r = self.request(cid)
            tokens = self.tokens.get(r.problem_id)
            if tokens is None:
                tokens = self.tokens[r.problem_id] = count_prompt_tokens(
                    self.options.model, r.messages
                )
            cost = worst_cost(plain, tokens, r.n, self.prices)
            if cost is None:
                return None
            total += cost
        return total

    def fits(self, worst: float | None) -> bool:
        """Whether a batch of worst case ``worst`` fits under ``--max-cost`` with every batch
        in the journal still reserved at its worst case."""
        cap = self.options.max_cost
        if cap is None or worst is None:
            return True
        reserved = sum(e.worst or 0.0 for e in self.state.entries)
        return self.spent + reserved + worst <= cap

    # --- submitting ------------------------------------------------------------------------

    def plan(self, cids: list[str], attempt: int) -> list[Entry]:
        """Journal batches for the lines ``cids`` (split to the limits), those that fit under
        ``--max-cost``; the first that does not fit stops the planning."""
        lines = [(cid, jsonl_line(cid, self.body(cid))) for cid in cids]
        entries = []
        for group in split(lines, self.batch.max_requests, self.batch.max_bytes):
            chunk = [lines[i][0] for i in group]
            worst = self.worst(chunk)
            if not self.fits(worst):
                self.stop = (
                    f"--max-cost ${self.options.max_cost:g} reached (a batch of {len(chunk)} "
                    f"requests, worst case ${worst or 0.0:.4f}, does not fit; --batch-requests "
                    "makes smaller batches)"
                )
                break
            entries.append(self.state.add(chunk, attempt, worst))
        self.state.save()
        return entries

    def body(self, cid: str) -> dict[str, Any]:
        return request_body(self.name, self.request(cid), self.sampling)

    def submit(self, entry: Entry) -> None:
        """Upload and create an entry's batch, journaling each id as soon as it is known; an
        entry with a file but no batch id (killed in between) re-attaches if the provider has
        the batch."""
        if entry.file_id is None:
            content = b"".join(jsonl_line(cid, self.body(cid)) for cid in entry.cids)
            entry.file_id = self.api.upload(f"{entry.key}.jsonl", content)
            entry.status = "uploaded"
            self.state.save()
        else:
            found = self.api.find(entry.key, entry.file_id)
            if found is not None:
                self.attach(entry, found)
                return
        self.attach(entry, self.api.create(entry.file_id, entry.key))
        self.stats.requests += len(entry.cids)

    def attach(self, entry: Entry, info: BatchInfo) -> None:
        entry.batch_id, entry.status = info.id, info.status
        entry.submitted_at = entry.submitted_at or time.time()
        self.state.save()

    # --- collecting ------------------------------------------------------------------------

    def collect(self, entry: Entry, info: BatchInfo) -> int:
        """Grade and write a finished batch's results; send its failed requests once more (or
        record them as failed); drop the entry.  How many samples it settled."""
        got: dict[str, Outcome] = {}
        for file_id in (info.error_file_id, info.output_file_id):  # output wins
            if file_id:
                got |= outcomes(self.api.content(file_id))
        latency = time.time() - (entry.submitted_at or time.time())
        settled, retry, rows = 0, [], []
        charged = 0.0
        for cid in entry.cids:
            request = self.request(cid)
            have = self.done.get(request.problem_id, set())
            if all(i in have for i in range(request.first_idx, request.first_idx + request.n)):
                continue  # written before a kill left the entry in the journal
            why = f" ({info.reason})" if info.reason else ""
            outcome = got.get(cid) or Outcome(None, f"batch {info.status}{why}: no result")
            choices, errors = self.results(request, outcome)
            if all(e is not None for e in errors) and entry.attempt == 0:
                retry.append(cid)
                continue
            p = self.problems[request.problem_id]
            gold = {"answer": p.answer, "grader": p.grader}
            rows += request_rows(
                gold, self.options.model, request, choices, errors, latency, self.secrets
            ).values
            self.stats.count(choices, errors)
            charged += sum(c.cost_usd or 0.0 for c in choices if c is not None)
            self.gave_up += entry.attempt * sum(e is not None for e in errors)
            settled += request.n
        if rows:
            self.writer.add(rows)
            self.writer.flush()  # in parts before the entry leaves the journal
        self.spent += charged if self.prices is not None else (entry.worst or 0.0)
        self.state.remove(entry)
        if retry:
            self.resent += len(retry)
            for new in self.plan(retry, attempt=1):
                self.submit(new)
            resent = set(self.state.held())
            for cid in [c for c in retry if c not in resent]:
                settled += self.not_resent(cid, info.status)
        self.state.save()
        return settled

    def results(
        self, request: Request, outcome: Outcome
    ) -> tuple[list[Choice | None], list[str | None]]:
        """Per sample of ``request``: a choice or an error."""
        n = request.n
        if outcome.body is None:
            return [None] * n, [outcome.error or "no result"] * n
        try:
            got = choices_from_body(outcome.body, self.prices)
        except (ValueError, TypeError, AttributeError) as exc:
            return [None] * n, [f"malformed batch result: {exc}"] * n
        choices: list[Choice | None] = list(got[:n]) + [None] * max(0, n - len(got))
        errors = [None if c else f"server returned {len(got)} of {n} choices" for c in choices]
        return choices, errors

    def not_resent(self, cid: str, status: str) -> int:
        """Record the samples of a failed request that ``--max-cost`` kept from being resent."""
        request = self.request(cid)
        p = self.problems[request.problem_id]
        errors: list[str | None] = [f"batch {status}; not resent: {self.stop}"] * request.n
        choices: list[Choice | None] = [None] * request.n
        gold = {"answer": p.answer, "grader": p.grader}
        rows = request_rows(gold, self.options.model, request, choices, errors, 0.0, self.secrets)
        self.writer.add(rows.values)
        self.writer.flush()
        self.stats.count(choices, errors)
        self.gave_up += request.n
        return request.n

    # --- the run ---------------------------------------------------------------------------

    def run(self, missing: dict[str, list[int]], progress: bool) -> SampleResult:
        """Submit the ``missing`` samples (less those the journal's batches hold), re-attach
        to the journal's batches, and poll until every batch is collected."""
        held = held_indices(self.state.held())
        if unknown := sorted(set(held) - set(self.problems)):
            raise InputError(
                f"{self.state.path}: holds batches of problems not in the problems file "
                f"(e.g. {unknown[0]!r}); rerun with the problems they were submitted for"
            )
        for entry in self.state.entries:  # an earlier run's batches, reserved under this cap
            if entry.worst is None:
                entry.worst = self.worst(entry.cids)
        per = max(1, self.options.requests_per_batch)
        cids = []
        for pid, todo in missing.items():
            todo = [i for i in todo if i not in held.get(pid, set())]
            cids += _spans(pid, todo, per)
        attached = len(self.state.entries)
        for entry in [e for e in self.state.entries if e.batch_id is None]:
            self.submit(entry)
        if attached:
            log(f"{self.out}: re-attached to {attached} batches of an earlier run")
        for entry in self.plan(cids, attempt=0):
            self.submit(entry)
        total = sum(parse_custom_id(c)[2] for c in self.state.held())
        with Tracker("batch", total, progress) as tracker:
            try:
                self.poll(tracker)
            except KeyboardInterrupt:
                log(
                    f"{len(self.state.entries)} batches keep running at the provider; the same "
                    f"command again collects them ({self.state.path})"
                )
                raise
            finally:
                self.writer.flush()
        if self.resent:
            log(
                f"{self.resent} requests failed or expired and were sent once more; "
                f"{self.gave_up} samples failed again and are recorded as failed"
            )
        return SampleResult.from_stats(
            self.out,
            self.options.model,
            False,
            total,
            self.stats,
            time.monotonic() - self.stats.started,
            folder_samples(self.out),
            self.stop,
        )

    def poll(self, tracker: Tracker) -> None:
        """Retrieve every batch each ``poll_seconds`` and collect the finished ones."""
        while self.state.entries:
            for entry in list(self.state.entries):
                if entry.batch_id is None:
                    self.submit(entry)
                    continue
                try:
                    info = self.api.retrieve(entry.batch_id)
                except NotAtProvider as exc:
                    raise InputError(
                        f"{self.state.path}: batch {entry.batch_id} is not at the provider "
                        f"({exc}): deleted, or the journal is another account's or server's; "
                        "remove the file to sample its requests again"
                    ) from None
                if info.status != entry.status:
                    entry.status = info.status
                    self.state.save()
                if info.finished:
                    settled = self.collect(entry, info)
                    self.collected += 1
                    tracker.advance(settled, self.detail())
            tracker.lines.tick(tracker.done, tracker.total, self.detail())
            if self.state.entries:
                time.sleep(self.batch.poll_seconds)

    def detail(self) -> str:
        """The status line's text: batches submitted (not yet started), in progress, completed
        in this run; samples, errors and dollars so far."""
        running = sum(e.status in ("in_progress", "finalizing") for e in self.state.entries)
        waiting = len(self.state.entries) - running
        cost = f"${self.stats.cost:.4f}" if self.stats.cost_known else "$?"
        return (
            f"batches: {waiting} submitted, {running} in progress, {self.collected} completed "
            f"| {self.stats.samples} samples {self.stats.errors} err {cost}"
        )


def _spans(pid: str, todo: list[int], per: int) -> list[str]:
    """Custom ids for the sample indices ``todo`` of one problem, up to ``per`` consecutive
    samples per line (one request with ``n``)."""
    out: list[str] = []
    i = 0
    while i < len(todo):
        j = i
        while j + 1 < len(todo) and todo[j + 1] == todo[j] + 1 and j + 1 - i < per:
            j += 1
        first, last = todo[i], todo[j]
        out.append(span_id(pid, first, last))
        i = j + 1
    return out
