"""What ``run`` asks the sampler for: a static policy's k per question, or an adaptive policy's
decisions round by round, with live budget tracking and the hard budget.

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
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ttcalloc.backends import Request
from ttcalloc.common.console import log, warn
from ttcalloc.common.hashing import seeded_unit
from ttcalloc.core.pacing import pace, rank
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
        self.reported = 0  # answered questions the sampler's progress count has seen
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
        if not item.finished and not self.closed:
            self.after(item, ok < request.n)
        self.changed.set()
        return self.settled()

    def settled(self) -> int:
        """Questions answered since the last call: the progress count's step (an adaptive
        run answers questions when a round is decided, not only when a sample arrives)."""
        step, self.reported = self.done - self.reported, self.done
        return step

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
        held = [i for i in range(k) if i in item.got]
        if self.ledger is not None and held and draw:
            # samples an earlier run drew count against the hard budget as drawn ones do
            n = self.ledger.admit(item.pid, len(held))
            self.ledger.settle(n, sum(item.got[i].cost for i in held[:n]))
            if n < len(held):
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


class AdaptiveDriver(Driver):
    """Draw in synchronous rounds; after each round, every question still drawing stops or
    continues, all at one price.

    Round ``r``: each active question gets its ``r``-th sample (one the folder holds, else one
    drawn; a failed request is retried with another sample index, until ``cap`` requests of the
    question have failed in this run: then it keeps what it has).  Once the round is in, the
    policy gives each question its critical price (:meth:`AdaptivePolicy.criticals`), and
    :func:`ttcalloc.core.pacing.pace` picks the round's price so that the projected mean cost per
    question meets the budget: what all questions have spent so far, plus the expected samples of
    those that continue (the share that continues this round taken as the chance of continuing
    at each later round).  The
    decisions depend on the samples only, not on the order they arrived in, so a rerun that
    replays the samples the folder holds, round by round, decides exactly as the first run.

    With a hard budget, the number that continue is also capped so that the next round's
    samples, each at its worst case, fit in what is left of ``budget x questions`` (the first
    round, one sample each, is checked before any request).  The budget then bounds the cost
    of the samples the answers use.
    """

    def __init__(self, policy: AdaptivePolicy, **kw: Any) -> None:
        super().__init__(**kw)
        self.policy = policy
        self.cap = policy.grid.cap
        self.round = 0
        self.active: list[Item] = []
        self.pending: set[str] = set()  # active questions whose sample of this round is not in
        self.keys = {it.pid: seeded_unit("stop-mix", it.problem["question"]) for it in self.items}
        self.spent = 0.0  # what the samples the answers use cost
        self.prices: list[dict[str, Any]] = []  # per round: price, questions, continuing, cut
        self.worst = self.ledger.worst if self.ledger is not None else math.inf
        self.over_worst = False

    # --- Source ---------------------------------------------------------------------------

    async def next(self) -> Request | None:
        while not self.closed:
            if self.ready:
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

    def received(self, request: Request, rows: list[dict[str, Any]]) -> int:
        item = self.by_pid[request.problem_id]
        item.inflight -= 1
        item.inflight_n -= request.n
        for row in rows:
            idx = int(row["sample_idx"])
            if row.get("error") is None:
                got = to_got(row, item.problem["grader"], self.unit)
                item.got[idx] = got
                self.drawn += 1
                if item.pid in self.pending:  # (after a stop too: it was paid for)
                    self.use(item, idx)
            else:
                item.failed.add(idx)
        # its sample of the round failed: another index, unless its tries ran out
        if item.pid in self.pending and not self.closed and not self.draw_next(item):
            item.cut = True
            item.decisions.append({"after": len(item.used), "gave_up_after_failures": True})
            self.pending.discard(item.pid)
            self.active.remove(item)
            self.finish(item)
        self.changed.set()
        return self.settled()

    def status(self, stats: Stats) -> str:
        spend = f"${stats.cost:.4f}" if stats.cost_known else "$?"
        text = (
            f"round {self.round}: {self.done}/{self.total} answered, {self.drawn} samples, "
            f"spent {self.spent / max(self.total, 1):.3g}/{self.budget:g} {self.unit} per "
            f"question, {spend}"
        )
        if self.ledger is not None:
            text += f", {self.spent:.4g}/{self.ledger.total:.4g} of the hard budget"
        return text

    # --- rounds -----------------------------------------------------------------------------

    def use(self, item: Item, idx: int) -> None:
        """``idx`` is ``item``'s sample of this round."""
        item.used.append(idx)
        cost = item.got[idx].cost
        self.spent += cost
        if self.ledger is not None:
            self.ledger.spent = self.spent
            if cost > self.worst + 1e-9 and not self.over_worst:
                self.over_worst = True
                warn(
                    f"a sample cost {cost:g} {self.unit}, more than the {self.worst:g} reserved "
                    "for it (the server counts more prompt tokens than litellm's tokenizer?); "
                    "later rounds reserve the most a sample has cost"
                )
        self.pending.discard(item.pid)

    def draw_next(self, item: Item) -> bool:
        """Queue a request for ``item``'s sample of this round; False once ``cap`` of its
        requests have failed in this run."""
        if len(item.failed) >= self.cap:
            return False
        tried = set(item.got) | item.failed
        nxt = next(i for i in range(len(tried) + 1) if i not in tried)
        self.enqueue(item, [nxt])
        return True

    def advance(self) -> bool:
        """Decide the round that is in and begin the next; False when no question is left."""
        if self.round > 0 and not self.active:  # every question is answered
            return False
        if self.round == 0:
            for it in self.items:
                it.started = True
            self.active = list(self.items)
        else:
            self.decide_round()
        while self.active:
            self.round += 1
            for it in list(self.active):
                held = sorted(i for i in it.got if i not in it.used)
                if held:  # the folder holds this round's sample (an earlier run drew it)
                    self.use(it, held[0])
                    continue
                self.pending.add(it.pid)
                if not self.draw_next(it):
                    self.pending.discard(it.pid)
                    self.active.remove(it)
                    it.cut = True
                    self.finish(it)
            if self.pending:
                return True
            self.decide_round()  # every sample of the round was held: decide at once
        return False

    def decide_round(self) -> None:
        r, active = self.round, self.active
        crit = self.criticals(active)
        keys = np.array([self.keys[it.pid] for it in active])
        steps = np.array([it.cost() / max(len(it.used), 1) for it in active])
        horizon = self.cap - r
        most = None
        if self.ledger is not None:  # room for the next round's samples at their worst case
            worst = max([self.worst, *(g.cost for it in self.items for g in it.got.values())])
            most = int(np.floor((self.ledger.total - self.spent + 1e-9) / worst))
        p = pace(
            crit,
            keys,
            steps,
            self.spent,
            self.budget * self.total,
            horizon,
            nearest=self.ledger is None,
            most=most,
        )
        self.prices.append(
            {
                "round": r,
                "price": p.price,
                "questions": len(active),
                "continue": p.m,
                "cut": p.wanted - p.m,
            }
        )
        if horizon > 0:
            cut_text = f", {p.wanted - p.m} more cut by the hard budget" if p.wanted > p.m else ""
            log(
                f"round {r}: {p.m} of {len(active)} questions continue at price {p.price:.4g} "
                f"(projected {p.projected / max(self.total, 1):.4g} {self.unit} per question, "
                f"budget {self.budget:g}){cut_text}"
            )
        # ranked between m and wanted: the projection let it continue, the hard budget did not
        cut = set(rank(crit, keys)[p.m : p.wanted].tolist())
        self.active = []
        for i, (it, c, go) in enumerate(zip(active, crit, p.go, strict=True)):
            entry: dict[str, Any] = {
                "after": r,
                "critical": _num(float(c)),
                "price": _num(p.price),
                "stop": not go,
            }
            if i in cut:
                entry["cut_by_hard_budget"] = True
                it.cut = True
            it.decisions.append(entry)
            if go:
                self.active.append(it)
            else:
                self.finish(it)

    def criticals(self, items: list[Item]) -> np.ndarray:
        """Each question's critical price after the samples it uses (one model call)."""
        used = [[it.got[i] for i in it.used] for it in items]
        return self.policy.criticals(
            [it.problem["question"] for it in items],
            [[g.label for g in u] for u in used],
            [[g.cost for g in u] for u in used],
            [
                {v: [g.values.get(v, math.nan) for g in u] for v in self.policy.sample_values}
                for u in used
            ],
            [it.meta for it in items],
        )

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

    def after(self, item: Item, failed: bool) -> None:  # rounds decide, in decide_round
        raise NotImplementedError

    def place(self, item: Item) -> None:
        item.action = f"stop@{len(item.used)}"


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
