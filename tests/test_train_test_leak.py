"""Train/test leaks the pipeline refuses or reports: a policy evaluated on a problems file whose
test questions it was trained on (another ``data --seed``), and a policy trained on an allocation
solved over test-split problems too (``solve`` without ``--problems``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli, sim_pipeline


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    paths = sim_pipeline(tmp_path_factory.mktemp("leak"), 120, seed=3)
    tmp = paths["tmp"]
    other = tmp / "problems_s1.parquet"
    res = run_cli(
        "data",
        "gsm8k",
        "--source",
        tmp / "q.jsonl",
        "--test-frac",
        "0.3",
        "--seed",
        "1",
        "--out",
        other,
    )
    assert res.exit_code == 0, res.stderr
    res = run_cli(
        "train", paths["alloc"], "--problems", paths["problems"], "--budget", "1.5",
        "--learner", "imitate", "--folds", "3", "--out", tmp / "policy",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    return paths | {"other": other, "policy": tmp / "policy"}


def _trained_and_other_test(pipeline: dict[str, Path]) -> tuple[set[str], list[str]]:
    """The policy's training questions, and the test questions of the other split's file."""
    import polars as pl

    a = pl.read_parquet(pipeline["problems"])
    b = pl.read_parquet(pipeline["other"])
    trained = set(a.filter(pl.col("split") == "train")["question"])
    return trained, b.filter(pl.col("split") == "test")["question"].to_list()


def _evaluate(policy: Path, problems: Path, out: Path) -> tuple[str, dict]:
    res = run_cli(
        "evaluate", policy, "--problems", problems, "--bootstrap", "100", "--orders", "4",
        "--no-plot", "--out", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    return res.stderr, json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_evaluate_says_when_test_questions_were_training_questions(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    trained, test_b = _trained_and_other_test(pipeline)
    hit = sum(q in trained for q in test_b)
    assert hit > 0
    said = f"was trained on {hit} of the {len(test_b)} test questions of {pipeline['other']}"
    stderr, report = _evaluate(pipeline["policy"], pipeline["other"], tmp_path / "leaky")
    assert said in " ".join(stderr.split())
    assert any(n.startswith("TRAIN/TEST LEAK: policy") for n in report["notes"])
    assert "TRAIN/TEST LEAK" in (tmp_path / "leaky" / "report.md").read_text(encoding="utf-8")

    stderr, report = _evaluate(pipeline["policy"], pipeline["problems"], tmp_path / "clean")
    assert "trained on" not in stderr and not any("LEAK" in n for n in report["notes"])


def test_an_older_policy_is_checked_against_its_recorded_problems_file(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(pipeline["policy"], old)
    info = json.loads((old / "policy.json").read_text(encoding="utf-8"))
    assert info["provenance"].pop("train_questions")["keys"]
    (old / "policy.json").write_text(json.dumps(info), encoding="utf-8")
    stderr, report = _evaluate(old, pipeline["other"], tmp_path / "r")
    assert f"(the train split of {pipeline['problems']})" in " ".join(stderr.split())
    moved = tmp_path / "problems_moved.parquet"
    pipeline["problems"].rename(moved)
    try:
        stderr, report = _evaluate(old, pipeline["other"], tmp_path / "r2")
        assert "cannot check that the test questions" in " ".join(stderr.split())
        assert any("cannot check" in n for n in report["notes"])
        stderr, report = _evaluate(old, moved, tmp_path / "r3")  # the same file, moved: silent
        assert "cannot check" not in stderr
    finally:
        moved.rename(pipeline["problems"])


def test_train_refuses_an_allocation_solved_over_test_problems(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    import polars as pl

    everything = tmp_path / "alloc_all.parquet"
    res = run_cli("solve", pipeline["curves"], "--budgets", "1.5", "--out", everything)
    assert res.exit_code == 0, res.stderr
    problems = pipeline["problems"]
    n_test = pl.read_parquet(problems).filter(pl.col("split") == "test").height
    res = run_cli(
        "train", everything, "--problems", problems, "--learner", "imitate", "--folds", "3",
        "--out", tmp_path / "p",
    )  # fmt: skip
    assert res.exit_code != 0 and not (tmp_path / "p").exists()
    said = " ".join(res.stderr.split())
    assert f"solved over {n_test} test-split problems of {problems} (solve without" in said
    assert f"--problems {problems} --budgets 1.5` so the prices are set on train" in said
    # solved with --problems: the train split only, and train takes it
    alloc = pl.read_parquet(pipeline["alloc"])
    train_ids = pl.read_parquet(problems).filter(pl.col("split") == "train")["problem_id"]
    assert set(alloc["problem_id"]) == set(train_ids)


def test_run_on_test_questions_it_was_trained_on_warns(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    """`run --split test` with another split's problems: one warning line, the run goes on."""
    trained, test_b = _trained_and_other_test(pipeline)
    hit = sum(q in trained for q in test_b)
    base = ["run", pipeline["policy"], "--model", "sim/medium", "--budget", "1.5", "--split",
            "test", "--no-progress"]  # fmt: skip
    res = run_cli(*base[:2], pipeline["other"], *base[2:], "--out", tmp_path / "b.parquet")
    assert res.exit_code == 0, res.stderr
    lines = [x for x in res.stderr.splitlines() if "was trained on" in x]
    assert lines == [
        f"warning: the policy was trained on {hit} of the {len(test_b)} test questions (its "
        "recorded training questions): its answers to them say nothing of new questions"
    ], res.stderr
    res = run_cli(*base[:2], pipeline["problems"], *base[2:], "--out", tmp_path / "a.parquet")
    assert res.exit_code == 0 and "was trained on" not in res.stderr, res.stderr
    # with --limit, of the questions answered
    first = test_b[:5]
    got = sum(q in trained for q in first)
    res = run_cli(*base[:2], pipeline["other"], *base[2:], "--limit", "5", "--out", tmp_path / "c.parquet")  # fmt: skip
    said = [x for x in res.stderr.splitlines() if "was trained on" in x]
    assert said == ([f"warning: the policy was trained on {got} of the 5 test questions (its recorded training questions): its answers to them say nothing of new questions"] if got else []), res.stderr  # fmt: skip


def test_a_question_is_the_same_whatever_its_spacing() -> None:
    from ttcalloc.artifacts.trained_on import question_key

    assert question_key("What is  2 +\n2?") == question_key(" What is 2 + 2? ")
    assert question_key("What is 2 + 2?") != question_key("What is 2 + 3?")
