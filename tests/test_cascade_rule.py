"""The MoT rule written as a cascade's gains (core.cascade_rule): simulated as a cascade at a price
it is exactly the MoT rule at threshold ``1 - price x dollars``; its calibration, tuning and
out-of-fold score."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cascade import _replays

from ttcalloc.core import cascade as cc
from ttcalloc.core import cascade_baselines as cb
from ttcalloc.core import cascade_rule as cr
from ttcalloc.core.cascade_rule import ThresholdRule
from ttcalloc.core.replays import replay, sliced
from ttcalloc.learn.cascade import predict, prepare


def _simulated(reps, units, rule, cal):  # type: ignore[no-untyped-def]
    """The rule run as a cascade (the paths run and serve follow): accuracy, dollars, samples."""
    ladder = rule.ladder(len(reps))
    prep = predict(rule, prepare(reps, None, ladder, units), ladder)
    return cc.mixed_outcome(reps, ladder, prep.gains, prep.extra, prep.usable, cal)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    levels=st.integers(2, 3),
    k=st.integers(1, 6),
    step=st.integers(0, 6),
    first_last=st.booleans(),
)
def test_at_a_price_it_is_the_mot_rule_at_one_threshold(
    seed: int, levels: int, k: int, step: int, first_last: bool
) -> None:
    ns = [7, 6, 3][:levels]
    reps = _replays(seed, 5, ns, orders=6)
    then = levels - 1
    first = then - 1 if first_last else 0
    rule = ThresholdRule(first, k, then)
    units = [0.4, 1.5, 6.0][:levels]
    # between two shares (no ties), or 1: escalate unless every sample agrees (price 0)
    threshold = min((step + 0.5) / k, 1.0)
    lam = (1.0 - threshold) / units[then]
    cal = cc.Calibration(lam, lam, 0.0, float("nan"))
    acc, cost, drawn = _simulated(reps, units, rule, cal)
    want_acc, want_cost, up = cb.mot_rule(reps[first], reps[then], k, threshold)
    np.testing.assert_allclose(acc, want_acc, atol=1e-12)
    np.testing.assert_allclose(cost, want_cost, atol=1e-12)
    np.testing.assert_allclose(drawn[:, then], up, atol=1e-12)
    np.testing.assert_allclose(drawn[:, first], k)
    others = [lv for lv in range(levels) if lv not in (first, then)]
    assert not drawn[:, others].any()
    fast = cr.score(reps, units, rule, cal)  # what training scores, without simulating
    np.testing.assert_allclose(fast.accuracy, acc, atol=1e-12)
    np.testing.assert_allclose(fast.cost, cost, atol=1e-12)
    np.testing.assert_allclose(fast.drawn, drawn, atol=1e-12)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6), share=st.floats(0.0, 1.2))
def test_calibrated_at_a_budget_it_meets_it(seed: int, k: int, share: float) -> None:
    reps = _replays(seed, 12, [8, 3], orders=8)
    units = [1.0, 9.0]
    rule = ThresholdRule(0, k, 1)
    top = cr.prices(units, rule)[0]  # the highest price: never escalate
    assert top > 1 / 9
    never = cr.score(reps, units, rule, cc.Calibration(top, top, 0.0, 0.0)).cost.mean()
    # run as a cascade at that price it never escalates, not even a vote of abstentions
    assert not _simulated(reps, units, rule, cc.Calibration(top, top, 0.0, 0.0))[2][:, 1].any()
    always = cr.score(reps, units, rule, cc.Calibration(0.0, 0.0, 0.0, 0.0)).cost.mean()
    budget = never + share * (always - never)
    cal = cr.calibrate(reps, units, rule, budget)
    assert cal is not None
    acc, cost, _ = _simulated(reps, units, rule, cal)  # as run and evaluate follow it
    assert cost.mean() == pytest.approx(min(budget, always), rel=1e-9)
    assert cal.slack == (budget >= always)
    np.testing.assert_allclose(cr.score(reps, units, rule, cal).accuracy, acc, atol=1e-12)
    assert cr.calibrate(reps, units, rule, never * 0.99) is None  # k samples cost more


def test_candidates_and_out_of_fold() -> None:
    reps = _replays(7, 20, [9, 5, 2], orders=4)
    units = [0.2, 1.0, 8.0]
    cands = cr.rules(reps)
    assert {(r.first, r.then) for r in cands} == {(0, 2), (1, 2)}
    assert max(r.k for r in cands if r.first == 0) == 8  # 9 samples: KS up to 8
    assert max(r.k for r in cands if r.first == 1) == 5
    budget = 4.0
    best = cr.tune(reps, units, budget)
    assert best is not None
    assert best.cost.mean() == pytest.approx(budget)
    for rule in cands:  # the tuned one is the best on these replays
        cal = cr.calibrate(reps, units, rule, budget)
        if cal is not None:
            other = cr.score(reps, units, rule, cal)
            assert other.accuracy.mean() <= best.accuracy.mean() + 1e-12
    fold = np.arange(20) % 4
    oof = cr.out_of_fold(reps, units, budget, fold)
    assert oof is not None and oof.shape == (20,)
    # fold 0 is scored by the rule tuned and priced on folds 1-3
    rest, held = np.nonzero(fold != 0)[0], np.nonzero(fold == 0)[0]
    fit = cr.tune([sliced(r, rest) for r in reps], units, budget)
    assert fit is not None
    again = cr.score([sliced(r, held) for r in reps], units, fit.rule, fit.calibration)
    np.testing.assert_allclose(oof[held], again.accuracy)
    assert cr.out_of_fold(reps, units, 1e-6, fold) is None  # nothing fits so small a budget


def test_a_rule_is_not_a_rule_without_two_models() -> None:
    with pytest.raises(ValueError):
        ThresholdRule(1, 3, 1)
    with pytest.raises(ValueError):
        ThresholdRule(0, 0, 1)
    with pytest.raises(ValueError):
        ThresholdRule(0, 2, 2).ladder(2)


def _flat_replays(seed: int, p: int, ns: list[int], orders: int = 5) -> list:
    """As ``_replays`` with every sample of a model at one price (so one price means one ``k``
    for every question)."""
    rng = np.random.default_rng(seed)
    out = []
    for level, n in enumerate(ns):
        votes = [list(rng.integers(-1, 3, size=n)) for _ in range(p)]
        costs = [[float((level + 1) ** 2)] * n for _ in range(p)]
        out.append(replay(votes, costs, orders=orders, seed=seed + level))
    return out


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), model=st.integers(0, 1), at=st.floats(0.0, 1.0))
def test_a_uniform_rule_draws_the_hull_point_its_price_picks(
    seed: int, model: int, at: float
) -> None:
    """At a price between two slopes of the hull, every question draws the hull point where the
    slope falls below it: ``maj@k`` of that model, as the single-model baseline scores it."""
    reps = _flat_replays(seed, 6, [9, 5])
    units = [1.0, 4.0]
    rule = cr.uniform_rule(reps[model], model)
    assert rule.ks[0] == 1 and rule.ladder(2).caps[model] == rule.ks[-1]
    points = list(zip(rule.ks, rule.accs, strict=True))
    slopes = [(b - a) / (kb - ka) for (ka, a), (kb, b) in itertools.pairwise(points)]
    # a price per sample between two slopes (or above the first, or below the last)
    edges = [np.inf, *slopes, 0.0]
    i = min(int(at * (len(edges) - 1)), len(edges) - 2)
    hi, lo = edges[i], edges[i + 1]
    per = (lo + hi) / 2 if np.isfinite(hi) else lo + 1.0
    if not per > 0:
        return  # a flat stretch: no price strictly inside
    cal = cc.Calibration(per / units[model], per / units[model], 0.0, float("nan"))
    acc, cost, drawn = _simulated(reps, units, rule, cal)
    want_acc, want_cost = cb.single_model(reps[model], rule.ks[i])
    np.testing.assert_allclose(drawn[:, model], rule.ks[i])
    np.testing.assert_allclose(acc, want_acc, atol=1e-12)
    np.testing.assert_allclose(cost, want_cost, atol=1e-12)
    assert not drawn[:, 1 - model].any()


def test_the_learned_gains_are_kept_only_where_clearly_better_than_the_best_single() -> None:
    from ttcalloc.learn.cascade_choice import choose_rule

    reps = _flat_replays(3, 24, [9, 5, 3])
    units = [1.0, 4.0, 9.0]
    fold = np.arange(24) % 3
    single = cr.at_most(reps[0], None)
    budget = 3.0
    models = ["a", "b", "c"]
    weak = np.zeros(24)  # out-of-fold accuracy of learned gains that are never right
    strong = np.ones(24)
    pick, rule, info = choose_rule(reps, units, budget, fold, "guard", weak, models)
    assert pick == "single" and isinstance(rule.rule, cr.UniformRule)
    assert info["considered"] == ["single"] and info["chosen"] == "single"
    assert rule.cost.mean() == pytest.approx(budget, rel=1e-9)  # priced to the budget
    assert info["labels"]["single"] == f"{models[rule.rule.model]} only, up to x{rule.rule.ks[-1]}"
    pick, rule, info = choose_rule(reps, units, budget, fold, "guard", strong, models)
    assert pick is None and rule is None and info["chosen"] == "learned"
    pick, rule, info = choose_rule(reps, units, budget, fold, "auto", strong, models)
    assert pick is None and rule is None and info["chosen"] == "learned"
    assert set(info["oof_accuracy"]) == {"learned", "mot", "single"}
    # --cap binds the rules as it binds the learned gains
    _, capped, _ = choose_rule(reps, units, budget, fold, "single", None, models, cap=2)
    assert capped.rule.ks[-1] <= 2 and capped.drawn.max() <= 2
    assert single.max_samples == 9 and cr.at_most(single, 2).n.max() == 2
    with pytest.raises(cc.CascadeBudgetError):
        choose_rule(reps, units, 0.5, fold, "mot", None, models)  # 1 cheap sample costs 1


def test_learned_gains_not_clearly_better_than_the_best_single_model_give_way_to_it() -> None:
    """The burden of proof is on the learned gains: ahead of the best single model out of fold
    on the mean but by less than one standard error, the single model is kept (it never trails
    itself); clearly ahead, the learned gains are kept."""
    from ttcalloc.learn.cascade_choice import choose_rule
    from ttcalloc.learn.cascade_single import single_out_of_fold

    reps = _flat_replays(5, 24, [9, 5, 3])
    units, fold, budget, models = [1.0, 4.0, 9.0], np.arange(24) % 3, 3.0, ["a", "b", "c"]
    single = single_out_of_fold([cr.at_most(r, None) for r in reps], budget, fold)
    assert single is not None and 0.0 < single.mean() < 0.9
    slightly = single.copy()
    slightly[int(np.argmin(single))] += 0.1  # ahead on the mean, within one standard error
    assert slightly.mean() > single.mean() and not cc.clearly_better(single, slightly)
    pick, rule, info = choose_rule(reps, units, budget, fold, "guard", slightly, models)
    assert pick == "single" and isinstance(rule.rule, cr.UniformRule)
    assert info["chosen"] == "single" and "unless the learned gains are clearly" in info["how"]
    clearly = np.minimum(single + 0.1, 1.0)
    assert cc.clearly_better(single, clearly)
    pick, _, info = choose_rule(reps, units, budget, fold, "guard", clearly, models)
    assert pick is None and info["chosen"] == "learned"


def test_the_forced_samples_hold_at_the_top_of_the_pacing_grid() -> None:
    """Pacing may price a round up to e^9 times the calibrated price; the MoT rule must still
    draw its k cheap samples there when a cheap sample costs a quarter of a strong one (with
    forced gains of 1e3 it stopped after one: 1e3 < 1013 x 1)."""
    from ttcalloc.core.cascade_pacing import price_grid

    reps = _flat_replays(4, 8, [6, 3])  # a cheap sample costs 1, a strong one 4
    units = [1.0, 4.0]
    rule = ThresholdRule(0, 4, 1)
    lam = cr.prices(units, rule)[2]  # escalate below a share of 1.5/4
    top = float(price_grid(lam)[-1])
    _, _, drawn = _simulated(reps, units, rule, cc.Calibration(top, top, 0.0, float("nan")))
    np.testing.assert_allclose(drawn[:, 0], 4)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), at=st.floats(0.05, 0.95))
def test_the_single_model_rule_calibrated_draws_hull_points_only(seed: int, at: float) -> None:
    """Calibrated to a budget between two hull points, the single-model rule's two prices each
    draw a hull point for every question (the baseline's ``maj@k`` mix), and its accuracy is
    the baseline's; a review found the bisection's prices sitting on the switch, where rounding
    stopped every question at 2 samples off a hull of 1, 3, 4, 5."""
    from ttcalloc.learn.cascade import predict, prepare
    from ttcalloc.learn.cascade_single import fit_single

    rng = np.random.default_rng(seed)
    p, n = 12, 8
    votes = [[list(rng.integers(-1, 3, size=k)) for _ in range(p)] for k in (2, n)]
    scale = rng.uniform(0.5, 2.0, size=p)
    costs = [[[float(scale[i] * u)] * k for i in range(p)] for u, k in ((1.0, 2), (4.0, n))]
    reps = [
        replay(v, c, orders=4, seed=seed + i)
        for i, (v, c) in enumerate(zip(votes, costs, strict=True))
    ]
    rule = cr.uniform_rule(reps[1], 1)
    if len(rule.ks) < 2:
        return
    units = [float(np.mean(scale)), 4.0 * float(np.mean(scale))]
    lad = rule.ladder(2)
    k_lo, k_hi = rule.ks[0], rule.ks[1]
    budget = 4.0 * float(np.mean(scale)) * (k_lo + at * (k_hi - k_lo))
    fit = fit_single(reps, units, rule, budget)
    got = predict(rule, prepare(reps, None, lad, units, rule), lad)
    assert got.gains is not None
    for lam in (fit.calibration.lam_lo, fit.calibration.lam_hi):
        paths = cc.simulate(reps, lad, got.gains, got.extra, got.usable, lam)
        assert set(np.unique(paths.drawn[:, :, 1]).tolist()) <= set(rule.ks), lam
    want = cb.tune_single(reps, budget)[1]
    assert want is not None
    assert float(fit.accuracy.mean()) == pytest.approx(want["train_accuracy"], abs=1e-9)


def test_a_single_model_rule_from_an_older_policy_keeps_the_questions_dollars() -> None:
    """Its prices were calibrated at each question's own dollars: a policy.json without
    ``flat_dollars`` (written before 2026-12-05) is read as such, a new one round-trips."""
    from ttcalloc.learn.cascade import rule_of

    old = {"kind": "single", "model": 0, "ks": [1, 2], "accs": [0.5, 0.6]}
    assert not rule_of(old).flat and not cr.flat_dollars(rule_of(old))
    new = cr.UniformRule(0, (1, 2), (0.5, 0.6))
    assert new.to_json()["flat_dollars"] is True and rule_of(new.to_json()) == new
    assert cr.flat_dollars(new) and not cr.flat_dollars(cr.ThresholdRule(0, 2, 1))


def test_which_rule_replaces_the_learned_gains() -> None:
    """The single model unless the learned gains clearly beat it; the MoT rule only where it
    clearly beats the learned gains and, if kept, the single model."""
    from ttcalloc.learn.cascade_choice import _pick

    base = np.tile([0.0, 1.0], 50)  # 100 problems, mean 0.5
    up = np.where(np.arange(100) < 30, 1.0, base)  # +0.15: clearly better than base
    tiny = base.copy()
    tiny[[0, 2, 4]], tiny[[1, 3]] = 1.0, 0.0  # +0.01, three up and two down: within one SE
    assert _pick(base, {"single": base}) == "single"  # a tie keeps the single model
    assert _pick(tiny, {"single": base}) == "single"
    assert _pick(up, {"single": base}) is None
    assert _pick(base, {"mot": tiny}) is None  # MoT only where clearly better
    assert _pick(base, {"mot": up}) == "mot"
    assert _pick(up, {"mot": base, "single": base}) is None
    assert _pick(base, {"mot": up, "single": tiny}) == "mot"
    assert _pick(base, {"mot": up, "single": up}) == "single"  # not clearly better than single
