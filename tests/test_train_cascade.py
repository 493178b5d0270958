"""``train --learner cascade``'s caps: by default, per budget, 16 samples of each model or the
fit half, the larger only when it is clearly better out of fold; ``--cap`` sets one; neither
goes above a model's fit-half samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_run_models import _question, sample_row, two_model_curves

from ttcalloc.artifacts.io import read_artifact, write_artifact
from ttcalloc.artifacts.schemas import PROBLEMS, SAMPLES
from ttcalloc.core.cascade import clearly_better

SMALL = {"folds": 2, "n_estimators": 5, "orders": 4, "fit_orders": 2}


def test_caps_are_16_or_cap_and_never_above_the_fit_half(tmp_path: Path) -> None:
    from ttcalloc.stages.train_cascade import CascadeTrainOptions, train_cascade

    problems, _, curves = two_model_curves(tmp_path, n=40)  # fit half: 20 samples of each
    # the learned gains' caps (escalating after any sample: one fit per cap)
    small = {"budgets": (0.003,), "rule": "learned", "escalate_after": 1, **SMALL}
    for cap, want in ((None, [16, 16]), (8, [8, 8]), (64, [20, 20])):
        out = tmp_path / f"policy-{cap}"
        train_cascade(
            curves,
            problems,
            out,
            CascadeTrainOptions(**small) if cap is None else CascadeTrainOptions(cap=cap, **small),
        )
        meta = json.loads((out / "policy.json").read_text())
        assert meta["cascade"]["caps"] == want, (cap, meta["cascade"]["caps"])
        choice = meta["metrics"]["cap_choice"]
        if cap is None:  # both fitted; 20 samples add nothing on these questions
            assert choice["caps"] == [[16, 16], [20, 20]] and choice["chosen"] == 0
            assert len(choice["oof_accuracy"]) == 2
        else:
            assert choice is None


def _needle_samples(problems: pl.DataFrame, n: int) -> pl.DataFrame:
    """``weak``: right 8% of the time, a different random wrong number otherwise (so its
    majority over many samples is often right), $0.0001 a sample; ``strong``: right 95% of the
    time, $0.02 a sample."""
    rng = np.random.default_rng(1)
    rows = []
    for pid, answer in problems.select("problem_id", "answer").iter_rows():
        for model, p, cost in (("weak", 0.08, 1e-4), ("strong", 0.95, 2e-2)):
            for i in range(n):
                right = bool(rng.random() < p)
                pred = answer if right else str(int(answer) + 1 + int(rng.integers(0, 10**6)))
                rows.append(sample_row(pid, model, i, pred, right, cost))
    return pl.DataFrame(rows)


@pytest.mark.parametrize("calibrate_on", ["oof", "deployed"])
def test_the_fit_half_is_chosen_where_many_weak_samples_are_the_best_buy(
    tmp_path: Path, calibrate_on: str
) -> None:
    """At $0.004 a question (40 weak samples, a fifth of a strong one) the weak model's vote
    over 40 samples is right far more often than over 16: the default picks the fit half (on
    out-of-fold predictions, also where the price is calibrated on the deployed model's)."""
    from helpers import write_jsonl

    from ttcalloc.stages import data
    from ttcalloc.stages.estimate import EstimateOptions, estimate_curves
    from ttcalloc.stages.train_cascade import CascadeTrainOptions, train_cascade

    problems = tmp_path / "problems.parquet"
    rows = [_question(i, hard=False) for i in range(80)]
    data.build_problems(
        write_jsonl(tmp_path / "q.jsonl", rows), problems, "gsm8k", data.DataOptions(test_frac=0.3)
    )
    samples = tmp_path / "samples.parquet"
    df = _needle_samples(read_artifact(problems, PROBLEMS).df, 80)
    write_artifact(df, samples, SAMPLES, stage="test")
    curves = tmp_path / "curves.parquet"
    estimate_curves(samples, curves, EstimateOptions(ks=(1, 2, 4), cost="usd"), problems)
    out = tmp_path / "policy"
    opts = CascadeTrainOptions(budgets=(0.004,), calibrate_on=calibrate_on, rule="auto", **SMALL)
    (res,) = train_cascade(curves, problems, out, opts)
    assert res["in_sample"] == (calibrate_on == "deployed")
    choice = res["cap_choice"]
    assert choice["caps"] == [[16, 16], [40, 40]], choice
    assert choice["chosen"] == 1, choice
    assert choice["oof_accuracy"][1] > choice["oof_accuracy"][0] + 0.1, choice
    meta = json.loads((out / "policy.json").read_text())
    assert meta["cascade"]["caps"] == [40, 40]
    assert res["mean_samples"]["weak"] > 16  # it uses the larger cap
    # the MoT rule (a few weak samples, then the strong one) cannot buy that majority: kept out
    rule = res["rule_choice"]
    assert rule["chosen"] == "learned" and "rule" not in meta["cascade"], rule
    assert rule["considered"] == ["mot", "single"], rule
    acc = rule["oof_accuracy"]
    assert acc["learned"] > max(acc["mot"], acc["single"]), rule


def test_clearly_better_golden_cases() -> None:
    zero = np.zeros(4)
    assert clearly_better(zero, np.array([1.0, 1, 0, 0]))  # mean 0.5 > SE 0.29
    assert not clearly_better(zero, np.array([1.0, 0, 0, 0]))  # mean 0.25 = SE 0.25
    assert not clearly_better(np.zeros(1), np.array([1.0]))  # one problem: no standard error


@given(
    st.lists(st.floats(0, 1), min_size=2, max_size=30),
    st.lists(st.floats(-0.2, 0.2), min_size=2, max_size=30),
    st.floats(1e-3, 0.5),
)
def test_clearly_better_properties(base: list[float], step: list[float], shift: float) -> None:
    a = np.array(base)
    b = a + np.resize(np.array(step), len(a))
    assert not clearly_better(a, a)  # never over itself
    assert not (clearly_better(a, b) and clearly_better(b, a))  # never both ways
    assert clearly_better(a, a + shift)  # the same gain on every problem


@pytest.mark.parametrize(
    ("flag", "value", "said"),
    [
        ("--budgets", "-1", "--budgets -1: must be a positive number of dollars"),
        ("--budgets", "0.00001", "--budgets 1e-05: below the cost of the cheapest path"),
        ("--budget", "-1", "--budget -1: must be a positive number of dollars"),
        ("--budget", "0.00001", "--budget 1e-05: below the cost of the cheapest path"),
    ],
)
def test_a_budget_error_names_the_flag_it_was_given_with(
    tmp_path: Path, flag: str, value: str, said: str
) -> None:
    """One budget given with ``--budgets`` is named ``--budgets`` in its errors, not
    ``--budget`` (the flag was chosen by counting the budgets)."""
    from helpers import run_cli

    problems, _, curves = two_model_curves(tmp_path, n=4)
    r = run_cli(
        "train", curves, "--problems", problems, "--learner", "cascade", f"{flag}={value}",
        "--out", tmp_path / "policy", "--folds", "2", "--n-estimators", "5",
    )  # fmt: skip
    assert r.exit_code != 0
    assert said in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
