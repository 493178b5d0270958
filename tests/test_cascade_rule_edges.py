"""A rule written as a cascade's gains at the edges: recalibrated (``evaluate --recalibrate``)
at a budget the rule cannot reach, it stays the rule at its cheapest rather than dropping the
samples it always draws."""

from __future__ import annotations

import numpy as np
import pytest
from test_cascade import _replays

from ttcalloc.core import cascade as cc
from ttcalloc.core import cascade_rule as cr
from ttcalloc.learn.cascade import CascadePolicy, Rule


def _policy(rule: Rule, units: list[float]) -> CascadePolicy:
    cal = cc.Calibration(0.0, 0.0, 0.0, float("nan"), slack=True)
    return CascadePolicy(["a", "b"], rule.ladder(2), units, [], None, rule, cal, {})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recalibrated_below_k_cheap_samples_the_mot_rule_still_draws_k(seed: int) -> None:
    reps = _replays(seed, 10, [6, 3], orders=6)
    units = [1.0, 9.0]
    rule = cr.ThresholdRule(0, 4, 1)
    never = cr.score(reps, units, rule, cc.Calibration(1 / 9, 1 / 9, 0.0, 0.0))
    policy = _policy(rule, units)
    questions = [f"q{i}" for i in range(10)]
    _, cost, drawn = policy.outcome(reps, questions, budget=float(never.cost.mean()) / 2)
    np.testing.assert_allclose(drawn[:, 0], 4)  # its k cheap samples, always
    assert not drawn[:, 1].any()  # at its cheapest: no escalation
    np.testing.assert_allclose(cost, never.cost)  # over the budget, as evaluate reports
    # within reach it meets the budget as before
    budget = float(never.cost.mean()) * 1.5
    _, cost, drawn = policy.outcome(reps, questions, budget=budget)
    assert cost.mean() == pytest.approx(budget, rel=1e-6)
    np.testing.assert_allclose(drawn[:, 0], 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recalibrated_below_one_sample_a_single_rule_keeps_its_model(seed: int) -> None:
    reps = _replays(seed, 10, [6, 5], orders=6)
    units = [1.0, 4.0]
    rule = cr.uniform_rule(reps[1], 1)  # the costlier model's uniform allocation
    policy = _policy(rule, units)
    one = float(np.mean([r.cost[:, :, 0].mean() for r in [reps[1]]]))
    _, _, drawn = policy.outcome(reps, [f"q{i}" for i in range(10)], budget=one / 3)
    assert not drawn[:, 0].any()  # never the other model
    np.testing.assert_allclose(drawn[:, 1], 1)  # one sample of its own: its cheapest
