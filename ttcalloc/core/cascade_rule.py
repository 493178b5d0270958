"""The MoT threshold rule written as a cascade's gains, so the price rule runs it.

The MoT rule (Yue et al., ICLR 2024) draws ``k`` samples of a cheap model and, when the leading
answer's share is below a threshold ``t``, one sample of a strong model answers instead.  As
gains of the cascade's options (:mod:`ttcalloc.core.cascade`):

- before any sample, and on the cheap model before its ``k``-th sample: drawing the next cheap
  sample gains :data:`FORCED` (taken at any price calibration or pacing reaches), every other
  option :data:`NEVER`;
- after ``k`` cheap samples: escalating to the strong model gains ``1 - share``, every other
  option :data:`NEVER`, and stopping 0;
- on the strong model (or any other): nothing is positive, so the rule stops.

At price ``lam`` it escalates when ``1 - share > lam * dollars``, the strong sample's dollars:
the MoT rule at threshold ``t = 1 - lam * dollars``.  So the cascade's pacing in ``run`` and
``serve`` and ``evaluate --recalibrate`` apply to it unchanged, and the threshold is set by the
budget rather than tuned on labels.

Training needs no simulation: at a price the rule is the MoT rule at one threshold
(:func:`ttcalloc.core.cascade_baselines.mot_rule`, checked against the simulated paths in
``tests/test_cascade_rule.py``), and its prices are calibrated over the ``k + 1`` thresholds that
differ (:func:`calibrate`).  What is tuned on labels is the cheap model and ``k`` (every cheaper
model, ``k`` in :data:`~ttcalloc.core.cascade_baselines.MOT_KS` up to its fewest samples), by
accuracy on the train replays at the budget (:func:`tune`); :func:`out_of_fold` repeats that
choice without each fold and scores the fold at the prices calibrated without it, as the deployed
rule meets new questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ttcalloc.core.cascade import ROW_FEATURES, START, Calibration, Ladder
from ttcalloc.core.cascade_baselines import MOT_KS, mot_rule, single_model, upper_hull
from ttcalloc.core.replays import Replays, sliced

# the gain of a sample the rule always draws: taken while the price is below FORCED / its
# dollars, far above any price a run paces to (the grid reaches e^9 times the calibrated
# price, about 1 / the strong sample's dollars: 1e9 leaves a factor 1e5 for any price ratio)
FORCED = 1e9
NEVER = -1e9  # the gain of an option the rule never takes
# how far a flat rule's two calibrated prices are moved from the price where every question
# switches (at the bisection's prices rounding decides: a review found every question stopping
# at 2 samples, off a hull of 1, 3, 4, 5)
APART = 1e-6
_SHARE = ROW_FEATURES.index("top1_share")


@dataclass(frozen=True)
class ThresholdRule:
    """``k`` samples of model ``first`` (a level of the ladder), then one of model ``then`` when
    the leader's share is low; see the module docstring."""

    first: int
    k: int
    then: int

    def __post_init__(self) -> None:
        if self.k < 1 or self.first < 0 or self.then < 0 or self.first == self.then:
            raise ValueError(f"not a threshold rule: {self}")

    def ladder(self, levels: int) -> Ladder:
        """The rule's decision space over ``levels`` models: ``k`` samples of ``first``, one of
        every other model (only ``then``'s is ever drawn)."""
        if max(self.first, self.then) >= levels:
            raise ValueError(f"{self} needs more than {levels} models")
        return Ladder(tuple(self.k if lv == self.first else 1 for lv in range(levels)))

    def predict_distinct(self, rows: NDArray[np.float64], threads: int = 1) -> NDArray[np.float64]:
        """The gains of ``(N, F)`` option rows (the cascade's row layout: the state's features
        first, the option's four last); ``threads`` is unused (the interface of a gain model)."""
        level, j = rows[:, 0], rows[:, 1]
        share = rows[:, _SHARE]
        target = rows[:, -4]
        drawing = ((level == START) | ((level == self.first) & (j < self.k))) & (
            target == self.first
        )
        judge = (level == self.first) & (j >= self.k) & (target == self.then)
        out = np.full(len(rows), NEVER)
        out[drawing] = FORCED
        out[judge] = 1.0 - np.nan_to_num(share[judge], nan=1.0)
        return out

    def to_json(self) -> dict[str, object]:
        return {"kind": "mot", "first": self.first, "k": self.k, "then": self.then}


@dataclass(frozen=True)
class UniformRule:
    """One model's uniform allocation written as gains: start on ``model`` and draw its
    samples while the next stretch of the upper concave hull of its train accuracy against
    samples (``ks``, rising from 1, and ``accs``) gains more than the price; past the last hull
    point nothing gains.  At one price every question draws the hull point where the hull's
    slope falls below the price times the model's mean dollars per sample (:func:`flat_dollars`);
    two prices mixed are ``maj@k`` mixed on the hull, the best single model's allocation at a
    budget."""

    model: int
    ks: tuple[int, ...]
    accs: tuple[float, ...]
    flat: bool = True  # a sample at the model's mean dollars (False: policies before 2026-12-05)

    def __post_init__(self) -> None:
        ok = (
            self.model >= 0
            and len(self.ks) == len(self.accs) >= 1
            and self.ks[0] == 1
            and all(a < b for a, b in zip(self.ks, self.ks[1:], strict=False))
        )
        if not ok:
            raise ValueError(f"not a uniform rule: {self}")

    def ladder(self, levels: int) -> Ladder:
        """At most the last hull point's samples of ``model``, one of every other model."""
        if self.model >= levels:
            raise ValueError(f"{self} needs more than {levels} models")
        return Ladder(tuple(self.ks[-1] if lv == self.model else 1 for lv in range(levels)))

    def curve(self, k: NDArray[np.float64]) -> NDArray[np.float64]:
        """The hull's accuracy at ``k`` samples (flat past its last point)."""
        out: NDArray[np.float64] = np.interp(k, self.ks, self.accs)
        return out

    def predict_distinct(self, rows: NDArray[np.float64], threads: int = 1) -> NDArray[np.float64]:
        """The gains of ``(N, F)`` option rows (see :meth:`ThresholdRule.predict_distinct`)."""
        level, j, target, h = rows[:, 0], rows[:, 1], rows[:, -4], rows[:, -3]
        start = (level == START) & (target == self.model)
        more = (level == self.model) & (target == self.model)
        out = np.full(len(rows), NEVER)
        out[start] = FORCED
        out[more] = self.curve(h[more]) - self.curve(j[more])
        return out

    def to_json(self) -> dict[str, object]:
        return {
            "kind": "single",
            "model": self.model,
            "ks": list(self.ks),
            "accs": list(self.accs),
            "flat_dollars": self.flat,
        }


def flat_dollars(model: object) -> bool:
    """Whether ``model`` weighs continuing on the current model at that model's mean dollars
    per sample from training rather than at the question's own dollars so far: a
    :class:`UniformRule`, so that at one price every question draws the same hull point (the
    single-model baseline's ``maj@k``).  At the question's own dollars, the questions with short
    (cheap) answers drew more samples, and they tend to be the easy ones: on a weak + gpt-4 pair
    the rule trailed gpt-4's uniform allocation by 0.0019 at $0.025.  A rule from a policy
    written before that (no ``flat_dollars`` in policy.json) keeps the question's dollars, as its
    prices were calibrated with them."""
    return isinstance(model, UniformRule) and model.flat


def uniform_rule(rep: Replays, model: int) -> UniformRule:
    """``model``'s :class:`UniformRule` from its replays: the upper concave hull of mean
    ``maj@k`` accuracy against ``k``, for ``k`` up to the fewest samples a problem has."""
    ks = list(range(1, int(rep.n.min()) + 1))
    accs = [float(single_model(rep, k)[0].mean()) for k in ks]
    hull = upper_hull([(float(k), a) for k, a in zip(ks, accs, strict=True)])
    return UniformRule(model, tuple(ks[i] for i in hull), tuple(accs[i] for i in hull))


@dataclass(frozen=True)
class RuleFit:
    """A rule, its prices at a budget on some replays, and the per-problem accuracy, dollars
    and ``(P, L)`` samples of each model there."""

    rule: ThresholdRule | UniformRule
    calibration: Calibration
    accuracy: NDArray[np.float64]
    cost: NDArray[np.float64]
    drawn: NDArray[np.float64]


def _at(
    reps: Sequence[Replays], units: Sequence[float], rule: ThresholdRule, lam: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per-problem accuracy, dollars and escalation share at price ``lam``."""
    threshold = 1.0 - lam * units[rule.then] if np.isfinite(lam) else -np.inf
    return mot_rule(reps[rule.first], reps[rule.then], rule.k, threshold)


def highest_price(
    gains: NDArray[np.float64], extra: NDArray[np.float64], usable: NDArray[np.bool_]
) -> float:
    """A price (just above every gain per dollar short of :data:`FORCED`) at which a rule's
    ``(P, R, S, O)`` gains take nothing but the samples it always draws: its cheapest
    behaviour.  Much higher prices would price out those samples too (or start on another
    model), which the rule never does."""
    m = usable & (gains > 0) & (gains < FORCED) & (extra > 0)
    return float((gains[m] / extra[m]).max()) * (1 + 1e-9) if m.any() else 0.0


def prices(units: Sequence[float], rule: ThresholdRule) -> list[float]:
    """One price per distinct behaviour, cheapest (highest price) first: never escalate, then
    escalate below a share of ``1/k``, ``2/k``, ... ``1`` (each price midway between the shares,
    so no share sits on a boundary; all positive, so ``run`` can pace around any of them)."""
    c = units[rule.then]
    return [(1.0 - (j + 0.5) / rule.k) / c for j in range(-1, rule.k)]


def calibrate(
    reps: Sequence[Replays], units: Sequence[float], rule: ThresholdRule, budget: float
) -> Calibration | None:
    """Two neighbouring prices of :func:`prices` and the weight on the lower (costlier) one
    that meet ``budget`` in expectation over the replays; at price 0 when even escalating every
    split vote costs less (slack); None when ``k`` cheap samples cost more."""
    grid = prices(units, rule)
    costs = [float(_at(reps, units, rule, lam)[1].mean()) for lam in grid]
    if costs[0] > budget * (1 + 1e-12):
        return None
    if costs[-1] <= budget:
        return Calibration(0.0, 0.0, 0.0, costs[-1], slack=True)
    i = next(i for i in range(1, len(grid)) if costs[i] > budget)  # costs rise along the grid
    lo, hi = costs[i], costs[i - 1]
    w = 0.0 if lo <= hi else float(np.clip((budget - hi) / (lo - hi), 0.0, 1.0))
    return Calibration(grid[i], grid[i - 1], w, w * lo + (1 - w) * hi)


def score(
    reps: Sequence[Replays], units: Sequence[float], rule: ThresholdRule, cal: Calibration
) -> RuleFit:
    """``rule`` on ``reps`` at ``cal``'s prices (the mix of the two)."""
    lo, hi = _at(reps, units, rule, cal.lam_lo), _at(reps, units, rule, cal.lam_hi)
    w = cal.p_lo
    drawn = np.zeros((len(lo[0]), len(reps)))
    drawn[:, rule.first] = np.minimum(rule.k, reps[rule.first].n)
    drawn[:, rule.then] = w * lo[2] + (1 - w) * hi[2]
    return RuleFit(rule, cal, w * lo[0] + (1 - w) * hi[0], w * lo[1] + (1 - w) * hi[1], drawn)


def rules(reps: Sequence[Replays]) -> list[ThresholdRule]:
    """The candidates: ``k`` samples of a cheaper model, then the last (strongest) model."""
    then = len(reps) - 1
    return [
        ThresholdRule(first, k, then)
        for first in range(then)
        for k in MOT_KS
        if k <= int(reps[first].n.min())
    ]


def tune(reps: Sequence[Replays], units: Sequence[float], budget: float) -> RuleFit | None:
    """The candidate with the best accuracy on ``reps`` at ``budget`` (None: none fits it)."""
    best: RuleFit | None = None
    for rule in rules(reps):
        cal = calibrate(reps, units, rule, budget)
        if cal is None:
            continue
        fit = score(reps, units, rule, cal)
        if best is None or fit.accuracy.mean() > best.accuracy.mean() + 1e-12:
            best = fit
    return best


def out_of_fold(
    reps: Sequence[Replays], units: Sequence[float], budget: float, fold: NDArray[np.int64]
) -> NDArray[np.float64] | None:
    """Per-problem accuracy of the tuned rule out of fold: each fold scored by the rule tuned,
    and priced, on the other folds (None: in some fold no candidate fits the budget)."""
    out = np.zeros(len(fold))
    for f in sorted(set(fold.tolist())):
        rest, held = np.nonzero(fold != f)[0], np.nonzero(fold == f)[0]
        fit = tune([sliced(r, rest) for r in reps], units, budget)
        if fit is None:
            return None
        held_reps = [sliced(r, held) for r in reps]
        assert isinstance(fit.rule, ThresholdRule)
        out[held] = score(held_reps, units, fit.rule, fit.calibration).accuracy
    return out


def at_most(rep: Replays, cap: int | None) -> Replays:
    """The replays of at most ``cap`` samples per problem (all of them for None)."""
    return rep if cap is None or cap >= rep.max_samples else sliced(rep, samples=cap)
