"""`ttcalloc train` and `ttcalloc allocate`: learned policies, calibration, persistence, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers import make_questions, run_cli, sim_pipeline, write_jsonl

from ttcalloc.artifacts import io
from ttcalloc.artifacts.frames import to_dense
from ttcalloc.artifacts.schemas import CURVES
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.learn.policy import Policy, calibrate
from ttcalloc.stages import data
from ttcalloc.stages.allocate import allocate
from ttcalloc.stages.estimate import EstimateOptions, estimate_curves
from ttcalloc.stages.sample import SampleOptions, sample_problems
from ttcalloc.stages.solve import SolveOptions, solve_allocation
from ttcalloc.stages.train import TrainOptions, train_policy


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return sim_pipeline(tmp_path_factory.mktemp("pipeline"), 500)


@pytest.mark.parametrize("learner", ["imitate", "plugin"])
def test_train_calibrates_out_of_fold_and_round_trips(
    pipeline: dict[str, Path], tmp_path: Path, learner: str
) -> None:
    result = train_policy(
        pipeline["alloc"],
        pipeline["problems"],
        tmp_path / "policy",
        TrainOptions(budget=1.5, learner=learner),
    )
    m = result.metrics
    assert abs(m["oof_expected_cost"] / 1.5 - 1) <= 0.02  # out-of-fold cost meets the budget
    assert 0 <= m["oof_imitation_accuracy"] <= 1 and m["scored_on"] == "eval"
    meta = json.loads((tmp_path / "policy" / "policy.json").read_text())
    assert meta["learner"] == learner and meta["budget"] == 1.5
    assert all(f.endswith(".ubj") for f in meta["model_files"])
    assert not list((tmp_path / "policy").glob("*.pkl")) and not list(
        (tmp_path / "policy").glob("*.tmp")
    )
    # save/load round trip: the loaded policy decides exactly like the in-memory one did
    policy = Policy.load(tmp_path / "policy")
    questions = [r["question"] for r in make_questions(50, seed=9)]
    first = policy.choose_many(questions)
    again = Policy.load(tmp_path / "policy").choose_many(questions)
    assert first == again
    assert set(first) <= set(policy.actions)
    assert policy.choose(questions[0]) == first[0]


def test_training_is_deterministic_by_seed(pipeline: dict[str, Path], tmp_path: Path) -> None:
    a = train_policy(
        pipeline["alloc"], pipeline["problems"], tmp_path / "a", TrainOptions(budget=1.5, seed=3)
    )
    b = train_policy(
        pipeline["alloc"], pipeline["problems"], tmp_path / "b", TrainOptions(budget=1.5, seed=3)
    )
    assert a.metrics == b.metrics
    files = json.loads((tmp_path / "a" / "policy.json").read_text())["model_files"]
    assert len(files) == 5
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_calibrate_bisection() -> None:
    scores = np.log(np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.5, 0.5]]))
    costs = np.array([1.0, 4.0])
    per_problem = np.tile(costs, (4, 1))
    mu = calibrate(scores, costs, per_problem, 2.5)
    from ttcalloc.learn.policy import decide

    spent = per_problem[np.arange(4), decide(scores, costs, mu)].mean()
    assert spent <= 2.5 and spent == 2.5  # two of four problems upgraded
    assert (
        calibrate(scores, costs, per_problem, 100.0) < 0
    )  # slack: everyone gets the costly action


def test_errors_name_the_mismatch(pipeline: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="choose one with --budget"):
        train_policy(pipeline["alloc"], pipeline["problems"], tmp_path / "p")
    with pytest.raises(InputError, match="--budget 9: not in"):
        train_policy(
            pipeline["alloc"], pipeline["problems"], tmp_path / "p", TrainOptions(budget=9.0)
        )
    other = tmp_path / "other.parquet"
    data.build_problems(
        write_jsonl(tmp_path / "o.jsonl", make_questions(5, seed=2)),
        other,
        "gsm8k",
        data.DataOptions(id_field=None, limit=3),
    )
    io.write_artifact(
        io.read_artifact(other, data.PROBLEMS)
        .df.with_columns(pl.lit("x").alias("problem_id"))
        .head(1),
        other,
        data.PROBLEMS,
        stage="test",
    )
    with pytest.raises(DataError, match="allocation and problems do not match"):
        train_policy(pipeline["alloc"], other, tmp_path / "p", TrainOptions(budget=1.5))
    with pytest.raises(InputError, match="--learner 'magic'"):
        train_policy(
            pipeline["alloc"],
            pipeline["problems"],
            tmp_path / "p",
            TrainOptions(budget=1.5, learner="magic"),
        )


def test_policy_needing_metadata_the_problems_lack(tmp_path: Path) -> None:
    rows = [
        {
            "problem": q["question"],
            "answer": q["answer"].split()[-1],
            "level": 1 + i % 5,
            "subject": "Algebra",
        }
        for i, q in enumerate(make_questions(120))
    ]
    problems = tmp_path / "p.parquet"
    data.build_problems(write_jsonl(tmp_path / "m.jsonl", rows), problems, "math")
    sample_problems(
        problems, tmp_path / "s", SampleOptions(model="sim/strong", n=4, progress=False)
    )
    estimate_curves(
        tmp_path / "s", tmp_path / "c.parquet", EstimateOptions(ks=(1, 2), cost="samples")
    )
    solve_allocation(
        tmp_path / "c.parquet", tmp_path / "a.parquet", SolveOptions(budgets=(1.5,)), problems
    )
    train_policy(tmp_path / "a.parquet", problems, tmp_path / "policy", TrainOptions())
    assert "level" in Policy.load(tmp_path / "policy").feature_names
    bare = tmp_path / "bare.parquet"
    data.build_problems(write_jsonl(tmp_path / "g.jsonl", make_questions(5)), bare, "gsm8k")
    with pytest.raises(DataError, match="trained with feature 'level'"):
        allocate(tmp_path / "policy", bare, tmp_path / "plan.parquet")
    assert not (tmp_path / "plan.parquet").exists()


def test_cli_train_and_allocate(pipeline: dict[str, Path], tmp_path: Path) -> None:
    result = run_cli(
        "train",
        pipeline["alloc"],
        "--problems",
        pipeline["problems"],
        "--budget",
        "1.5",
        "--out",
        tmp_path / "policy",
        "--learner",
        "plugin",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["learner"] == "plugin"
    assert "gain vs uniform" in result.stderr
    result = run_cli(
        "allocate",
        tmp_path / "policy",
        pipeline["problems"],
        "--out",
        tmp_path / "plan.parquet",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["problems"] == 500
    missing = run_cli("allocate", tmp_path / "nope", pipeline["problems"])
    assert missing.exit_code == 1 and "run `ttcalloc train` first" in missing.stderr


@pytest.mark.shared_data
def test_real_codex_samples_end_to_end(codex: dict[str, Path], tmp_path: Path) -> None:
    problems = codex["problems"]
    for learner in ("imitate", "plugin"):
        result = train_policy(
            codex["allocation"], problems, tmp_path / learner, TrainOptions(learner=learner)
        )
        assert abs(result.metrics["oof_cost_over_budget"] - 1) <= 0.02
    allocate(tmp_path / "imitate", problems, tmp_path / "plan.parquet")
    dense = to_dense(io.read_artifact(codex["curves"], CURVES).df.filter(pl.col("half") == "fit"))
    assert len(dense.actions) == 5


def test_calibration_ignores_unavailable_actions() -> None:
    """Found on the GPT-4 MoT file: a problem lacking maj@6 scores -inf there, which made the
    bisection bracket infinite and mu = -inf (every problem at maj@1, whatever the budget)."""
    rng = np.random.default_rng(0)
    scores = rng.random((200, 3))
    scores[:5, 2] = -np.inf  # maj@4 unavailable for five problems
    costs = np.array([1.0, 2.0, 4.0])
    cost_matrix = np.where(np.isfinite(scores), costs, np.inf)
    mu = calibrate(scores, costs, cost_matrix, 2.0)
    assert np.isfinite(mu)
    chosen = cost_matrix[np.arange(200), np.argmax(scores - mu * costs, axis=1)]
    assert 1.8 <= chosen.mean() <= 2.0


def test_allocate_budget_recalibrates_on_the_batch(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    train_policy(
        pipeline["alloc"], pipeline["problems"], tmp_path / "policy", TrainOptions(budget=1.5)
    )
    for budget in (1.2, 2.0, 3.5):
        result = allocate(
            tmp_path / "policy", pipeline["problems"], tmp_path / f"plan{budget}.parquet", budget
        )
        assert result.recalibrated and result.budget == budget
        assert budget - 0.05 <= result.expected_cost <= budget + 1e-9
    bad = run_cli(
        "allocate",
        tmp_path / "policy",
        pipeline["problems"],
        "--budget",
        "0.5",
        "--out",
        tmp_path / "x.parquet",
    )
    assert bad.exit_code == 2 and "--budget 0.5" in bad.stderr


def test_the_fold_models_are_saved_and_loaded(pipeline: dict[str, Path], tmp_path: Path) -> None:
    """policy.json lists one UBJ file per fold; the loaded policy scores each question with one
    of those fold models (shrunk by the recorded weight); and the fold models are the ones mu was
    calibrated on: each one's choices on its own held-out fold reproduce the out-of-fold cost."""
    from ttcalloc.common.hashing import seeded_folds
    from ttcalloc.core.shrinkage import shrink
    from ttcalloc.learn.learners import FoldEnsemble, Shrunk, load_model

    result = train_policy(
        pipeline["alloc"],
        pipeline["problems"],
        tmp_path / "policy",
        TrainOptions(budget=1.5, folds=4, learner="plugin"),
    )
    meta = json.loads((tmp_path / "policy" / "policy.json").read_text())
    folds = meta["model_folds"]
    assert len(folds) == 4 and all(len(f) == 3 for f in folds)  # 3 actions: 3 regressors
    assert meta["model_files"] == [f for fs in folds for f in fs]
    assert all(
        (tmp_path / "policy" / f).exists() and f.endswith(".ubj") for fs in folds for f in fs
    )
    assert not list((tmp_path / "policy").glob("*.pkl"))
    policy = Policy.load(tmp_path / "policy")
    assert isinstance(policy.model, Shrunk) and isinstance(policy.model.model, FoldEnsemble)
    assert len(policy.model.model.members) == 4
    weight = meta["shrinkage"]["weight"]
    weight = float("inf") if weight is None else weight
    assert weight == (result.metrics["shrink_weight"] or float("inf"))

    problems = io.read_artifact(pipeline["problems"], data.PROBLEMS).df
    train = problems.filter(pl.col("split") == "train").sort("problem_id")
    x = policy.matrix(train["question"].to_list())
    members = [load_model("plugin", tmp_path / "policy", f, 3) for f in folds]
    target = np.array(meta["shrinkage"]["target"])
    # each question is scored by one fold model, the same one every time
    assert meta["model_combine"] == "route"
    who = policy.model.model.route(x)
    assert set(who.tolist()) == {0, 1, 2, 3}
    routed = np.stack([members[k].scores(x[i : i + 1])[0] for i, k in enumerate(who)])
    np.testing.assert_allclose(policy.model.scores(x), shrink(routed, target, weight))
    np.testing.assert_array_equal(policy.model.model.route(x[::-1]), who[::-1])
    # out of fold: fold k's model scores fold k's problems; mu gives the recorded cost
    fold = np.array(seeded_folds(train["problem_id"].to_list(), 4, 0))
    oof = np.empty_like(routed)
    for k, m in enumerate(members):
        oof[fold == k] = m.scores(x[fold == k])
    from ttcalloc.learn.policy import decide

    choice = decide(shrink(oof, target, weight), policy.costs, policy.mu)
    # mu sits exactly where one problem switches action, so rounding in the saved models may
    # flip that one problem (a cost step of at most 3 samples)
    assert float(policy.costs[choice].mean()) == pytest.approx(
        result.metrics["oof_expected_cost"], abs=3 / len(choice) + 1e-9
    )


def test_a_single_model_policy_folder_still_loads(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    """Policy folders written before fold ensembles (one model.ubj, no shrinkage) still load."""
    from ttcalloc.learn.learners import ImitateModel

    train_policy(
        pipeline["alloc"], pipeline["problems"], tmp_path / "new", TrainOptions(budget=1.5)
    )
    meta = json.loads((tmp_path / "new" / "policy.json").read_text())
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.ubj").write_bytes((tmp_path / "new" / meta["model_folds"][0][0]).read_bytes())
    for key in ("model_folds", "shrinkage"):
        del meta[key]
    meta["model_files"] = ["model.ubj"]
    (old / "policy.json").write_text(json.dumps(meta))
    policy = Policy.load(old)
    assert isinstance(policy.model, ImitateModel)
    questions = [r["question"] for r in make_questions(20, seed=3)]
    assert set(policy.choose_many(questions)) <= set(policy.actions)
