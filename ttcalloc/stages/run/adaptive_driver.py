"""An adaptive policy's source: synchronous rounds, every round decided at one price."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ttcalloc.backends import Request
from ttcalloc.common.console import log
from ttcalloc.common.hashing import seeded_unit
from ttcalloc.common.wording import samples_text
from ttcalloc.core.pacing import pace, rank
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.sampler.result import Stats
from ttcalloc.stages.run.driver import RoundDriver
from ttcalloc.stages.run.items import Item, to_got


class AdaptiveDriver(RoundDriver):
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

    # --- Source ---------------------------------------------------------------------------

    def received(self, request: Request, rows: Sequence[dict[str, Any]]) -> int:
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
            f"round {self.round}: {self.done}/{self.total} answered, {samples_text(self.drawn)}, "
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
            if cost > self.worst + 1e-9:
                self.warn_overrun(cost, self.worst, "rounds")
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
                f"after round {r}: {p.m} of {len(active)} questions continue at price "
                f"{p.price:.4g} "
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

    def place(self, item: Item) -> None:
        item.action = f"stop@{len(item.used)}"


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
