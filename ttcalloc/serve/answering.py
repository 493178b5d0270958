"""Answering one window of requests with ``run``'s own decision code.

The window's questions become ``run``'s items and the policy's source
(:func:`ttcalloc.stages.run.sources.make_driver`: a static policy's actions at one calibrated
multiplier, an adaptive policy's rounds at one price each, a cascade's rounds across its
models) decides what to draw at the window's budget; the samples are sent with the sampler's
retries and limits (:func:`ttcalloc.sampler.send.send`), graded as ``sample`` grades them (a
program variant's samples by their programs' answers), and the answers are ``run``'s majority
votes (:func:`ttcalloc.stages.run.write.rows`).  Nothing is written to disk.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from ttcalloc.artifacts.policy_file import parse_action
from ttcalloc.backends import Backend
from ttcalloc.backends.replay import NothingToReplay
from ttcalloc.common.hashing import seeded_int
from ttcalloc.common.redact import echoed
from ttcalloc.core.vote import majority
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.learn.policy import Policy
from ttcalloc.sampler.limits import RateLimiter
from ttcalloc.sampler.options import SampleOptions
from ttcalloc.sampler.result import Stats
from ttcalloc.sampler.rows import request_rows
from ttcalloc.sampler.send import send
from ttcalloc.sampler.variants import request_answers
from ttcalloc.serve.mixing import mixed_mus
from ttcalloc.serve.replayed import ReplayIndex, repeats_apart
from ttcalloc.serve.scale import CostScale, trained_costs
from ttcalloc.serve.served import ServedPolicy
from ttcalloc.stages.run.adaptive_driver import AdaptiveDriver
from ttcalloc.stages.run.cascade_driver import CascadeDriver
from ttcalloc.stages.run.driver import Driver
from ttcalloc.stages.run.items import Item, sample_cost
from ttcalloc.stages.run.options import RunOptions
from ttcalloc.stages.run.sources import make_driver
from ttcalloc.stages.run.static_driver import StaticDriver
from ttcalloc.stages.run.write import rows

# a cascade's first round in a window is paced to this share of the window's budget: a round
# over the budget cannot be undone, one under it leaves the rest to the next rounds
FIRST_SHARE = 0.9
REQUEST_SOURCE = Path("<request>")  # where a request's question comes from, in error messages


@dataclass(frozen=True)
class Reply:
    """One request's answer: the winning answer's sample (``content``), its extracted answer,
    the votes, and what the request cost."""

    content: str | None
    answer: str | None
    samples: int
    failed: int
    votes: dict[str, int]
    cost: float
    prompt_tokens: int
    completion_tokens: int
    action: str
    complete: bool
    error: str | None = None  # no sample arrived: the last upstream error
    models: dict[str, int] = field(default_factory=dict)  # samples of each model (several)


@dataclass
class Sent:
    """What the window's samples brought: each sample's text and tokens, errors, requests."""

    texts: dict[tuple[str, int], str | None] = field(default_factory=dict)
    tokens: Counter[tuple[str, str]] = field(default_factory=Counter)
    models: Counter[tuple[str, str]] = field(default_factory=Counter)  # (question, model)
    errors: dict[str, str] = field(default_factory=dict)
    # replay: each question's problem id in each replayed model's samples (None: one model)
    recorded: dict[str, dict[str | None, str]] = field(default_factory=dict)


Deliver = Callable[[int, Reply], None]
Spent = Callable[[float], None]  # told the cost of each sample of the window as it arrives


@dataclass
class Early:
    """Where replies go as their questions finish, and which were told."""

    deliver: Deliver | None
    told: set[int]
    spent: Spent | None = None


@dataclass(frozen=True)
class WindowResult:
    """The replies of a window, in request order, and the window's price."""

    replies: list[Reply]
    price: float | None


class Answerer:
    """Answers windows of questions with one served policy on its backend (several models:
    one backend per model behind one, each request to its model)."""

    def __init__(
        self,
        served: ServedPolicy,
        backend: Backend,
        options: SampleOptions,
        upstream: int,
    ) -> None:
        self.served, self.backend, self.options = served, backend, options
        self.upstream = asyncio.Semaphore(upstream)  # requests in flight to the model
        self.limiter = RateLimiter(options.rpm, options.tpm)
        self.stats = Stats()
        self.secrets = echoed()
        self.per_request = max(1, min(options.requests_per_batch, backend.max_n))
        # several models: realized dollars against the training ones (1 for one model)
        self.scale = CostScale(trained_costs(served.policy) if served.plan is not None else {})
        self.arrived = asyncio.Event()  # set whenever a window ends
        # replay:PATH models: questions matched to their recorded problems (None: no replay)
        self.replay = ReplayIndex.of(backend)

    def items(self, questions: list[str]) -> tuple[list[Item], pl.DataFrame]:
        """``run``'s items for ``questions`` (unlabeled, graded by the policy's grader)."""
        n = len(questions)
        ids = request_ids(questions)
        if self.replay is not None:  # a recorded question: its recorded problem id
            ids = self.replay.ids(questions, ids)
        df = pl.DataFrame(
            {
                "problem_id": ids,
                "question": questions,
                "answer": [None] * n,
                "grader": [self.served.grader] * n,
            },
            schema={"problem_id": pl.String, "question": pl.String, "answer": pl.String,
                    "grader": pl.String},
        )  # fmt: skip
        metas = self.served.policy.metas(df, REQUEST_SOURCE)
        items = [
            Item(problem=row, meta=meta)
            for row, meta in zip(df.iter_rows(named=True), metas, strict=True)
        ]
        return items, df

    def driver(self, questions: list[str], budget: float) -> Driver:
        """The policy's source for ``questions`` at ``budget`` (decisions not yet drawn).

        Over several models the window's budget is in realized dollars: a static policy
        decides at ``budget`` over the cost scale (its actions' costs are training dollars), a
        cascade's paced rounds aim at its options' training dollars times the scale."""
        items, df = self.items(questions)
        ratio = self.scale.ratio
        static = not isinstance(self.served.policy, CascadePolicy)
        options = RunOptions(sample=self.options, budget=budget / ratio if static else budget)
        driver = make_driver(
            self.served.policy, items, df, options, self.served.template, self.per_request,
            self.served.unit, None, pace_first=True,
        )  # fmt: skip
        driver.limit = self.served.limit
        if isinstance(driver, CascadeDriver):
            driver.scale = np.array([self.scale.of(m) for m in driver.models])
            driver.first_share = FIRST_SHARE
        if isinstance(driver, StaticDriver) and self.served.plan is not None:
            costs = np.array([c * self.scale.of(action_model(a))
                              for a, c in zip(driver.policy.actions, driver.policy.costs,
                                              strict=True)])  # fmt: skip
            mus = mixed_mus(driver.scores, driver.policy.costs, driver.mu, costs, budget, questions)
            driver.mus = {it.pid: m for it, m in zip(items, mus, strict=True)}
        if isinstance(driver, AdaptiveDriver):
            driver.cap = min(driver.cap, self.served.limit)
        return driver

    def expected(self, driver: Driver) -> float | None:
        """What a static policy's chosen actions are expected to cost (None: adaptive or a
        cascade); several models: each action's cost times its model's cost scale."""
        if not isinstance(driver, StaticDriver):
            return None
        policy: Policy = driver.policy
        chosen = driver.choices()
        costs = np.asarray(policy.costs)[chosen]
        if self.served.plan is None:
            return float(costs.sum())
        models = [action_model(policy.actions[int(i)]) for i in chosen]
        return float(sum(c * self.scale.of(m) for c, m in zip(costs, models, strict=True)))

    async def answer(
        self, driver: Driver, deliver: Deliver | None = None, spent: Spent | None = None
    ) -> WindowResult:
        """Draw what the policy decides for the driver's questions; one reply each, in order.
        ``deliver(i, reply)`` is told each question's reply as soon as the policy is done with
        it (before the rest of the window is); ``spent(cost)`` each sample's cost."""
        sent = Sent()
        if self.replay is not None:
            for it in driver.items:
                sent.recorded[it.pid] = self.replay.recorded(str(it.problem["question"])) or {}
        early = Early(deliver, set(), spent)
        workers = max(1, min(64, len(driver.items) * driver.limit))
        tasks = [asyncio.create_task(self.work(driver, sent, early)) for _ in range(workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            driver.close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        driver.finish_all()
        return WindowResult([self.reply(it, sent) for it in driver.items], _price(driver))

    async def work(self, driver: Driver, sent: Sent, early: Early) -> None:
        while (request := await driver.next()) is not None:
            self.deliver_finished(driver, sent, early)  # a round decided in next() stops some
            # replay: asked by the question's recorded problem id (a repeat's too)
            recorded = sent.recorded.get(request.problem_id, {}).get(request.model)
            asked = request if recorded is None else replace(request, problem_id=recorded)
            async with self.upstream:
                started = time.monotonic()
                try:
                    choices, errors = await send(
                        self.backend, asked, self.options, self.limiter, self.stats
                    )
                except NothingToReplay as exc:  # its recorded samples ran out: its own failure
                    choices, errors = [None] * request.n, [str(exc)] * request.n
            latency = time.monotonic() - started
            self.stats.count(choices, errors)
            # a program variant's samples: their programs run for their answers, as in `run`
            variant, answers = await request_answers(self.options, request, choices, errors)
            gold = {"answer": None, "grader": self.served.grader}
            model = request.model or self.options.model  # several models: the request's own
            got = request_rows(
                gold, model, request, choices, errors, latency, self.secrets, variant, answers
            )
            for row in got:
                pid = row["problem_id"]
                if row["error"] is not None:
                    sent.errors[pid] = str(row["error"])
                    continue
                sent.texts[(pid, int(row["sample_idx"]))] = row["response"]
                sent.tokens[(pid, "prompt")] += int(row["prompt_tokens"] or 0)
                sent.tokens[(pid, "completion")] += int(row["completion_tokens"] or 0)
                sent.models[(pid, model)] += 1
                cost = sample_cost(row, self.served.unit)
                self.scale.add(model, cost)
                if early.spent is not None:
                    early.spent(cost)
            driver.received(request, got)
            self.deliver_finished(driver, sent, early)

    def deliver_finished(self, driver: Driver, sent: Sent, early: Early) -> None:
        """Tell ``early`` the replies of the questions the policy is done with (once each)."""
        if early.deliver is None:
            return
        for i, it in enumerate(driver.items):
            if it.finished and i not in early.told and not it.inflight:
                early.told.add(i)
                early.deliver(i, self.reply(it, sent))

    def reply(self, item: Item, sent: Sent) -> Reply:
        """The reply of a question the policy is done with: ``run``'s answers row, the
        winning answer's sample, the votes and the tokens of every sample received."""
        (row,) = rows([item], None, models=self.served.plan is not None)
        used = [i for i in item.used if i in item.got]
        labels = [item.got[i].label for i in used]
        winner = majority(labels)
        pick = next((i for i in used if item.got[i].label == winner), used[0] if used else None)
        votes = Counter(label for label in labels if label is not None)
        text = sent.texts.get((item.pid, pick)) if pick is not None else None
        answer = row["final_answer"]
        return Reply(  # a sample recorded without its text (imported) answers with its answer
            content=text if text or answer is None else str(answer),
            answer=answer,
            samples=int(row["samples"]),
            failed=int(row["failed"]),
            votes=dict(votes.most_common()),
            cost=float(row["cost"]),
            prompt_tokens=sent.tokens[(item.pid, "prompt")],
            completion_tokens=sent.tokens[(item.pid, "completion")],
            action=str(row["action"]),
            complete=bool(row["complete"]),
            error=None if used else sent.errors.get(item.pid, "no sample was drawn"),
            models=self.samples_of(item, sent),
        )

    def samples_of(self, item: Item, sent: Sent) -> dict[str, int]:
        """The samples of each model ``item`` drew ({}: one model, its reply's samples)."""
        if self.served.plan is None:
            return {}
        return {m: sent.models[(item.pid, m)] for m in self.served.plan.names
                if sent.models[(item.pid, m)]}  # fmt: skip


def request_ids(questions: list[str]) -> list[str]:
    """An id per question, from its text (so a question's sample seeds are the same whenever
    it is asked, as ``run``'s are per question); a repeat within the window gets ``-2``..."""
    return repeats_apart([f"q{seeded_int('serve-request', q):016x}" for q in questions])


def action_model(action: str) -> str | None:
    """The model of a ``MODEL:maj@k`` action (None: ``maj@k``)."""
    parsed = parse_action(action)
    return parsed[0] if parsed is not None else None


def _price(driver: Driver) -> float | None:
    """The window's price: a static policy's multiplier, an adaptive one's last round price."""
    if isinstance(driver, StaticDriver):
        return float(driver.mu)
    prices = getattr(driver, "prices", [])
    price = prices[-1].get("price") if prices else None  # none: the round was not paced
    return None if price is None else float(price)
