"""`ttcalloc solve`: the oracle stage on curves artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers import run_cli

from ttcalloc.artifacts import io
from ttcalloc.artifacts.schemas import ALLOCATION, CURVES, PROBLEMS
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.core.curves import Dense
from ttcalloc.stages.estimate import EstimateOptions, estimate_curves
from ttcalloc.stages.solve import SolveOptions, compute_allocation, solve_allocation


def write_curves(path: Path, table: dict[str, list[float]], half: str = "all") -> Path:
    """Curves for problems p0.. with actions maj@k; ``table`` maps action -> accuracy per problem."""
    rows = []
    for action, accs in table.items():
        k = int(action.split("@")[1])
        for i, a in enumerate(accs):
            rows.append(
                {
                    "problem_id": f"p{i}",
                    "action": action,
                    "model": "m",
                    "strategy": "majority",
                    "k": k,
                    "accuracy": a,
                    "cost": float(k),
                    "half": half,
                    "n_samples": 16,
                }
            )
    io.write_artifact(
        pl.DataFrame(rows), path, CURVES, stage="test", extra_meta={"cost_unit": "samples"}
    )
    return path


CURVES_3 = {"maj@1": [0.2, 0.5, 0.0], "maj@2": [0.6, 0.55, 0.5], "maj@4": [0.7, 0.9, 0.5]}


def test_solve_meets_the_budget_and_beats_uniform(tmp_path: Path) -> None:
    curves = write_curves(tmp_path / "c.parquet", CURVES_3)
    result = solve_allocation(curves, tmp_path / "a.parquet", SolveOptions(budgets=(2.0,)))
    sol = result.solutions[0]
    assert sol["achieved_cost"] == pytest.approx(2.0)
    assert sol["objective"] >= sol["uniform_accuracy"] - 1e-12
    assert sol["lp_bound"] == pytest.approx(sol["objective"])
    alloc = io.read_artifact(tmp_path / "a.parquet", ALLOCATION).df
    assert alloc.height == 3 and set(alloc["budget"]) == {2.0}
    assert (alloc["p_hi"] <= 1).all() and (alloc["gap"] >= 0).all()
    # expected cost from the mixing columns equals the budget
    cost_of = {"maj@1": 1.0, "maj@2": 2.0, "maj@4": 4.0}
    expected = (
        sum(
            (1 - r["p_hi"]) * cost_of[r["action_lo"]] + r["p_hi"] * cost_of[r["action_hi"]]
            for r in alloc.iter_rows(named=True)
        )
        / 3
    )
    assert expected == pytest.approx(2.0)


# Problem a gains 1 from its second sample, b gains 0.1: any budget above 1 goes to a first.
DENSE_2 = Dense(
    ["a", "b"],
    ["maj@1", "maj@2"],
    np.array([[0.0, 1.0], [0.5, 0.6]]),
    np.array([[1.0, 2.0], [1.0, 2.0]]),
)


def test_compute_allocation_on_arrays_floor() -> None:
    rows, sols = compute_allocation(DENSE_2, SolveOptions(budgets=(1.5, 1.25), rounding="floor"))
    assert rows["budget"].to_list() == [1.5, 1.5, 1.25, 1.25]  # one block per budget, in order
    assert rows["action"].to_list() == ["maj@2", "maj@1", "maj@1", "maj@1"]
    assert (rows["p_hi"] == 0).all()
    at_15, at_125 = sols
    assert at_15["objective"] == pytest.approx(0.75) and at_15["achieved_cost"] == 1.5
    assert at_15["uniform_accuracy"] == pytest.approx(0.5 * 0.25 + 0.5 * 0.8)  # half at maj@2
    assert at_125["objective"] == pytest.approx(0.25)  # a cannot afford maj@2 whole
    assert at_125["lp_bound"] == pytest.approx(0.5) and at_125["integer_gap"] == pytest.approx(0.25)


def test_compute_allocation_on_arrays_mix_and_infeasible() -> None:
    rows, (sol,) = compute_allocation(DENSE_2, SolveOptions(budgets=(1.25,)))
    a = rows.row(0, named=True)
    assert (a["action_lo"], a["action_hi"], a["p_hi"]) == ("maj@1", "maj@2", pytest.approx(0.5))
    assert sol["objective"] == pytest.approx(0.5) and sol["achieved_cost"] == pytest.approx(1.25)
    with pytest.raises(DataError, match=r"--budget 0.5 is below the minimum feasible mean cost 1 "):
        compute_allocation(DENSE_2, SolveOptions(budgets=(2.0, 0.5)))


def test_floor_rounding_never_exceeds_the_budget(tmp_path: Path) -> None:
    curves = write_curves(tmp_path / "c.parquet", CURVES_3)
    result = solve_allocation(
        curves, tmp_path / "a.parquet", SolveOptions(budgets=(1.5, 2.5, 3.3), rounding="floor")
    )
    alloc = io.read_artifact(tmp_path / "a.parquet", ALLOCATION).df
    for budget, group in alloc.group_by("budget"):
        assert group["cost"].mean() <= budget[0] + 1e-12
        assert (group["p_hi"] == 0).all()
    objectives = [s["objective"] for s in result.solutions]
    assert objectives == sorted(objectives)


def test_exact_and_bisect_write_the_same_solution(tmp_path: Path) -> None:
    curves = write_curves(tmp_path / "c.parquet", CURVES_3)
    a = solve_allocation(curves, tmp_path / "a.parquet", SolveOptions(budgets=(1.7, 3.0)))
    b = solve_allocation(
        curves, tmp_path / "b.parquet", SolveOptions(budgets=(1.7, 3.0), method="bisect")
    )
    for x, y in zip(a.solutions, b.solutions, strict=True):
        assert x["objective"] == pytest.approx(y["objective"], abs=1e-9)
        assert x["lambda"] == pytest.approx(y["lambda"], abs=1e-9)


def test_infeasible_and_slack_budgets(tmp_path: Path) -> None:
    curves = write_curves(tmp_path / "c.parquet", CURVES_3)
    with pytest.raises(
        DataError, match=r"--budget 0.5 samples is below the minimum feasible mean cost 1 samples "
    ):
        solve_allocation(curves, tmp_path / "a.parquet", SolveOptions(budgets=(0.5,)))
    assert not (tmp_path / "a.parquet").exists()
    slack = solve_allocation(curves, tmp_path / "a.parquet", SolveOptions(budgets=(100.0,)))
    sol = slack.solutions[0]
    assert sol["slack"] and sol["achieved_cost"] == pytest.approx(
        10 / 3
    )  # 4 + 4 + 2 (cheapest best)


def test_half_and_split_selection(tmp_path: Path) -> None:
    fit = write_curves(tmp_path / "fit.parquet", CURVES_3, half="fit")
    eval_ = write_curves(
        tmp_path / "eval.parquet", {k: [1 - x for x in v] for k, v in CURVES_3.items()}, half="eval"
    )
    both = pl.concat([io.read_artifact(fit, CURVES).df, io.read_artifact(eval_, CURVES).df])
    path = tmp_path / "c.parquet"
    io.write_artifact(
        both, path, CURVES, stage="test", extra_meta={"cross_fitted": True, "in_sample": False}
    )
    result = solve_allocation(path, tmp_path / "a.parquet", SolveOptions(budgets=(2.0,)))
    assert result.half == "fit" and not result.in_sample
    problems = tmp_path / "p.parquet"
    io.write_artifact(
        pl.DataFrame(
            {
                "problem_id": ["p0", "p1", "p2"],
                "question": ["a", "b", "c"],
                "answer": ["1"] * 3,
                "split": ["train", "test", "train"],
                "grader": ["numeric"] * 3,
            }
        ),
        problems,
        PROBLEMS,
        stage="test",
    )
    result = solve_allocation(path, tmp_path / "a.parquet", SolveOptions(budgets=(2.0,)), problems)
    assert result.split == "train" and result.problems == 2
    result = solve_allocation(
        path,
        tmp_path / "a.parquet",
        SolveOptions(budgets=(2.0,), split="test", half="eval"),
        problems,
    )
    assert result.problems == 1
    with pytest.raises(InputError, match="--split test: needs --problems"):
        solve_allocation(path, tmp_path / "a.parquet", SolveOptions(budgets=(2.0,), split="test"))
    with pytest.raises(DataError, match="no 'all' curves"):
        solve_allocation(path, tmp_path / "a.parquet", SolveOptions(budgets=(2.0,), half="all"))


def test_curves_and_problems_that_do_not_match(tmp_path: Path) -> None:
    curves = write_curves(tmp_path / "c.parquet", CURVES_3)
    problems = tmp_path / "p.parquet"
    io.write_artifact(
        pl.DataFrame(
            {
                "problem_id": ["x"],
                "question": ["a"],
                "answer": ["1"],
                "split": ["train"],
                "grader": ["numeric"],
            }
        ),
        problems,
        PROBLEMS,
        stage="test",
    )
    with pytest.raises(DataError, match="problem_id 'p0' is not in"):
        solve_allocation(curves, tmp_path / "a.parquet", SolveOptions(budgets=(2.0,)), problems)


def test_cli_solve(tmp_path: Path) -> None:
    curves = write_curves(tmp_path / "c.parquet", CURVES_3)
    out = tmp_path / "a.parquet"
    result = run_cli("solve", curves, "--budgets", "1.5,2,3", "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert [s["budget"] for s in payload["solutions"]] == [1.5, 2.0, 3.0]
    assert "oracle allocation" in result.stderr and "in-sample" in result.stderr
    meta = io.read_artifact(out, ALLOCATION).meta
    assert meta["solutions"][0]["lambda"] == payload["solutions"][0]["lambda"]
    assert run_cli("solve", curves).exit_code == 2  # neither --budget nor --budgets
    bad = run_cli("solve", curves, "--budget", "0.1", "--out", out)
    assert bad.exit_code == 1 and bad.stderr.strip().endswith(
        "in the curves' unit, samples: give at least 1"
    )
    assert "| 1.5 samples |" in result.stderr.replace("│", "|")  # the budget's unit beside it
    assert run_cli("solve", curves, "--budget", "2", "--method", "magic").exit_code == 2


@pytest.mark.shared_data
def test_real_gpt4_oracle_meets_budget_and_beats_uniform(
    gpt4: dict[str, Path], tmp_path: Path
) -> None:
    problems = gpt4["problems"]
    estimate_curves(
        gpt4["samples"], tmp_path / "c.parquet", EstimateOptions(ks=(1, 2, 4, 8)), problems
    )
    # the samples' 4 prompts taken in turn, the problems' best actions cost 1.45 samples on
    # average: budgets below that bind, 1.5 does not (every problem gets its best action)
    result = solve_allocation(
        tmp_path / "c.parquet",
        tmp_path / "a.parquet",
        SolveOptions(budgets=(1.1, 1.3, 1.5)),
        problems,
    )
    top = result.solutions[-1]
    assert top["slack"] and top["achieved_cost"] <= 1.5
    for sol in result.solutions[:-1]:
        assert not sol["slack"]
        assert sol["achieved_cost"] == pytest.approx(sol["budget"], abs=1e-9)
        assert sol["objective"] >= sol["uniform_accuracy"]
        assert sol["integer_gap"] <= sol["gap_bound"] + 1e-12


def test_an_infeasible_budget_names_its_unit_and_how_to_count_samples() -> None:
    from ttcalloc.stages.solve import infeasible_message

    text = infeasible_message(2.0, 107.8, "tokens")
    assert text.startswith("--budget 2 tokens is below the minimum feasible mean cost 107.8 tokens")
    assert "`ttcalloc estimate --cost samples`" in text
    assert "--cost samples" not in infeasible_message(0.5, 1.0, "samples")
    with pytest.raises(DataError, match=r"--budget 0.5 usd is below .* 1 usd"):
        compute_allocation(DENSE_2, SolveOptions(budgets=(0.5,)), "usd")


def test_cli_solve_errors_name_the_budget_flag_given(tmp_path: Path) -> None:
    """A budget given with --budgets is named --budgets in its errors, with --budget --budget."""
    curves = write_curves(tmp_path / "c.parquet", CURVES_3)
    out = tmp_path / "a.parquet"
    low = run_cli("solve", curves, "--budgets", "2,0.1", "--out", out)
    assert low.exit_code == 1
    assert "--budgets 0.1 samples is below the minimum feasible mean cost 1" in low.stderr
    assert "--budget 0.1" not in low.stderr
    one = run_cli("solve", curves, "--budgets", "0.1", "--out", out)  # one value: still --budgets
    assert one.exit_code == 1 and "--budgets 0.1 samples is below" in one.stderr
    single = run_cli("solve", curves, "--budget", "0.1", "--out", out)
    assert single.exit_code == 1 and "--budget 0.1 samples is below" in single.stderr
    negative = run_cli("solve", curves, "--budgets", "2,-1", "--out", out)
    assert negative.exit_code != 0 and "--budgets -1.0: must be a non-negative" in negative.stderr
