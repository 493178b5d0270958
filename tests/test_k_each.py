"""The plain "k each" baseline beside uniform, and how evaluate's tables say the realized cost."""

from __future__ import annotations

from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import polars as pl
import pytest
from helpers import run_cli, sim_pipeline
from hypothesis import given, settings

from ttcalloc.core.baselines import BASELINES, same_k_each, uniform
from ttcalloc.core.curves import Dense
from ttcalloc.core.mixes import EvalData, Unavailable, uniform_at_budget
from ttcalloc.stages.evaluate import EvaluateOptions, PolicySpec, evaluate_policies
from ttcalloc.stages.evaluate.render import realized
from ttcalloc.stages.solve import SolveOptions, solve_allocation
from ttcalloc.stages.train import TrainOptions, train_policy


def _data(acc: list[list[float]], ks: tuple[int, ...] = (1, 2, 4)) -> EvalData:
    a = np.array(acc)
    c = np.tile(np.array(ks, dtype=float), (a.shape[0], 1))
    dense = Dense([str(i) for i in range(a.shape[0])], [f"maj@{k}" for k in ks], a, c)
    qs = ["q"] * a.shape[0]
    return EvalData(dense.actions, dense, dense, qs, qs)


def test_two_each_is_maj2_for_everyone_where_uniform_mixes_maj1_and_maj4() -> None:
    # maj@2 barely above maj@1 (ties split): uniform at B = 2 skips it for a maj@1/maj@4 mix
    d = _data([[0.5, 0.52, 0.8], [0.3, 0.31, 0.6]])
    two = same_k_each(d, 2.0)
    assert two.params == {"action": "maj@2"}
    assert np.array_equal(two.cost, [2.0, 2.0])
    assert two.acc.mean() == pytest.approx(0.415)
    mixed = uniform(d, 2.0)
    assert mixed.params["lo"] == "maj@1" and mixed.params["hi"] == "maj@4"
    assert mixed.acc.mean() == pytest.approx(0.4 + (0.7 - 0.4) / 3)  # a third at maj@4
    with pytest.raises(Unavailable, match=r"no action costs exactly 1\.5 per problem"):
        same_k_each(d, 1.5)  # no action is invented between maj@1 and maj@2
    assert "k-each" in BASELINES and list(BASELINES)[:2] == ["uniform", "k-each"]


@settings(max_examples=80, deadline=None)
@given(
    acc=st.lists(
        st.lists(st.floats(0, 1, allow_nan=False), min_size=4, max_size=4), min_size=1, max_size=8
    ),
    j=st.integers(0, 3),
)
def test_k_each_is_the_action_costing_b_and_never_above_uniform(
    acc: list[list[float]], j: int
) -> None:
    ks = (1, 2, 4, 8)
    d = _data(acc, ks)
    out = same_k_each(d, float(ks[j]))
    brute = float(np.mean([row[j] for row in acc]))  # every problem at k = B
    assert out.acc.mean() == pytest.approx(brute, abs=1e-12)
    assert out.cost.mean() == ks[j]
    uni = uniform_at_budget(d.test.acc, d.test.cost, float(ks[j]))
    assert uni is not None and uni.accuracy >= brute - 1e-12


def test_realized_cost_is_said_where_it_differs_from_the_budget() -> None:
    def rec(budget: float, cost: float) -> dict[str, float]:
        return {"budget": budget, "cost": cost}

    assert realized([rec(8, 7.44), rec(8, 8.14), rec(8, 8.0), rec(2, 2)], 8) == (
        " (realized 7.44-8.14)"
    )
    assert realized([rec(2, 2.0), rec(2, 2.0004)], 2) == ""  # the same at 3 digits
    assert realized([rec(2, 2.08), rec(2, 2.08)], 2) == " (realized 2.08)"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    paths = sim_pipeline(tmp_path_factory.mktemp("k_each"), 240, seed=3)
    tmp = paths["tmp"]
    solve_allocation(
        paths["curves"], tmp / "alloc2.parquet", SolveOptions(budgets=(2.0,)), paths["problems"]
    )
    train_policy(
        tmp / "alloc2.parquet", paths["problems"], tmp / "p2", TrainOptions(budget=2.0, folds=3)
    )
    return paths


def test_evaluate_shows_k_each_at_the_budget_beside_uniform(
    sim: dict[str, Path], tmp_path: Path
) -> None:
    tmp = sim["tmp"]
    out = tmp_path / "report"
    result = run_cli(
        "evaluate", f"learned={tmp / 'p2'}", "--budgets", "1.5,2", "--bootstrap", "300",
        "--recalibrate", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    # B = 1.5: no action costs 1.5 samples; said, not invented
    assert "k-each at 1.5: no action costs exactly 1.5 per problem" in result.stderr
    assert "2 each (maj@2)" in result.stderr  # the CLI table's row
    import json

    report = json.loads((out / "report.json").read_text())
    rows = {(r["policy"], r["budget"]): r for r in report["policies"]}
    assert ("k-each", 1.5) not in rows
    two = rows[("k-each", 2.0)]
    assert two["cost"] == 2.0 and two["target_cost"] == 2.0 and two["params"]["action"] == "maj@2"
    assert two["gain_vs_uniform"] <= 1e-12  # uniform is never below it at its cost
    lo, hi = two["gain_vs_uniform_ci"]
    assert lo <= two["gain_vs_uniform"] <= hi
    # the learned policy (recalibrated to spend 2 on the test questions) is paired with 2 each
    learned = rows[("learned", 2.0)]
    assert learned["cost"] == pytest.approx(2.0, rel=0.05)
    assert "k-each" in learned["gain_vs"]
    diff, d_lo, d_hi, cost = learned["gain_vs"]["k-each"]
    assert cost == 2.0 and d_lo <= diff <= d_hi
    assert diff == pytest.approx(learned["accuracy"] - two["accuracy"])
    assert any("2 each (" in n and "paired, at cost" in n for n in report["notes"])
    metrics = pl.read_parquet(out / "metrics.parquet").filter(pl.col("policy") == "k-each")
    assert metrics["budget"].to_list() == [2.0] and metrics["gain_lo"][0] == lo
    md = (out / "report.md").read_text()
    assert "| k each (k = B) | - |" in md and "| 2 each (maj@2) |" in md
    assert "**k each**" in md and "upper hull" in md.split("## Glossary")[1]


def test_k_each_stays_at_the_budget_when_the_others_match_the_learned_cost(
    sim: dict[str, Path], tmp_path: Path
) -> None:
    tmp = sim["tmp"]
    report = evaluate_policies(
        [PolicySpec.parse(str(tmp / "p2"))], tmp_path / "r", EvaluateOptions(n_boot=200)
    ).report
    rows = {r["policy"]: r for r in report["policies"]}
    spent = rows["p2"]["cost"]
    assert rows["uniform"]["target_cost"] == pytest.approx(spent)
    assert rows["k-each"]["target_cost"] == 2.0 and rows["k-each"]["cost"] == 2.0
    md = (tmp_path / "r" / "report.md").read_text()
    assert f"B = 2{realized(report['policies'], 2.0)} |" in md
    if f"{spent:.3g}" != "2":  # the heading says what was spent
        assert "(realized " in md.split("\n## Budget 2")[1].split("\n")[0]


def test_the_cli_default_runs_k_each_and_verify_on_pass_curves(
    sim: dict[str, Path], tmp_path: Path
) -> None:
    """The CLI's default baselines are every registered one: on pass@k curves that is 2 each
    (pass@2) and verify, while esc and adaptive (majority-vote rules) are left out."""
    import json

    from ttcalloc.stages.estimate import EstimateOptions, estimate_curves

    tmp = sim["tmp"]
    curves = tmp_path / "pass.parquet"
    estimate_curves(
        tmp / "samples",
        curves,
        EstimateOptions(ks=(1, 2, 4), strategies=("pass",), cost="samples"),
        sim["problems"],
    )
    solve_allocation(
        curves, tmp_path / "alloc.parquet", SolveOptions(budgets=(2.0,)), sim["problems"]
    )
    train_policy(
        tmp_path / "alloc.parquet",
        sim["problems"],
        tmp_path / "p",
        TrainOptions(budget=2.0, folds=3),
    )
    out = tmp_path / "report"
    result = run_cli(
        "evaluate", tmp_path / "p", "--budgets", "2", "--bootstrap", "200", "--out", out
    )
    assert result.exit_code == 0, result.stderr
    names = {r["policy"] for r in json.loads((out / "report.json").read_text())["policies"]}
    assert {"uniform", "k-each", "verify"} <= names and not names & {"esc", "adaptive"}
    assert "2 each (pass@2)" in result.stderr


def test_a_row_first_met_at_a_later_budget_keeps_its_place() -> None:
    from ttcalloc.stages.evaluate.render import policy_order

    def at(budget: float, *names: str) -> list[dict[str, object]]:
        return [{"policy": n, "budget": budget} for n in names]

    records = [*at(1.5, "uniform", "random", "stop"), *at(2, "uniform", "k-each", "random", "stop")]
    assert policy_order(records) == ["uniform", "k-each", "random", "stop"]
    assert policy_order(at(2, "b", "a")) == ["b", "a"]
