"""A cascade's source: synchronous rounds over several models, every round decided at one price.

Round 1: each question starts on the model its options choose (before any sample the rule may
skip the cheap models).  After each round every question still drawing takes its best option at
its price, or stops: one more sample of its current model, or the first sample of a later one
(escalation).  The answer is the majority vote of the last model's samples; the dollars of every
model drawn count.

Round 1 runs each question at its calibrated price (one of the two the training mixed to meet
the budget, chosen by a seeded hash of the question): before any sample it is the best estimate.
Every later round is paced (:mod:`ttcalloc.core.cascade_pacing`): of a grid around the
calibrated price, two neighbouring prices split among the drawing questions so that the dollars
spent so far plus those each question's best option aims to spend are nearest ``budget x
questions``; so the realized mean dollars per question meet the budget on the questions at hand
(measured against the calibrated prices in ``docs/cascades.md``).  Without ``pace`` (``run
--no-pace``) every round keeps the calibrated prices: the rule ``evaluate`` scores, whose
realized dollars vary with the questions as ``evaluate`` reports.  ``--hard-budget`` caps the
dollars in both cases.

Decisions depend on the samples only (their answers and dollars), not on the order they arrived
in, so a rerun that replays the samples the folder holds decides exactly as the first run.  With
a hard budget in dollars, round 1 and every later round admit questions in rank order while each
one's next sample fits, at its model's worst case, in what is left of ``budget x questions``.
A sample that costs more than its model's worst case (a server counting more prompt tokens than
litellm's tokenizer) raises that model's worst case to its cost (:meth:`CascadeDriver.hold`).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ttcalloc.backends import Request
from ttcalloc.common.console import log
from ttcalloc.common.wording import dollars, samples_text
from ttcalloc.core.cascade_pacing import aims, price_grid, round_prices, slack_grid
from ttcalloc.core.pacing import rank
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.learn.cascade_online import OptionsAt, options_at, question_price
from ttcalloc.sampler.result import Stats
from ttcalloc.stages.run.driver import RoundDriver
from ttcalloc.stages.run.items import Got, Item, to_got


class CascadeDriver(RoundDriver):
    """Draw in synchronous rounds across the policy's models (see the module docstring)."""

    def __init__(
        self,
        policy: CascadePolicy,
        worst: dict[str, float] | None = None,
        hard_total: float | None = None,
        pace: bool = True,
        pace_first: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.pace_first = pace and pace_first  # round 1 paced too (serve: a window's budget)
        # serve: round 1 paced to this share of the budget (a round over it cannot be undone,
        # one under it leaves the next rounds, paced on what was spent, the rest)
        self.first_share = 1.0
        # serve: each model's realized dollars per training dollar of its samples (None: 1)
        self.scale: np.ndarray | None = None
        self.policy = policy
        self.models = list(policy.models)
        self.worst = worst or {}
        self.hard_total = hard_total  # dollars for all questions; None: a soft budget
        self.round = 0
        self.active: list[Item] = []
        self.pending: dict[str, int] = {}  # question -> the model (level) of its pending sample
        self.path: dict[str, list[tuple[int, int]]] = {it.pid: [] for it in self.items}
        self.tried: dict[tuple[str, int], set[int]] = {}  # failed sample indices per model
        self.qx = {it.pid: policy.question_matrix([it.problem["question"]]) for it in self.items}
        self.keys = {it.pid: _key(it.problem["question"]) for it in self.items}
        self.spent = 0.0
        self.most: dict[str, float] = {}  # the most a sample of each model cost, if more
        self.prices: list[dict[str, Any]] = []
        cal = policy.calibration
        self.grid = None  # the prices a round may take (None: each question at its own)
        if pace and not cal.slack and 0 < cal.lam_lo < np.inf:
            self.grid = price_grid(cal.lam_lo)
        elif pace and cal.lam_lo == 0:  # slack: price 0 unless the run's budget is lower
            self.grid = slack_grid(np.asarray(policy.unit_cost), max(policy.ladder.caps))
            # below what it bought in training, round 1 at price 0 could spend it all at once
            self.pace_first = self.pace_first or self.budget < cal.cost

    # --- Source ---------------------------------------------------------------------------

    def received(self, request: Request, rows: Sequence[dict[str, Any]]) -> int:
        item = self.by_pid[request.problem_id]
        item.inflight -= 1
        item.inflight_n -= request.n
        level = self.models.index(str(request.model))
        for row in rows:
            idx = int(row["sample_idx"])
            if row.get("error") is None:
                got = to_got(row, item.problem["grader"], self.unit)
                item.held.setdefault(self.models[level], {})[idx] = got
                self.drawn += 1
                if self.pending.get(item.pid) == level:
                    self.use(item, level, idx)
            else:
                self.tried.setdefault((item.pid, level), set()).add(idx)
        if item.pid in self.pending and not self.closed and not self.draw(item, level):
            item.cut = True
            item.decisions.append({"after": self.drawn_of(item), "gave_up_after_failures": True})
            self.pending.pop(item.pid, None)
            if item in self.active:
                self.active.remove(item)
            self.finish(item)
        self.changed.set()
        return self.settled()

    def status(self, stats: Stats) -> str:
        spend = f"${stats.cost:.4f}" if stats.cost_known else "$?"
        return (
            f"round {self.round}: {self.done}/{self.total} answered, {samples_text(self.drawn)}, "
            f"spent {dollars(self.spent / max(self.total, 1))}/${self.budget:g} per "
            f"question, {spend}"
        )

    # --- samples --------------------------------------------------------------------------

    def drawn_of(self, item: Item) -> int:
        return len(self.path[item.pid])

    def got(self, item: Item, level: int, idx: int) -> Got:
        return item.held[self.models[level]][idx]

    def use(self, item: Item, level: int, idx: int) -> None:
        """Sample ``idx`` of model ``level`` is ``item``'s sample of this round."""
        self.path[item.pid].append((level, idx))
        cost = self.got(item, level, idx).cost
        self.spent += cost
        self.model_overran(level, cost)
        self.pending.pop(item.pid, None)

    def draw(self, item: Item, level: int) -> bool:
        """Queue a request for ``item``'s next sample of model ``level``; False once as many
        of its requests to that model have failed in this run as the model's cap."""
        failed = self.tried.get((item.pid, level), set())
        if len(failed) >= self.policy.ladder.caps[level]:
            return False
        have = set(item.held.get(self.models[level], {})) | failed
        nxt = next(i for i in range(len(have) + 1) if i not in have)
        item.model = self.models[level]
        self.enqueue(item, [nxt])
        return True

    def take(self, item: Item, level: int) -> None:
        """Begin ``item``'s sample of this round from model ``level``: one the folder holds
        (an earlier run drew it), else a request."""
        used = {idx for lv, idx in self.path[item.pid] if lv == level}
        held = sorted(i for i in item.held.get(self.models[level], {}) if i not in used)
        if held:
            self.use(item, level, held[0])
            return
        self.pending[item.pid] = level
        if not self.draw(item, level):
            self.pending.pop(item.pid, None)
            self.active.remove(item)
            item.cut = True
            self.finish(item)

    # --- rounds ---------------------------------------------------------------------------

    def options_of(self, item: Item) -> OptionsAt:
        got = [(lv, self.got(item, lv, idx)) for lv, idx in self.path[item.pid]]
        drawn = [(lv, g.label, g.cost, g.kind) for lv, g in got]
        o = options_at(self.policy, item.problem["question"], drawn, self.qx[item.pid])
        if self.scale is None or not len(o.targets):
            return o
        # serve: an option's dollars at the realized cost of the model it goes to
        s = self.scale[o.targets]
        return replace(o, dollars=o.dollars * s, per_sample=o.per_sample * s)

    def advance(self) -> bool:
        """Decide the round that is in and begin the next; False when no question is left."""
        if self.round > 0 and not self.active:
            return False
        if self.round == 0:
            for it in self.items:
                it.started = True
            self.active = list(self.items)
            self.round = 1
            opts = [self.options_of(it) for it in self.items]
            first = self.paced(self.items, opts, self.first_share) if self.pace_first else None
            starts = {
                it.pid: self.start_level(it, o, first)
                for it, o in zip(self.items, opts, strict=True)
            }
            self.admit_round([(it, starts[it.pid]) for it in self.items], first=True)
        else:
            self.decide_round()
        while self.active and not self.pending:
            self.decide_round()
        return bool(self.pending) or bool(self.active)

    def paced(
        self, items: list[Item], opts: list[OptionsAt], share: float = 1.0
    ) -> dict[str, float] | None:
        """This round's price of each of ``items`` (the questions still drawing; ``opts``: their
        options), paced to ``share`` of the budget; None without pacing (each question at its
        calibrated price)."""
        if self.grid is None:
            return None
        aimed = np.zeros((self.grid.size, len(items)))
        ratio = self.policy.pace_ratio
        used: set[float] = set()
        for i, (it, o) in enumerate(zip(items, opts, strict=True)):
            t = self.drawn_of(it)  # what such aims turned into in training, per dollar
            scale = ratio[t] if t < len(ratio) else 1.0
            used.add(scale)
            aimed[:, i] = aims(o.gains, o.dollars, self.grid) * scale
        keys = np.array([self.keys[it.pid] for it in items])
        target = self.budget * self.total * share
        rp = round_prices(aimed, self.grid, keys, self.spent, target)
        self.prices.append(
            {"round": self.round, "price": rp.hi, "lower_price": rp.lo, "at_lower": rp.m,
             "projected": rp.projected, "pace_ratio": sorted(used)}
        )  # fmt: skip
        return {it.pid: float(p) for it, p in zip(items, rp.price, strict=True)}

    def price_of(self, item: Item, paced: dict[str, float] | None) -> float:
        """The price ``item`` decides at this round."""
        if paced is None:
            return question_price(self.policy, item.problem["question"])
        return paced[item.pid]

    def start_level(
        self, item: Item, options: OptionsAt, paced: dict[str, float] | None = None
    ) -> int:
        """Round 1 (``options``: the question's before any sample), at the calibrated price
        (before any sample it is the best estimate of ``run``'s questions), or at its ``paced``
        price (``pace_first``: a window of ``serve`` meets its own budget, which may not be the
        one the policy was trained at)."""
        price = self.price_of(item, paced)
        decision = options.choose(price)
        item.decisions.append({"after": 0, "start": self.models[decision.level], "price": price})
        return decision.level

    def admit_round(self, moves: list[tuple[Item, int]], first: bool = False) -> None:
        """Begin each question's sample of this round from its chosen model; under a hard
        budget, in the order given, while its worst case fits (else the question stops, cut;
        in round 1 it falls back to the cheapest model first)."""
        room = math.inf if self.hard_total is None else self.hard_total - self.spent
        cheapest = int(np.argmin(self.policy.unit_cost))
        owed = 0.0
        if first and self.hard_total is not None:  # every question is owed one cheap sample
            owed = len(moves) * self.worst_of(cheapest)
        for it, level in moves:
            if first and self.hard_total is not None:
                owed -= self.worst_of(cheapest)
                if self.worst_of(level) > room - owed:
                    it.decisions.append({"cut_by_hard_budget": True, "instead_of": level})
                    it.cut = True
                    level = cheapest
            w = self.worst_of(level)
            if w > room:
                it.cut = True
                it.decisions.append({"after": self.drawn_of(it), "cut_by_hard_budget": True})
                self.active.remove(it)
                self.finish(it)
                continue
            room -= w
            self.take(it, level)

    def worst_of(self, level: int) -> float:
        """A sample's worst case of model ``level``: the estimate, or the most one cost."""
        model = self.models[level]
        return max(self.worst.get(model, 0.0), self.most.get(model, 0.0))

    def model_overran(self, level: int, cost: float) -> None:
        """A sample of model ``level`` cost ``cost``: more than its worst case, that model's
        samples are reserved at it from now on, this round's pending ones too; warned once."""
        worst = self.worst_of(level)
        if self.hard_total is None or cost <= worst + 1e-9:
            return
        self.most[self.models[level]] = cost
        self.warn_overrun(cost, worst, "draws")

    def hold(self) -> bool:
        """After a sample cost more than its worst case: while this round's pending samples, at
        the most each model's has cost, no longer fit in what is left, the queued ones wait for
        those in flight; then, on the realized spend alone, round 1's queued dearer models give
        way to the cheapest (every question owed one sample), and the last queued are cut."""
        if not self.over_worst:
            return False
        while self.ready and not self.round_fits():
            if self.in_progress():
                return True
            if not self.downgrade():
                self.cut_last()
        return False

    def round_fits(self) -> bool:
        assert self.hard_total is not None
        pending = sum(self.worst_of(level) for level in self.pending.values())
        return self.spent + pending <= self.hard_total + 1e-12

    def downgrade(self) -> bool:
        """Round 1: the queued samples of dearer models become the cheapest's (False: none)."""
        if self.round != 1:
            return False
        cheapest = int(np.argmin(self.policy.unit_cost))
        floor = self.worst_of(cheapest)
        dear = {
            r.problem_id for r in self.ready if self.worst_of(self.pending[r.problem_id]) > floor
        }
        if not dear:
            return False
        queue, self.ready = list(self.ready), collections.deque()
        for request in queue:
            if request.problem_id not in dear:
                self.ready.append(request)
                continue
            item = self.by_pid[request.problem_id]
            item.queued -= 1
            item.cut = True
            item.decisions.append(
                {"cut_by_hard_budget": True, "instead_of": self.pending[item.pid]}
            )
            self.pending[item.pid] = cheapest
            if not self.draw(item, cheapest):
                self.drop(item)
        return True

    def cut_last(self) -> None:
        """The last queued sample is not drawn: its question stops with what it has."""
        item = self.by_pid[self.ready.pop().problem_id]
        item.queued -= 1
        item.decisions.append({"after": self.drawn_of(item), "cut_by_hard_budget": True})
        self.drop(item)

    def drop(self, item: Item) -> None:
        item.cut = True
        self.pending.pop(item.pid, None)
        if item in self.active:
            self.active.remove(item)
        self.finish(item)

    def decide_round(self) -> None:
        """Every active question takes its best option at its calibrated price, or stops; the
        continuing ones begin their next sample in rank order (highest critical price first,
        which matters only when a hard budget cuts)."""
        r, active = self.round, list(self.active)
        opts = [self.options_of(it) for it in active]
        paced = self.paced(active, opts)
        crit = np.array([o.critical() for o in opts])
        keys = np.array([self.keys[it.pid] for it in active])
        self.active = []
        moves: dict[str, tuple[Item, int]] = {}
        for it, o, c in zip(active, opts, crit, strict=True):
            price = self.price_of(it, paced)
            d = o.choose(price)
            entry: dict[str, Any] = {
                "after": self.drawn_of(it),
                "critical": _num(float(c)),
                "price": _num(price),
                "stop": d.stop,
            }
            if not d.stop:
                entry["next"] = self.models[d.level]
                if d.level != o.level:
                    entry["escalate"] = True
                self.active.append(it)
                moves[it.pid] = (it, d.level)
            it.decisions.append(entry)
            if d.stop:
                self.finish(it)
        if paced is None:
            self.prices.append({"round": r})
        self.prices[-1].update(questions=len(active), **{"continue": len(moves)})
        log(  # the price decided after this round's samples: the next round's (paced)
            f"after round {r}: {len(moves)} of {len(active)} questions continue "
            f"({sum(1 for it in active if it.decisions[-1].get('escalate'))} escalate)"
            + ("" if paced is None else f" at price {self.prices[-1]['price']:.4g}")
            + f"; ${self.spent / max(self.total, 1):.4g} per question so far, "
            f"budget ${self.budget:g}"
        )
        self.round += 1
        order = [active[i].pid for i in rank(crit, keys) if active[i].pid in moves]
        order += [pid for pid in moves if pid not in set(order)]  # critical 0 cannot continue
        self.admit_round([moves[pid] for pid in order])

    # --- answers --------------------------------------------------------------------------

    def place(self, item: Item) -> None:
        """The answer votes with the last model's samples; the others' dollars count too."""
        path = self.path[item.pid]
        if not path:
            item.action = "cascade:none"
            return
        last = path[-1][0]
        model = self.models[last]
        item.model = model
        item.got = dict(item.held.get(model, {}))
        item.used = [idx for lv, idx in path if lv == last]
        item.earlier = [self.got(item, lv, idx) for lv, idx in path if lv != last]
        counts: dict[int, int] = {}
        for lv, _ in path:
            counts[lv] = counts.get(lv, 0) + 1
        item.action = ">".join(f"{self.models[lv]}x{n}" for lv, n in counts.items())


def _key(question: str) -> float:
    from ttcalloc.common.hashing import seeded_unit

    return seeded_unit("cascade-rank", question)


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
