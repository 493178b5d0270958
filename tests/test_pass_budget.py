"""Issue 26: the stop policy's budget on pass@k sets (a verifier), where the cost is heavy-tailed.

A verified success ends a problem and a problem never solved runs to the cap, so the train
problems' mean cost is a noisy guide to what new problems spend: a price calibrated to it
exactly overspends on new problems about half the time.  The default for pass strategies keeps
one standard error of the train cost to spare; ``evaluate`` notes a learned policy that spends
more than 5% over its budget, and ``--recalibrate`` meets the budget on the test replays.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import heavy_tail_pass, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from ttcalloc.common.hashing import seeded_folds
from ttcalloc.core import replays as rp
from ttcalloc.core import stopping
from ttcalloc.learn.stopping import StopOptions, calibrated, critical_prices, fit_gains
from ttcalloc.stages.evaluate.verdicts import over_budget

SAMPLES = 24
GRID = stopping.Grid(cap=SAMPLES, checkpoints=(1, 2, 4, 8, 16, 24), strategy="pass")


def _heavy_tail(n: int, seed: int) -> list[list[int]]:
    return heavy_tail_pass(n, seed, SAMPLES)


def _replay(votes: list[list[int]], orders: int, seed: int) -> rp.Replays:
    return rp.replay(votes, [[1.0] * SAMPLES] * len(votes), orders=orders, seed=seed)


def test_on_new_problems_the_pass_policy_spends_its_budget_or_less_most_of_the_time() -> None:
    """Eight train sets of 120 problems drawn from one heavy-tailed pass@k population, each
    trained and calibrated at B = 4 as ``train`` does: on 3,000 new problems of the same
    population, an exactly calibrated price overspends in about half the draws (today: 6 of 8,
    by up to 7%); the default keeps one standard error to spare (at most 2 of 8, none by more
    than 5%)."""
    population = _replay(_heavy_tail(3000, 999), orders=4, seed=5)
    spent = []
    for draw in range(8):
        train = _replay(_heavy_tail(120, draw), orders=12, seed=draw)
        fold = np.array(seeded_folds(list(range(120)), 3, 0), dtype=np.int64)
        opts = StopOptions(folds=3, n_estimators=40, seed=draw)
        gain = fit_gains([(train, None)], GRID, fold, opts, threads=2)[0]
        fit = calibrated(gain, train, GRID, 4.0)
        critical = critical_prices(gain.model, population, None, GRID)
        cost = stopping.mixed_outcome(critical, population, GRID, fit.calibration)[1]
        spent.append(float(cost.mean()) / 4.0)
    over = [s for s in spent if s > 1.0]
    assert len(over) <= 2, spent
    assert max(spent) <= 1.05, spent


def test_majority_keeps_the_exact_calibration() -> None:
    """Majority vote's cost is bounded by a small cap: no margin by default, so its prices are
    exactly :func:`stopping.calibrate`'s."""
    votes = _heavy_tail(60, 1)
    train = _replay(votes, orders=6, seed=1)
    grid = stopping.Grid(cap=8, checkpoints=(1, 2, 4, 8))
    fold = np.array(seeded_folds(list(range(60)), 3, 0), dtype=np.int64)
    gain = fit_gains([(train, None)], grid, fold, StopOptions(folds=3, n_estimators=20))[0]
    fit = calibrated(gain, train, grid, 3.0)
    assert fit.calibration == stopping.calibrate(gain.critical, train, grid, 3.0)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    budget=st.floats(1.2, 10.0),
    z=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
)
def test_the_margin_keeps_z_standard_errors_of_the_cost_to_spare(
    seed: int, budget: float, z: float
) -> None:
    """Against the definition: the calibrated expected cost plus ``z`` standard errors (over
    problems, computed here by a loop) is at most the budget (or the rule is at its cheapest);
    it never spends more than the exact calibration; ``z = 0`` is the exact calibration."""
    rng = np.random.default_rng(seed)
    votes = _heavy_tail(int(rng.integers(5, 30)), seed)
    train = _replay(votes, orders=3, seed=seed)
    critical = rng.exponential(0.05, train.ids.shape) * (rng.random(train.ids.shape) < 0.8)
    try:
        exact = stopping.calibrate(critical, train, GRID, budget)
    except stopping.BudgetError:
        return
    cal, se = stopping.calibrate_with_margin(critical, train, GRID, budget, z)
    per_problem = stopping.mixed_outcome(critical, train, GRID, cal)[1]
    mean = sum(per_problem) / len(per_problem)
    sd = (sum((c - mean) ** 2 for c in per_problem) / (len(per_problem) - 1)) ** 0.5
    assert se == pytest.approx(sd / len(per_problem) ** 0.5, rel=1e-9, abs=1e-12)
    floor = stopping.mean_cost(critical, train, GRID, np.inf)
    assert mean + z * se <= budget * (1 + 1e-6) or mean <= floor * (1 + 1e-9) + 1e-9
    assert mean <= exact.cost * (1 + 1e-9) + 1e-9
    if z == 0:
        assert cal == exact


def test_evaluate_notes_a_learned_policy_over_its_budget() -> None:
    """The note names the policy, the budget, what it spent and the way to meet it."""
    rec = {"kind": "learned", "policy": "stop", "budget": 4.0, "cost": 4.76, "params": {}}
    (note,) = over_budget([rec, {**rec, "cost": 4.1}, {**rec, "kind": "baseline"}])
    assert note.startswith("stop at 4 spent 4.76 per problem, 19% over its budget")
    assert "--recalibrate" in note


@pytest.fixture(scope="module")
def pass_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small heavy-tailed pass@k set through data, import, estimate: problems 0.. x 24."""
    tmp = tmp_path_factory.mktemp("pass26")
    votes = _heavy_tail(160, 7)
    rows = [{"id": i, "question": f"q{i} {'x' * (i % 13)}", "answer": "0"} for i in range(160)]
    (tmp / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = [
        {"problem_id": i, "sample_idx": j, "pred_answer": str(v) if v >= 0 else None}
        for i, vs in enumerate(votes)
        for j, v in enumerate(vs)
    ]
    (tmp / "raw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in samples))
    steps = [
        ["data", "jsonl", "--source", tmp / "p.jsonl", "--id-field", "id", "--test-frac", "0.3",
         "--out", tmp / "problems.parquet"],
        ["import", tmp / "raw.jsonl", "--problems", tmp / "problems.parquet",
         "--out", tmp / "samples.parquet"],
        ["estimate", tmp / "samples.parquet", "--ks", "1,2,4,8", "--strategy", "pass",
         "--holdout", "0.5", "--cost", "samples", "--problems", tmp / "problems.parquet",
         "--out", tmp / "curves.parquet"],
    ]  # fmt: skip
    for args in steps:
        res = run_cli(*args)
        assert res.exit_code == 0, res.stderr
    return tmp


def test_train_reports_the_margin_and_recalibrate_meets_the_budget(pass_set: Path) -> None:
    """``train`` on a pass set says the margin it kept; ``evaluate --recalibrate`` sets a stop
    policy's prices on the test replays, so its realized cost is the budget."""
    p = pass_set
    res = run_cli(
        "train", p / "curves.parquet", "--problems", p / "problems.parquet", "--budget", "3",
        "--folds", "3", "--n-estimators", "20", "--orders", "12", "--fit-orders", "6",
        "--out", p / "stop", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    metrics = json.loads(res.stdout)
    assert metrics["price_margin_se"] == 1.0 and metrics["train_cost_se"] > 0
    assert metrics["train_expected_cost"] + metrics["train_cost_se"] <= 3 * (1 + 1e-6)
    assert "train cost at the prices (1 s.e." in res.stderr
    res = run_cli(
        "evaluate", p / "stop", "--problems", p / "problems.parquet", "--recalibrate",
        "--no-plot", "--bootstrap", "100", "--out", p / "report", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    (stop,) = [r for r in json.loads(res.stdout)["policies"] if r["kind"] == "learned"]
    assert stop["params"]["recalibrated"] == "test replays"
    assert stop["cost"] == pytest.approx(3.0, rel=1e-6)


def test_margin_flag_is_checked(pass_set: Path) -> None:
    p = pass_set
    res = run_cli(
        "train", p / "curves.parquet", "--problems", p / "problems.parquet", "--budget", "3",
        "--margin", "-1", "--out", p / "bad",
    )  # fmt: skip
    assert res.exit_code != 0 and "error: --margin -1" in res.stderr
    assert "Traceback" not in res.stderr
