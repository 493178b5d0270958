"""A cascade's decisions online, one question at a time: the options open after the samples
drawn so far, with the gain model's predictions and estimated dollars, and the choice at a
price (what ``run`` and ``serve`` decide with; :func:`ttcalloc.core.cascade.simulate` takes the
same path on replays)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ttcalloc.core import cascade as cc
from ttcalloc.core.cascade_rule import flat_dollars
from ttcalloc.learn.cascade import ANSWER, CascadePolicy
from ttcalloc.learn.stopping import GainModel


@dataclass(frozen=True)
class CascadeDecision:
    """What a cascade says for a question given the samples drawn so far."""

    stop: bool
    level: int  # the model to draw from next (when not stopping); the last model drawn otherwise
    value: float  # the best option's predicted gain minus its price (what decided)
    price: float  # the price this question runs at (one of the two calibrated ones)


@dataclass(frozen=True)
class OptionsAt:
    """The options open after the samples drawn so far: each option's model (level), predicted
    gain and estimated extra dollars; ``level`` is the current model (-1 before any sample)."""

    level: int
    targets: NDArray[np.int64]
    gains: NDArray[np.float64]
    dollars: NDArray[np.float64]
    per_sample: NDArray[np.float64]  # dollars of one sample of each option's model

    def critical(self) -> float:
        """The price below which the rule continues: ``max g / dollars`` over ``g > 0`` (0: it
        stops at any price; before any sample, ``inf``: a question is always answered)."""
        if self.level == cc.START:
            return float("inf")
        if not len(self.gains):
            return 0.0
        pos = self.gains > 0
        if not pos.any():
            return 0.0
        with np.errstate(divide="ignore"):
            ratio = np.where(self.dollars[pos] > 0, self.gains[pos] / self.dollars[pos], np.inf)
        return float(ratio.max())

    def choose(self, price: float) -> CascadeDecision:
        """The rule at ``price``: the best option's model, or stop when none is positive."""
        if not len(self.gains):
            return CascadeDecision(True, self.level, 0.0, price)
        with np.errstate(invalid="ignore"):
            value = self.gains - np.where(self.dollars > 0, price * self.dollars, 0.0)
        best = int(np.argmax(value))
        top = float(value[best])
        if self.level == cc.START:
            if not np.isfinite(top):  # an infinite price: the cheapest start
                best, top = int(np.argmin(self.dollars)), 0.0
            return CascadeDecision(False, int(self.targets[best]), top, price)
        if not top > 0:
            return CascadeDecision(True, self.level, top, price)
        return CascadeDecision(False, int(self.targets[best]), top, price)


def question_price(policy: CascadePolicy, question: str) -> float:
    """The calibrated price a question runs at: the lower with probability ``p_lo`` (seeded by
    the question, so a rerun decides alike)."""
    from ttcalloc.common.hashing import seeded_unit

    cal = policy.calibration
    return cal.lam_lo if seeded_unit("cascade-mix", question) < cal.p_lo else cal.lam_hi


def options_at(
    policy: CascadePolicy,
    question: str,
    drawn: Sequence[tuple[int, str | None, float] | tuple[int, str | None, float, str | None]],
    qx: NDArray[np.float64] | None = None,
) -> OptionsAt:
    """The options after ``drawn`` (one ``(model index, answer, dollars[, kind])`` per sample, in
    order; ``kind`` the prompt kind it was drawn with, text or program, None: text;
    answers normalized so equal answers are equal strings, None when a sample gave none), with
    the gain model's predictions (``qx``: the question's features, if already computed)."""
    lad = policy.ladder
    empty = OptionsAt(cc.START, np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0))
    if not drawn:
        level, j = cc.START, 0
        state = np.full(2 + len(lad.state_names), np.nan)
        state[:2] = (cc.START, 0)
    else:
        level = drawn[-1][0]
        mine = [d for d in drawn if d[0] == level]
        j = len(mine)
        if j > lad.caps[level]:
            return replace(empty, level=level)
        state = np.concatenate([[level, j], _state(mine, lad.kinds)])
    opts = np.nonzero(lad.allowed[lad.state_index(level, j)])[0]
    if not len(opts):
        return replace(empty, level=level)
    if qx is None:
        qx = policy.question_matrix([question])
    option = np.array([lad.options[o] for o in opts], dtype=np.float64)
    tl, th = option[:, 0], option[:, 1]
    parts = [np.broadcast_to(state, (len(opts), len(state)))]
    if qx is not None and qx.shape[1]:
        parts.append(np.broadcast_to(qx[0], (len(opts), qx.shape[1])))
    extra_s = np.where(tl == level, th - j, th)
    parts.append(np.stack([tl, th, extra_s, (tl != level).astype(np.float64)], axis=1))
    gains = policy.model.predict_distinct(np.concatenate(parts, axis=1))
    mute = level != cc.START and all(d[1] is None for d in drawn if d[0] == level)
    if mute and isinstance(policy.model, GainModel):  # no answer yet: never stop
        gains = gains + ANSWER
    unit = np.array([policy.unit_cost[int(t)] for t in tl])
    if level == cc.START:
        dollars, per_sample = th * unit, unit
    else:
        per = (
            float(policy.unit_cost[level])
            if flat_dollars(policy.model)
            else float(np.mean([d[2] for d in drawn if d[0] == level]))
        )
        dollars = np.where(tl == level, (th - j) * per, th * unit)
        per_sample = np.where(tl == level, per, unit)
    return OptionsAt(level, tl.astype(np.int64), gains, dollars, per_sample)


def _state(mine: Sequence[tuple[Any, ...]], kinds: bool) -> NDArray[np.float64]:
    """The state's features after one model's samples ``mine`` (drawn tuples, in order): the
    replays' own, on the one order they were drawn in."""
    from ttcalloc.core import replays as rp
    from ttcalloc.core.prompt_kinds import kind_features
    from ttcalloc.core.stopping import STATE_FEATURES, state_features

    labels: dict[str, int] = {}
    ids = [-1 if d[1] is None else labels.setdefault(d[1], len(labels)) for d in mine]
    kind = [1 if len(d) > 3 and d[3] == "program" else 0 for d in mine]
    one = rp.replay([ids], [[d[2] for d in mine]], orders=1, shuffle=False, kinds=[kind])
    state = state_features(one)[0, 0, -1, : len(STATE_FEATURES)]
    if not kinds:
        return state
    return np.concatenate([state, kind_features(one)[0, 0, -1]])


def decide_one(
    policy: CascadePolicy,
    question: str,
    drawn: Sequence[tuple[int, str | None, float] | tuple[int, str | None, float, str | None]],
    price: float | None = None,
) -> CascadeDecision:
    """Stop, draw again, or escalate, given ``drawn`` (see :func:`options_at`), at the
    question's calibrated price or at ``price``."""
    if price is None:
        price = question_price(policy, question)
    return options_at(policy, question, drawn).choose(price)
