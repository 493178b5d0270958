"""The learned stopping rule: budget on held-out replays, online decisions, the whole pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

from ttcalloc.common.errors import ArtifactError
from ttcalloc.core import replays as rp
from ttcalloc.core import stopping
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.policy import Policy, load_policy
from ttcalloc.learn.stopping import StopFit, StopOptions, train_stopping

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _arith_curves(p: Path, n: int = 4, ks: str = "1,2,4") -> Path:
    """data -> sample (simulated, ``n`` per problem) -> estimate, via the CLI, into ``p``."""
    for args in (
        ("data", "jsonl", "--source", EXAMPLES / "arithmetic.jsonl", "--id-field", "id",
         "--test-frac", "0.5", "--out", p / "problems.parquet"),
        ("sample", p / "problems.parquet", "--model", "sim/medium", "--n", str(n),
         "--no-progress", "--out", p / "samples"),
        ("estimate", p / "samples", "--problems", p / "problems.parquet", "--ks", ks,
         "--cost", "samples", "--out", p / "curves.parquet"),
    ):  # fmt: skip
        res = run_cli(*args)
        assert res.exit_code == 0, res.stderr
    return p / "curves.parquet"


def _problems(n: int, samples: int, seed: int) -> tuple[list[list[int]], list[np.ndarray]]:
    """Problems of varied difficulty: each sample is correct with the problem's own rate, else
    one of three wrong answers; lengths grow with difficulty (a signal the rule may use)."""
    rng = np.random.default_rng(seed)
    votes, lengths = [], []
    for _ in range(n):
        p = rng.beta(0.7, 0.5)
        correct = rng.random(samples) < p
        wrong = rng.integers(1, 4, samples)
        votes.append(list(np.where(correct, 0, wrong)))
        lengths.append((100 + 200 * (1 - p) + rng.normal(0, 20, samples))[:, None])
    return votes, lengths


def _fit(budget: float, seed: int = 0) -> tuple[AdaptivePolicy, stopping.Grid]:
    votes, lengths = _problems(300, 12, seed)
    train = rp.replay(votes, [[1.0] * 12] * 300, orders=24, seed=seed, extra=lengths)
    grid = stopping.Grid(cap=8, checkpoints=(1, 2, 4, 8))
    fold = np.arange(300) % 3
    fit = train_stopping(
        train, None, grid, budget, fold, StopOptions(folds=3, n_estimators=60, seed=seed)
    )
    policy = AdaptivePolicy(grid, [], None, ["chars"], fit.model, fit.calibration, {})
    return policy, grid


@pytest.mark.parametrize("budget", [1.5, 2.5, 4.0])
def test_calibrated_cost_meets_the_budget_on_new_problems(budget: float) -> None:
    policy, _ = _fit(budget)
    votes, lengths = _problems(400, 12, seed=99)  # problems the rule never saw
    test = rp.replay(votes, [[1.0] * 12] * 400, orders=24, seed=7, extra=lengths)
    acc, cost = policy.outcome(test, policy.critical(test, [""] * 400))
    # sampling error of a mean over 400 problems: a few percent
    assert cost.mean() == pytest.approx(budget, rel=0.06)
    # and it spends better than the same k for everyone at that cost
    ks = np.arange(1, 9)
    uniform = np.interp(cost.mean(), ks, [test.credit[:, :, k - 1].mean() for k in ks])
    assert acc.mean() > uniform


def test_online_decisions_match_the_offline_replay() -> None:
    policy, grid = _fit(2.0)
    votes, lengths = _problems(30, 8, seed=5)
    one = rp.replay(votes, [[1.0] * 8] * 30, orders=1, extra=lengths, shuffle=False)
    critical = policy.critical(one, [""] * 30)
    for i, v in enumerate(votes):
        answers = [None if x < 0 else f"answer {x}" for x in v]
        for j in range(1, grid.cap):
            decision = policy.decide(f"q{i}", answers[:j], values={"chars": lengths[i][:j, 0]})
            assert decision.critical == pytest.approx(critical[i, 0, j - 1])
            assert decision.stop == (decision.critical <= decision.price)
    assert policy.decide("q", ["1"] * grid.cap).stop  # the cap always stops


def test_price_mix_is_seeded_by_the_question() -> None:
    policy, _ = _fit(2.0)
    cal = policy.calibration
    prices = [policy.price_for(f"question {i}") for i in range(2000)]
    assert set(prices) <= {cal.lam_lo, cal.lam_hi}
    share = np.mean([p == cal.lam_lo for p in prices]) if cal.lam_lo != cal.lam_hi else cal.p_lo
    assert share == pytest.approx(cal.p_lo, abs=0.04)
    assert prices == [policy.price_for(f"question {i}") for i in range(2000)]


def test_stop_pipeline_end_to_end(tmp_path: Path) -> None:
    """data -> sample (simulated) -> estimate -> train --learner stop -> evaluate, via the CLI."""
    p = tmp_path
    _arith_curves(p, n=16, ks="1,2,4,8")
    res = run_cli(
        "train",
        p / "curves.parquet",
        "--problems",
        p / "problems.parquet",
        "--learner",
        "stop",
        "--budget",
        "2",
        "--folds",
        "3",
        "--orders",
        "20",
        "--out",
        p / "stop",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    metrics = json.loads(res.stdout)
    assert metrics["learner"] == "stop" and metrics["cap"] == 8
    meta = json.loads((p / "stop" / "policy.json").read_text())
    assert meta["adaptive"]["strategy"] == "majority"
    assert meta["provenance"]["params"]["n_estimators"] == 150  # stop's own default
    assert all((p / "stop" / f).exists() for f in meta["model_files"])
    assert isinstance(load_policy(p / "stop"), AdaptivePolicy)
    with pytest.raises(ArtifactError, match="adaptive"):
        Policy.load(p / "stop")
    res = run_cli(
        "evaluate",
        f"stop={p / 'stop'}",
        "--no-plot",
        "--bootstrap",
        "200",
        "--orders",
        "20",
        "--out",
        p / "report",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    rows = {r["policy"]: r for r in json.loads(res.stdout)["policies"]}
    assert {"stop", "uniform", "esc", "adaptive", "oracle"} <= set(rows)
    assert rows["stop"]["kind"] == "learned"
    assert rows["stop"]["cost"] == pytest.approx(2.0, rel=0.25)  # 24 test problems
    assert rows["stop"]["gain_vs_uniform_ci"] is not None
    # baselines are matched to the stop policy's cost, so it is compared with them pairwise;
    # with "2 each" (at B itself) only where it spent within 5% of 2
    near = abs(rows["stop"]["cost"] - 2.0) <= 0.05 * max(rows["stop"]["cost"], 2.0)
    assert set(rows["stop"]["gain_vs"]) == {"esc", "adaptive"} | ({"k-each"} if near else set())


def test_stop_budget_below_one_sample_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path
    _arith_curves(p)
    res = run_cli(
        "train",
        p / "curves.parquet",
        "--problems",
        p / "problems.parquet",
        "--learner",
        "stop",
        "--budget",
        "0.5",
        "--folds",
        "3",
        "--out",
        p / "stop",
    )
    assert res.exit_code != 0
    assert "--budget 0.5" in res.stderr and "Traceback" not in res.stderr


def test_explicit_boosting_rounds_are_kept_for_stop(tmp_path: Path) -> None:
    """`--n-estimators 200` means 200 for every learner (it once became stop's default 150)."""
    p = tmp_path
    _arith_curves(p)
    res = run_cli(
        "train",
        p / "curves.parquet",
        "--problems",
        p / "problems.parquet",
        "--learner",
        "stop",
        "--budget",
        "2",
        "--folds",
        "3",
        "--orders",
        "6",
        "--n-estimators",
        "200",
        "--out",
        p / "stop",
    )
    assert res.exit_code == 0, res.stderr
    meta = json.loads((p / "stop" / "policy.json").read_text())
    assert meta["provenance"]["params"]["n_estimators"] == 200


def test_bad_outputs_and_orders_are_one_line_errors(tmp_path: Path) -> None:
    p = tmp_path
    _arith_curves(p)
    run_cli("solve", p / "curves.parquet", "--budgets", "2", "--out", p / "alloc.parquet")
    base = [
        "train",
        p / "alloc.parquet",
        "--problems",
        p / "problems.parquet",
        "--budget",
        "2",
        "--folds",
        "3",
    ]
    run_cli(
        "estimate",
        p / "samples",
        "--problems",
        p / "problems.parquet",
        "--ks",
        "1",
        "--cost",
        "samples",
        "--out",
        p / "curves1.parquet",
    )
    one_k = ["train", p / "curves1.parquet", "--problems", p / "problems.parquet", "--budget", "2"]
    cases = [
        ([*one_k, "--folds", "3", "--cap", "1", "--out", p / "s1"], "no training states to learn"),
        ([*base, "--learner", "stop", "--fit-orders", "0", "--out", p / "s"], "--fit-orders 0"),
        ([*base, "--learner", "stop", "--out", p / "curves.parquet"], "is the curves input"),
        ([*base, "--learner", "imitate", "--out", p / "curves.parquet"], "is the curves input"),
    ]
    for args, message in cases:
        res = run_cli(*args)
        assert res.exit_code != 0 and message in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
    assert (p / "curves.parquet").is_file()  # untouched


def _signal_fits(lengths_informative: bool) -> tuple[StopFit, StopFit]:
    import dataclasses

    votes, lengths = _problems(300, 12, seed=3)
    if not lengths_informative:  # the same values, shuffled across problems: pure noise
        rng = np.random.default_rng(5)
        lengths = [lengths[i] for i in rng.permutation(len(lengths))]
    train = rp.replay(votes, [[1.0] * 12] * 300, orders=24, seed=3, extra=lengths)
    grid = stopping.Grid(cap=8, checkpoints=(1, 2, 4, 8))
    fold = np.arange(300) % 3
    opts = StopOptions(folds=3, n_estimators=60, seed=0)
    with_values = train_stopping(train, None, grid, 1.5, fold, opts)
    state_only = train_stopping(dataclasses.replace(train, extra=None), None, grid, 1.5, fold, opts)
    return with_values, state_only


def test_informative_lengths_are_kept_and_noise_is_left_out() -> None:
    from ttcalloc.learn.stopping import choose_signals

    kept = choose_signals(*_signal_fits(True))
    assert kept.use and kept.gain > 0.01
    dropped = choose_signals(*_signal_fits(False))
    assert not dropped.use and dropped.gain <= dropped.se
