"""Cascades over several models on replays: states, options, Solve-step labels, the rule, its price.

A cascade has models in an order (a *ladder*, cheapest first).  It draws samples one at a time;
after each sample (and once before the first) it sees the state and chooses an *option*:

- stop and answer with the majority vote of the current model's samples;
- continue on the current model towards ``h`` samples (it draws one more, then decides again);
- escalate to a later model ``l'`` (skipping those in between) towards ``h`` samples of it
  (it draws one sample of ``l'``, then decides again).

Before the first sample the options are "start on model ``l`` towards ``h``"; so a question may
skip the cheap models altogether.  The answer is the vote of the *last* model drawn: replays
showed a vote pooled across models is no better (see ``docs/cascades.md``), and the last model's
vote makes every option's outcome a function of that model's samples alone, so the Solve step's
labels do not depend on the path.

With predicted gains ``g(s, o)`` (change in the final answer's correctness from the state's
answer to option ``o``'s) and estimated extra dollars ``dc(s, o)``, the rule at price ``lam``
takes ``argmax_o g - lam * dc`` and stops when no option is positive.  :func:`simulate` runs it
on every replay order; :func:`calibrate` finds two neighbouring prices and the mix that meets a
budget in expectation over the replays.

Everything is numpy on :class:`~ttcalloc.core.replays.Replays` arrays, one per model, with the
same problems and orders; cluster ids are shared across models (0 is the correct answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from ttcalloc.core.prompt_kinds import KIND_FEATURES, kind_features
from ttcalloc.core.replays import Replays
from ttcalloc.core.stopping import STATE_FEATURES, state_features

START = -1  # the level of the state before any sample
ROW_FEATURES = (
    "level",
    "j",
    *STATE_FEATURES,
    "target_level",
    "target_h",
    "target_extra",
    "escalate",
)


class CascadeBudgetError(ValueError):
    """The budget is below what the cheapest path costs."""


@dataclass(frozen=True)
class Ladder:
    """The cascade's decision space: ``caps[l]`` most samples of model ``l``, the checkpoints an
    option may aim at (a continuation also aims at the next sample), and ``escalate_after``: the
    samples of the current model drawn before a later model may be chosen (at most its cap; the
    start may choose any model); ``kinds``: a state also says how the answers of the two kinds
    of prompt agree (:data:`ttcalloc.core.prompt_kinds.KIND_FEATURES`, after the vote's)."""

    caps: tuple[int, ...]
    checkpoints: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    escalate_after: int = 1
    kinds: bool = False

    def __post_init__(self) -> None:
        if not self.caps or min(self.caps) < 1:
            raise ValueError("every model of a cascade needs a cap of at least 1")
        if self.escalate_after < 1:
            raise ValueError("a cascade escalates after at least 1 sample")

    @property
    def levels(self) -> int:
        return len(self.caps)

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of a state's features after ``level`` and ``j``."""
        return (*STATE_FEATURES, *(KIND_FEATURES if self.kinds else ()))

    @property
    def row_features(self) -> tuple[str, ...]:
        """The gain model's columns, the question's features left out (:data:`ROW_FEATURES`,
        with the kinds' after the vote's when ``kinds``)."""
        return ("level", "j", *self.state_names, *ROW_FEATURES[-4:])

    @cached_property
    def states(self) -> tuple[tuple[int, int], ...]:
        """``(level, j)``: the start ``(-1, 0)``, then ``j`` samples drawn of model ``level``."""
        out = [(START, 0)]
        for level, cap in enumerate(self.caps):
            out.extend((level, j) for j in range(1, cap + 1))
        return tuple(out)

    @cached_property
    def options(self) -> tuple[tuple[int, int], ...]:
        """``(level, h)``: aim at ``h`` samples of model ``level``."""
        return tuple((level, h) for level, cap in enumerate(self.caps) for h in range(1, cap + 1))

    def state_index(self, level: int, j: int) -> int:
        return 0 if level == START else 1 + sum(self.caps[:level]) + j - 1

    def option_index(self, level: int, h: int) -> int:
        return sum(self.caps[:level]) + h - 1

    def _aims(self, level: int, lowest: int) -> list[int]:
        cap = self.caps[level]
        return sorted(
            {lowest, *(h for h in self.checkpoints if h >= lowest), cap}
            & set(range(lowest, cap + 1))
        )

    @cached_property
    def allowed(self) -> NDArray[np.bool_]:
        """``(S, O)``: which options each state may choose."""
        out = np.zeros((len(self.states), len(self.options)), dtype=bool)
        for s, (level, j) in enumerate(self.states):
            if level != START and j < self.caps[level]:
                for h in self._aims(level, j + 1):
                    out[s, self.option_index(level, h)] = True
            if level != START and j < min(self.escalate_after, self.caps[level]):
                continue  # not yet: the current model's samples first
            for later in range(level + 1, self.levels):
                for h in self._aims(later, 1):
                    out[s, self.option_index(later, h)] = True
        return out

    @cached_property
    def successor(self) -> NDArray[np.int64]:
        """``(S, O)``: the state after taking an option (one sample drawn); -1 where not allowed."""
        out = np.full((len(self.states), len(self.options)), -1, dtype=np.int64)
        for s, (level, j) in enumerate(self.states):
            for o, (target, _) in enumerate(self.options):
                if self.allowed[s, o]:
                    out[s, o] = self.state_index(target, j + 1 if target == level else 1)
        return out


def _per_model(replays: Sequence[Replays]) -> None:
    shapes = {r.ids.shape[:2] for r in replays}
    if len(shapes) != 1:
        raise ValueError("every model's replays need the same problems and orders")


def _credit(replays: Replays, j: NDArray[np.int64]) -> NDArray[np.float64]:
    """``(P, R)`` majority credit after ``j`` (P, R) samples (0 where ``j`` is 0)."""
    idx = np.maximum(j - 1, 0)[..., None]
    got = np.take_along_axis(replays.credit, idx, axis=2)[..., 0]
    return np.where(j > 0, got, 0.0)


def state_rows(
    replays: Sequence[Replays], ladder: Ladder
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """``(P, R, S, 2 + len(ladder.state_names))`` state features and ``(P, R, S)`` reachability (the
    model has that many samples for the problem).  The start state's features are NaN."""
    _per_model(replays)
    p, r = replays[0].ids.shape[:2]
    width = 2 + len(ladder.state_names)
    out = np.full((p, r, len(ladder.states), width), np.nan)
    ok = np.zeros((p, r, len(ladder.states)), dtype=bool)
    out[:, :, 0, :2] = (START, 0)
    ok[:, :, 0] = True
    for level, rep in enumerate(replays):
        feats = state_features(rep)[..., : len(STATE_FEATURES)]
        if ladder.kinds:
            feats = np.concatenate([feats, kind_features(rep)], axis=-1)
        cap = ladder.caps[level]
        t = min(cap, rep.max_samples)
        s0 = ladder.state_index(level, 1)
        out[:, :, s0 : s0 + t, 0] = level
        out[:, :, s0 : s0 + t, 1] = np.arange(1, t + 1)
        out[:, :, s0 : s0 + t, 2:] = feats[:, :, :t]
        ok[:, :, s0 : s0 + t] = np.arange(1, t + 1)[None, None, :] <= rep.n[:, None, None]
    return out, ok


def labels(
    replays: Sequence[Replays], ladder: Ladder
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The Solve step's labels ``(P, R, S, O)``: the realized change in the final answer's
    correctness from each state to each option's target on that order, and which are usable
    (allowed, and both ends within the problem's samples)."""
    _, ok = state_rows(replays, ladder)
    p, r = replays[0].ids.shape[:2]
    now = np.zeros((p, r, len(ladder.states)))
    for s, (level, j) in enumerate(ladder.states):
        if level != START and j <= replays[level].max_samples:
            now[:, :, s] = replays[level].credit[:, :, j - 1]
    then = np.zeros((p, r, len(ladder.options)))
    reach = np.zeros((p, r, len(ladder.options)), dtype=bool)
    for o, (level, h) in enumerate(ladder.options):
        rep = replays[level]
        if h <= rep.max_samples:
            then[:, :, o] = rep.credit[:, :, h - 1]
            reach[:, :, o] = (h <= rep.n)[:, None]
    gain = then[:, :, None, :] - now[:, :, :, None]
    valid = ok[:, :, :, None] & reach[:, :, None, :] & ladder.allowed[None, None]
    return np.where(valid, gain, 0.0), valid


def unanswered(replays: Sequence[Replays], ladder: Ladder) -> NDArray[np.bool_]:
    """``(P, R, S)``: the states whose samples of the current model gave no answer at all (the
    start excluded: it always draws)."""
    _per_model(replays)
    p, r = replays[0].ids.shape[:2]
    out = np.zeros((p, r, len(ladder.states)), dtype=bool)
    for s, (level, j) in enumerate(ladder.states):
        if level != START and j <= replays[level].max_samples:
            out[:, :, s] = replays[level].abstain[:, :, j - 1] >= j
    return out


def extra_dollars(
    replays: Sequence[Replays], ladder: Ladder, unit_cost: Sequence[float], flat: bool = False
) -> NDArray[np.float64]:
    """``(P, R, S, O)`` estimated extra dollars of each option: on the current model, the samples
    still to draw times the mean cost of those drawn (known online; ``flat``: times its
    ``unit_cost``, the same for every question); on a later model, ``h`` times its mean cost
    per sample (``unit_cost``, from training)."""
    p, r = replays[0].ids.shape[:2]
    out = np.zeros((p, r, len(ladder.states), len(ladder.options)))
    for s, (level, j) in enumerate(ladder.states):
        for o, (target, h) in enumerate(ladder.options):
            if not ladder.allowed[s, o]:
                continue
            if target == level and not flat:
                rep = replays[level]
                jj = min(j, rep.max_samples)
                out[:, :, s, o] = (h - j) * rep.cost[:, :, jj - 1] / jj
            elif target == level:
                out[:, :, s, o] = (h - j) * unit_cost[level]
            else:
                out[:, :, s, o] = h * unit_cost[target]
    return out


@dataclass(frozen=True)
class Paths:
    """Where each (problem, order) stopped at one price: level, samples of each model drawn,
    dollars spent and the final answer's credit."""

    level: NDArray[np.int64]  # (P, R) last model drawn
    drawn: NDArray[np.int64]  # (P, R, L) samples drawn of each model
    cost: NDArray[np.float64]  # (P, R)
    credit: NDArray[np.float64]  # (P, R)
    # with ``trace``, per decision (step t: after t samples), over the paths that continue
    # there: the sum of the extra dollars of the options they take (their aims), the sum of
    # the dollars they then actually spent, and how many problems they are paths of
    aimed: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    left: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    going: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))


def simulate(
    replays: Sequence[Replays],
    ladder: Ladder,
    gains: NDArray[np.float64],
    extra: NDArray[np.float64],
    usable: NDArray[np.bool_],
    lam: float,
    trace: bool = False,
) -> Paths:
    """Run the rule at price ``lam`` on every order: from the start state take the best option
    (predicted gain minus ``lam`` times its extra dollars) while one is positive; with
    ``trace``, also each step's aims and the dollars then spent (``Paths.aimed``, ``.left``).

    ``gains`` and ``extra`` are ``(P, R, S, O)``; ``usable`` marks the options the replays can
    follow (the samples exist), so an option past a problem's samples is never taken.  A path
    at the start draws one sample of its best option even when none is positive (a question is
    always answered); at an infinite price, of its cheapest option.
    """
    p, r, n_s, n_o = gains.shape
    n = p * r
    flat_g = gains.reshape(n, n_s, n_o)
    flat_e = extra.reshape(n, n_s, n_o)
    flat_u = usable.reshape(n, n_s, n_o)
    levels = np.array([lv for lv, _ in ladder.states], dtype=np.int64)
    js = np.array([j for _, j in ladder.states], dtype=np.int64)
    state = np.zeros(n, dtype=np.int64)
    flat_drawn = np.zeros((n, ladder.levels), dtype=np.int64)
    cum = [rep.cost.reshape(n, -1) for rep in replays] if trace else []  # prefixes' dollars
    spent = np.zeros(n)
    aimed: list[float] = []  # per step: the continuing paths' aims, and what they had spent
    marks: list[tuple[NDArray[np.int64], float]] = []
    live = np.arange(n)  # the paths still drawing; each step looks at their states only
    for step in range(len(ladder.states)):
        at = state[live]
        g, e, u = flat_g[live, at], flat_e[live, at], flat_u[live, at]  # (live, O)
        with np.errstate(invalid="ignore"):
            v = np.where(u, g - np.where(e > 0, lam * e, 0.0), -np.inf)
        best = v.argmax(axis=1)
        top = v[np.arange(len(live)), best]
        if step == 0:  # a question is always answered: at an infinite price, the cheapest start
            cheapest = np.where(u, e, np.inf).argmin(axis=1)
            best = np.where(np.isfinite(top), best, cheapest)
            go = np.ones(len(live), dtype=bool)
        else:
            go = top > 0
        if not go.any():
            break
        live, best = live[go], best[go]
        if trace:  # an aim as `run` counts it: 0 where no option is positive (a forced start)
            taken = go.nonzero()[0]
            aimed.append(float(np.where(top[taken] > 0, e[taken, best], 0.0).sum()))
            marks.append((live, float(spent[live].sum())))
        state[live] = ladder.successor[state[live], best]
        lv, jj = levels[state[live]], js[state[live]]
        flat_drawn[live, lv] = jj
        for m, c in enumerate(cum):
            i, k = live[lv == m], jj[lv == m] - 1
            spent[i] += c[i, k] - np.where(k > 0, c[i, np.maximum(k - 1, 0)], 0.0)
    left = np.array([spent[i].sum() - before for i, before in marks])
    state = state.reshape(p, r)
    drawn = flat_drawn.reshape(p, r, ladder.levels)
    level, j = levels[state], js[state]
    cost = np.zeros((p, r))
    credit = np.zeros((p, r))
    for m, rep in enumerate(replays):
        d = drawn[:, :, m]
        idx = np.maximum(d - 1, 0)[..., None]
        c = np.take_along_axis(rep.cost, idx, axis=2)[..., 0]
        cost += np.where(d > 0, c, 0.0)
        credit = np.where(level == m, _credit(rep, np.where(level == m, j, 0)), credit)
    going = np.array([len(np.unique(i // r)) for i, _ in marks], dtype=np.int64)
    return Paths(level, drawn, cost, credit, np.array(aimed), left, going)


@dataclass(frozen=True)
class Calibration:
    """Two neighbouring prices and the weight on the lower (costlier) one that meets the budget
    (as :class:`ttcalloc.core.stopping.Calibration`)."""

    lam_lo: float
    lam_hi: float
    p_lo: float
    cost: float
    slack: bool = False


def mean_cost(
    replays: Sequence[Replays],
    ladder: Ladder,
    gains: NDArray[np.float64],
    extra: NDArray[np.float64],
    usable: NDArray[np.bool_],
    lam: float,
) -> float:
    """Mean dollars per problem (averaged over orders) at price ``lam``."""
    return float(simulate(replays, ladder, gains, extra, usable, lam).cost.mean())


def calibrate(
    replays: Sequence[Replays],
    ladder: Ladder,
    gains: NDArray[np.float64],
    extra: NDArray[np.float64],
    usable: NDArray[np.bool_],
    budget: float,
    steps: int = 60,
    apart: float = 0.0,
) -> Calibration:
    """Prices meeting ``budget`` in expectation over the replays: a bisection on ``log lam``
    (the cost falls as the price rises), then the mix of the two ends that meets it exactly
    (``apart``: each end moved that far off the switch: :data:`~.cascade_rule.APART`).

    Raises:
        CascadeBudgetError: even an infinite price (one sample of the cheapest start) costs more.
    """

    def cost(lam: float) -> float:
        return mean_cost(replays, ladder, gains, extra, usable, lam)

    free = cost(0.0)
    if free <= budget:
        return Calibration(0.0, 0.0, 0.0, free, slack=True)
    cheapest = cost(np.inf)
    if cheapest > budget * (1 + 1e-12):
        raise CascadeBudgetError(
            f"budget {budget:g} is below the cost of the cheapest path ({cheapest:.4g})"
        )
    pos = extra[usable & (extra > 0)]
    g = gains[usable & (gains > 0)]
    if not len(pos) or not len(g):
        return Calibration(np.inf, np.inf, 0.0, cheapest)
    lo = float(np.log(max(g.min(), 1e-12) / pos.max())) - 1.0  # cost(exp(lo)) == free
    hi = float(np.log(g.max() / max(pos.min(), 1e-300))) + 1.0  # nothing positive: cheapest
    for _ in range(steps):
        mid = (lo + hi) / 2
        if cost(float(np.exp(mid))) <= budget:
            hi = mid
        else:
            lo = mid
    lam_lo, lam_hi = float(np.exp(lo)) * (1 - apart), float(np.exp(hi)) * (1 + apart)
    c_lo, c_hi = cost(lam_lo), cost(lam_hi)
    if c_hi > budget:  # the cost did not fall back within the bracket: the cheapest path
        lam_hi, c_hi = np.inf, cheapest
    p_lo = 0.0 if c_lo <= c_hi else float(np.clip((budget - c_hi) / (c_lo - c_hi), 0.0, 1.0))
    return Calibration(lam_lo, lam_hi, p_lo, p_lo * c_lo + (1 - p_lo) * c_hi)


def priced_paths(
    replays: Sequence[Replays],
    ladder: Ladder,
    gains: NDArray[np.float64],
    extra: NDArray[np.float64],
    usable: NDArray[np.bool_],
    cal: Calibration,
    trace: bool = False,
) -> list[tuple[Paths, float]]:
    """The calibrated (mixed) rule's paths at each of its two prices, with the share of
    questions each price runs (a price of share 0 left out); ``trace`` as :func:`simulate`."""
    mix = ((cal.lam_hi, 1.0 - cal.p_lo), (cal.lam_lo, cal.p_lo))
    return [
        (simulate(replays, ladder, gains, extra, usable, lam, trace), w) for lam, w in mix if w > 0
    ]


def mixed_outcome(
    replays: Sequence[Replays],
    ladder: Ladder,
    gains: NDArray[np.float64],
    extra: NDArray[np.float64],
    usable: NDArray[np.bool_],
    cal: Calibration,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per-problem expected accuracy, dollars, and ``(P, L)`` mean samples of each model of the
    calibrated (mixed) rule."""
    priced = priced_paths(replays, ladder, gains, extra, usable, cal)

    def mix(name: str) -> NDArray[np.float64]:
        out: NDArray[np.float64] = sum(
            w * getattr(p, name).astype(np.float64).mean(axis=1) for p, w in priced
        )
        return out

    return mix("credit"), mix("cost"), mix("drawn")


def clearly_better(base: NDArray[np.float64], other: NDArray[np.float64]) -> bool:
    """Whether ``other``'s per-problem accuracy beats ``base``'s by more than one standard error
    of their paired difference (the one-standard-error rule: keep the simpler rule, ``base``,
    unless the data clearly favour the other)."""
    d = np.asarray(other, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    if len(d) < 2:
        return False
    return bool(d.mean() > d.std(ddof=1) / np.sqrt(len(d)))
