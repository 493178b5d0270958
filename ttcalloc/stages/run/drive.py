"""What ``run`` asks the sampler for: a static policy's k per question, or an adaptive policy's
decision after every sample, with live budget tracking and the hard budget's ledger.

Both are :class:`ttcalloc.sampler.loop.Source` s.  A question is *started* when a worker needs
work (in input order); its samples already in the folder are used first (a rerun draws nothing
twice), then it asks for what is missing.  A question is *finished* when its policy is done with
it, when the hard budget cuts it (it keeps what it has; every question is owed at least the
cheapest action's samples, so none is left without one), or when the run stops.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ttcalloc.backends import Request
from ttcalloc.core.vote import Ledger
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.policy import Policy, calibrate, decide
from ttcalloc.sampler.options import SampleOptions
from ttcalloc.sampler.plan import request_for
from ttcalloc.sampler.result import Stats
from ttcalloc.text import grading


@dataclass
class Got:
    """One sample received: its raw answer, vote label, cost in the policy's unit, values."""

    pred: str | None
    label: str | None
    cost: float
    values: dict[str, float]


@dataclass
class Item:
    """One question and what has been drawn for it."""

    problem: dict[str, Any]  # problem_id, question, answer, grader (+ metadata)
    meta: dict[str, Any]
    got: dict[int, Got] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)  # failed in this run
    inflight: int = 0
    inflight_n: int = 0  # samples in flight
    queued: int = 0
    started: bool = False
    finished: bool = False
    cut: bool = False  # the hard budget or a stop kept it from what its policy wanted
    action: str = ""
    used: list[int] = field(default_factory=list)  # sample indices its answer uses
    decisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pid(self) -> str:
        return str(self.problem["problem_id"])

    def cost(self) -> float:
        return sum(self.got[i].cost for i in self.used if i in self.got)


def sample_cost(row: Mapping[str, Any], unit: str) -> float:
    """A received sample's cost in ``unit`` (as ``estimate`` counts it)."""
    if unit == "samples":
        return 1.0
    completion = float(row.get("completion_tokens") or 0)
    if unit == "completion-tokens":
        return completion
    if unit == "usd":
        return float(row.get("cost_usd") or 0.0)
    return completion + float(row.get("prompt_tokens") or 0)


def to_got(row: Mapping[str, Any], grader: str, unit: str) -> Got:
    pred = row.get("pred_answer")
    chars = row.get("completion_chars")
    if chars is None and row.get("response") is not None:
        chars = len(row["response"])
    values = {
        k: float(v)
        for k, v in {
            "tokens": row.get("completion_tokens"),
            "chars": chars,
            "mean_logprob": row.get("mean_logprob"),
        }.items()
        if v is not None
    }
    label = grading.normalize(pred, grader) if pred is not None else None  # type: ignore[arg-type]
    return Got(pred, label, sample_cost(row, unit), values)


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
    ) -> None:
        self.items = items
        self.by_pid = {it.pid: it for it in items}
        self.options, self.template, self.per_request = options, template, per_request
        self.unit, self.budget, self.ledger = unit, budget, ledger
        self.unstarted = collections.deque(items)
        self.ready: collections.deque[Request] = collections.deque()
        self.changed = asyncio.Event()
        self.closed = False
        self.total = len(items)
        self.done = 0
        self.done_cost = 0.0
        self.drawn = 0

    # --- Source ---------------------------------------------------------------------------

    async def next(self) -> Request | None:
        while not self.closed:
            if self.ready:
                request = self.admit(self.ready.popleft())
                if request is not None:
                    return request
                continue
            if self.unstarted:
                self.start(self.unstarted.popleft())
                continue
            if any(it.inflight for it in self.items):
                self.changed.clear()
                await self.changed.wait()
                continue
            return None
        return None

    def received(self, request: Request, rows: list[dict[str, Any]]) -> int:
        item = self.by_pid[request.problem_id]
        item.inflight -= 1
        item.inflight_n -= request.n
        charged, ok = 0.0, 0
        for row in rows:
            idx = int(row["sample_idx"])
            if row.get("error") is None:
                got = to_got(row, item.problem["grader"], self.unit)
                item.got[idx] = got
                charged += got.cost
                ok += 1
                self.drawn += 1
            else:
                item.failed.add(idx)
        if self.ledger is not None:
            self.ledger.settle(request.n, charged)
            if ok < request.n:
                self.ledger.owe(item.pid, self.ledger.floor - len(item.got) - item.inflight_n)
        before = self.done
        if not item.finished and not self.closed:
            self.after(item, ok < request.n)
        self.changed.set()
        return self.done - before

    def status(self, stats: Stats) -> str:
        per_q = self.done_cost / self.done if self.done else 0.0
        spend = f"${stats.cost:.4f}" if stats.cost_known else "$?"
        text = (
            f"{self.done}/{self.total} answered, {self.drawn} samples, "
            f"cost {per_q:.3g}/{self.budget:g} {self.unit} per question, {spend}"
        )
        if self.ledger is not None:
            text += f", {self.ledger.spent:.4g}/{self.ledger.total:.4g} of the hard budget"
        return text

    def close(self) -> None:
        self.closed = True
        self.changed.set()

    # --- shared -----------------------------------------------------------------------------

    def admit(self, request: Request) -> Request | None:
        item = self.by_pid[request.problem_id]
        item.queued -= 1
        if item.finished:
            return None
        n = request.n
        if self.ledger is not None:
            n = self.ledger.admit(item.pid, request.n)
            if n < request.n:
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
        for first, n in _chunks(indices, self.per_request):
            self.ready.append(request_for(self.options, self.template, item.problem, first, n))
            item.queued += 1

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

    def start(self, item: Item, draw: bool = True) -> None:
        raise NotImplementedError

    def after(self, item: Item, failed: bool) -> None:
        raise NotImplementedError

    def place(self, item: Item) -> None:
        """Settle ``item.used`` (the samples its answer uses) as it finishes."""
        raise NotImplementedError


class StaticDriver(Driver):
    """One action (k samples) per question, chosen when the question starts.

    Without a hard budget mu is calibrated once on the whole batch (as ``allocate --budget``);
    with one, it is recalibrated every few questions on those not yet started, against what is
    left of the budget after the realized spend and the questions in progress.
    """

    def __init__(
        self, policy: Policy, scores: np.ndarray, mu: float, ks: list[int], **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.policy, self.scores, self.mu, self.ks = policy, scores, mu, ks
        self.index = {it.pid: i for i, it in enumerate(self.items)}
        self.since = 0
        self.every = max(1, len(self.items) // 20)

    def start(self, item: Item, draw: bool = True) -> None:
        item.started = True
        row = self.index[item.pid]
        if self.ledger is not None and draw:
            self.recalibrate(row)
        a = int(decide(self.scores[row : row + 1], self.policy.costs, self.mu)[0])
        item.action = self.policy.actions[a]
        k = self.ks[a]
        item.decisions.append({"mu": self.mu, "action": item.action, "k": k})
        item.used = [i for i in range(k)]
        todo = [i for i in range(k) if i not in item.got]
        if not todo or not draw:
            self.finish(item)
        else:
            self.enqueue(item, todo)

    def recalibrate(self, row: int) -> None:
        self.since += 1
        if self.since < self.every and self.since > 1:
            return
        self.since = 1
        assert self.ledger is not None
        left = [row, *(self.index[it.pid] for it in self.unstarted)]
        progress = 0.0  # expected cost still to come of questions in progress
        for it in self.items:
            if it.action and not it.finished:
                k = self.ks[self.policy.actions.index(it.action)]
                rest = k - len([i for i in it.used if i in it.got])
                progress += self.policy.expected_cost(it.action) * max(0, rest) / max(1, k)
        room = self.ledger.total - self.ledger.spent - progress
        # samples the questions left already hold (an earlier run drew them) are in the spend
        # and in their actions' costs: count them once, so a rerun decides as the first run did
        held = sum(g.cost for i in left for g in self.items[i].got.values())
        per_q = (room + held) / len(left)
        s = self.scores[left]
        costs = self.policy.costs
        self.mu = calibrate(s, costs, np.broadcast_to(costs, s.shape), max(per_q, 0.0))

    def after(self, item: Item, failed: bool) -> None:
        if item.inflight == 0 and item.queued == 0:
            self.finish(item)

    def place(self, item: Item) -> None:
        k = len(item.used)
        item.used = [i for i in range(k) if i in item.got]
        if len(item.used) < k:
            item.cut = True


class AdaptiveDriver(Driver):
    """Draw one sample at a time per question; after each, the policy says stop or continue.

    The price a question runs at is the policy's (two calibrated prices, mixed by a hash of the
    question) times a live factor that keeps the realized mean cost on the budget: after every
    finished question it moves by ``exp(0.5 (cost - budget) / budget)`` (bounded to 1/100..100).
    """

    def __init__(self, policy: AdaptivePolicy, **kw: Any) -> None:
        super().__init__(**kw)
        self.policy = policy
        self.scale = 1.0
        self.cap = policy.grid.cap

    def decision(self, item: Item) -> bool:
        """True to stop after the samples in ``item.used``."""
        used = [item.got[i] for i in item.used]
        d = self.policy.decide(
            item.problem["question"],
            [g.label for g in used],
            [g.cost for g in used],
            {v: [g.values.get(v, math.nan) for g in used] for v in self.policy.sample_values},
            **item.meta,
        )
        price = d.price * self.scale
        stop = d.stop if d.drawn >= self.cap else bool(d.critical <= price)
        item.decisions.append(
            {"after": d.drawn, "critical": _num(d.critical), "price": _num(price), "stop": stop}
        )
        return stop

    def start(self, item: Item, draw: bool = True) -> None:
        item.started = True
        have = sorted(item.got)
        for i in have:  # replay what the folder already holds, in sample order
            item.used.append(i)
            if self.decision(item):
                self.finish(item)
                return
        if draw:
            self.draw_next(item)
        else:
            self.finish(item)

    def draw_next(self, item: Item) -> None:
        tried = set(item.got) | item.failed
        if len(item.used) >= self.cap or len(tried) >= 2 * self.cap:
            self.finish(item)
            return
        nxt = next(i for i in range(len(tried) + 1) if i not in tried)
        self.enqueue(item, [nxt])

    def after(self, item: Item, failed: bool) -> None:
        new = sorted(i for i in item.got if i not in item.used)
        for i in new:
            item.used.append(i)
        if new and self.decision(item):
            self.finish(item)
            return
        if failed:
            item.cut = True
        self.draw_next(item)

    def place(self, item: Item) -> None:
        item.action = f"stop@{len(item.used)}"
        if self.budget > 0:
            step = 0.5 * (item.cost() - self.budget) / self.budget
            self.scale *= math.exp(min(5.0, max(-5.0, step)))  # no overflow on tiny budgets
            self.scale = min(100.0, max(0.01, self.scale))


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _chunks(indices: list[int], per: int) -> list[tuple[int, int]]:
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


def decisions_json(item: Item) -> str:
    return json.dumps(item.decisions, separators=(",", ":"))
