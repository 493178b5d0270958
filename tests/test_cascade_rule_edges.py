"""A rule written as a cascade's gains at the edges: recalibrated (``evaluate --recalibrate``)
at a budget the rule cannot reach, it stays the rule at its cheapest rather than dropping the
samples it always draws (and a learned cascade below its cheapest path is a row over budget,
not a traceback); ``run`` and ``serve`` refuse a budget below those samples; a MoT rule that
escalates to an earlier model is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from test_cascade import _replays
from test_run_models import PRICE_FLAGS, SIM, two_model_curves

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
    one = float(reps[1].cost[:, :, 0].mean())  # one sample of its model
    _, _, drawn = policy.outcome(reps, [f"q{i}" for i in range(10)], budget=one / 3)
    assert not drawn[:, 0].any()  # never the other model
    np.testing.assert_allclose(drawn[:, 1], 1)  # one sample of its own: its cheapest


def test_a_rule_s_cheapest_answer_is_the_samples_it_always_draws() -> None:
    from ttcalloc.stages.run.kinds import policy_ks

    units = [1.0, 9.0]
    assert policy_ks(_policy(cr.ThresholdRule(0, 3, 1), units))[1] == (3, 3.0)
    single = cr.UniformRule(1, (1, 2), (0.5, 0.6))
    assert policy_ks(_policy(single, units))[1] == (1, 9.0)


def test_run_and_serve_refuse_a_budget_below_the_mot_rule_s_k_cheap_samples(tmp_path: Path) -> None:
    """One line, as for any cascade below its cheapest answer (it ran and spent 1.35x)."""
    problems, samples, curves = two_model_curves(tmp_path)
    policy = tmp_path / "policy"
    r = run_cli("train", curves, "--problems", problems, "--learner", "cascade", "--rule",
                "mot", "--budget", "0.00108", "--folds", "2", "--out", policy)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    k = json.loads((policy / "policy.json").read_text())["cascade"]["rule"]["k"]
    assert k >= 2  # so a budget between one cheap sample and k of them exists
    spec = f"replay:{samples}"
    ran = run_cli(
        "run", policy, problems, "--split", "test", "--budget", "0.0004", "--budget-unit", "usd",
        "--out", tmp_path / "a.parquet", "--no-progress", "--model", f"cheap={spec}",
        "--model", f"strong={spec}",
    )  # fmt: skip
    assert ran.exit_code == 2, ran.stderr
    assert "below the cheapest action's expected cost" in ran.stderr, ran.stderr
    assert not (tmp_path / "a.parquet").exists()
    served = run_cli("serve", policy, *SIM, *PRICE_FLAGS, "--budget", "0.0004", "--budget-unit",
                     "usd", "--state-dir", tmp_path / "state")  # fmt: skip
    assert served.exit_code == 2 and served.stderr.count("\n") == 1, served.stderr
    assert "below the cheapest answer's expected cost 0.00054" in served.stderr, served.stderr


def test_evaluate_recalibrated_below_the_cheapest_path_is_a_row_over_budget(
    tmp_path: Path,
) -> None:
    """A learned cascade too (it was a CascadeBudgetError traceback): scored at its cheapest
    path, one sample of the cheapest model, and flagged over the budget."""
    problems, _, curves = two_model_curves(tmp_path)
    policy = tmp_path / "policy"
    r = run_cli("train", curves, "--problems", problems, "--learner", "cascade", "--rule",
                "learned", "--budget", "0.003", "--folds", "2", "--n-estimators", "5",
                "--orders", "4", "--out", policy)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    meta = json.loads((policy / "policy.json").read_text())
    meta["budget"] = meta["metrics"]["budget"] = 0.0001  # below one cheap sample ($0.00027)
    (policy / "policy.json").write_text(json.dumps(meta))
    ev = run_cli("evaluate", f"c={policy}", "--problems", problems, "--recalibrate", "--out",
                 tmp_path / "report", "--json")  # fmt: skip
    assert ev.exit_code == 0, ev.stderr
    row = next(
        x for x in json.loads(ev.stdout)["policies"]["c"]["rows"] if x["method"] == "cascade"
    )
    assert row["cost"] == pytest.approx(0.00027, rel=1e-9)
    assert row["mean_samples"] == {"cheap": pytest.approx(1.0), "strong": 0.0}
    assert "(over budget)" in (tmp_path / "report" / "report.md").read_text()


def test_a_mot_rule_escalating_to_an_earlier_model_is_refused(tmp_path: Path) -> None:
    """A cascade escalates only to later models, so ``then`` before ``first`` would load as a
    rule that never escalates (``k`` samples of the strong model, labelled the MoT rule)."""
    from ttcalloc.artifacts.policy_file import read_cascade_policy
    from ttcalloc.common.errors import ArtifactError

    problems, _, curves = two_model_curves(tmp_path)
    policy = tmp_path / "p"
    r = run_cli("train", curves, "--problems", problems, "--learner", "cascade", "--rule",
                "mot", "--budget", "0.003", "--folds", "2", "--out", policy)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    read_cascade_policy(policy)  # as trained: fine
    meta = json.loads((policy / "policy.json").read_text())
    k = meta["cascade"]["rule"]["k"]
    meta["cascade"]["rule"].update(first=1, then=0)
    meta["cascade"]["caps"] = [1, k]  # k is the cap of model first
    (policy / "policy.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=r"cascade\.rule\.then: .*later"):
        read_cascade_policy(policy)
