"""A policy records the grader, prompt and strategy of its training samples (stop and static
learners alike, validated on load), and ``run`` asks and grades with them unless a flag says
otherwise (then it warns in one line); older policy folders without them load as before.
``allocate`` on a stop policy names the ``run`` command to use instead."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import make_questions, run_cli, write_jsonl

from ttcalloc.artifacts.io import parquet_files, read_meta

PROMPT = "Answer briefly. End with '#### <number>'.\n\nQ: {question}"
KEYS = ("grader", "prompt", "prompt_template", "strategy")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Simulated samples drawn with a prompt file; an imitate and a stop policy trained on them."""
    tmp = tmp_path_factory.mktemp("recorded")
    (tmp / "prompt.txt").write_text(PROMPT, encoding="utf-8")
    q = write_jsonl(tmp / "q.jsonl", make_questions(40, seed=3))
    steps = [
        ("data", "gsm8k", "--source", q, "--test-frac", "0.3", "--out", tmp / "problems.parquet"),
        ("sample", tmp / "problems.parquet", "--model", "sim/medium", "--n", "8", "--prompt",
         tmp / "prompt.txt", "--no-progress", "--out", tmp / "samples"),
        ("estimate", tmp / "samples", "--problems", tmp / "problems.parquet", "--ks", "1,2,4",
         "--cost", "samples", "--out", tmp / "curves.parquet"),
        ("solve", tmp / "curves.parquet", "--problems", tmp / "problems.parquet", "--budgets",
         "1.5", "--out", tmp / "alloc.parquet"),
    ]  # fmt: skip
    for learner in ("imitate", "stop"):
        train = ("train", tmp / "alloc.parquet", "--problems", tmp / "problems.parquet",
                 "--learner", learner, "--folds", "3", "--out", tmp / learner)  # fmt: skip
        steps.append(train)
    for step in steps:
        r = run_cli(*map(str, step))
        assert r.exit_code == 0, (step[0], r.stderr)
    unlabeled = [{"question": f"What is {i} + {i + 2}?"} for i in range(8)]
    return {
        "tmp": tmp,
        "imitate": tmp / "imitate",
        "stop": tmp / "stop",
        "unlabeled": write_jsonl(tmp / "new.jsonl", unlabeled),
    }


def _policy(folder: Path) -> dict[str, object]:
    return dict(json.loads((folder / "policy.json").read_text()))


@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_the_policy_records_grader_prompt_and_strategy(
    trained: dict[str, Path], learner: str
) -> None:
    p = _policy(trained[learner])
    assert p["grader"] == "numeric" and p["strategy"] == "majority"
    assert str(p["prompt"]).startswith("file:prompt.txt:") and p["prompt_template"] == PROMPT


@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_run_on_unlabeled_questions_uses_the_policys_grader_and_prompt(
    trained: dict[str, Path], tmp_path: Path, learner: str
) -> None:
    out = tmp_path / "a.parquet"
    r = run_cli(
        "run", trained[learner], trained["unlabeled"], "--model", "sim/medium", "--budget",
        "1.5", "--out", out, "--no-progress",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "graded by" not in r.stderr and "--prompt" not in r.stderr, r.stderr
    part = parquet_files(tmp_path / "a-samples.parquet")[0]
    params = read_meta(part)["params"]
    assert params["prompt"] == _policy(trained[learner])["prompt"]
    assert params["prompt_template"] == PROMPT
    # a flag that differs is used, with one warning line each
    r = run_cli(
        "run", trained[learner], trained["unlabeled"], "--model", "sim/medium", "--budget",
        "1.5", "--grader", "exact", "--prompt", "auto", "--out", tmp_path / "b.parquet",
        "--no-progress",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    warnings = [x for x in r.stderr.splitlines() if "warning" in x and "SIMULATED" not in x]
    assert len(warnings) == 2, r.stderr
    assert "graded by exact" in r.stderr and "trained on answers graded by numeric" in r.stderr
    assert "--prompt auto" in r.stderr and "asking with auto instead" in r.stderr


def test_older_and_damaged_policy_folders(trained: dict[str, Path], tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(trained["imitate"], old)
    body = _policy(old)
    for key in KEYS:
        body.pop(key)
    (old / "policy.json").write_text(json.dumps(body))
    # without the fields: as before, the grader must be given for unlabeled questions
    args = ("run", old, trained["unlabeled"], "--model", "sim/medium", "--budget", "1.5",
            "--no-progress", "--out")  # fmt: skip
    r = run_cli(*map(str, args), str(tmp_path / "a.parquet"))
    assert r.exit_code != 0 and "give --grader" in r.stderr
    r = run_cli(*map(str, args), str(tmp_path / "b.parquet"), "--grader", "numeric")
    assert r.exit_code == 0, r.stderr
    for key, value, says in (
        ("grader", "bogus", "grader: 'bogus': expected one of numeric, math, exact"),
        ("prompt", "mine", "prompt: 'mine'"),
        ("prompt_template", "no placeholder", "prompt_template: expected a template"),
        ("strategy", "pass", "strategy: 'pass' differs from adaptive.strategy"),
    ):
        bad = tmp_path / f"bad-{key}"
        src = trained["stop"] if key == "strategy" else trained["imitate"]
        shutil.copytree(src, bad)
        body = _policy(bad) | {key: value}
        (bad / "policy.json").write_text(json.dumps(body))
        r = run_cli("info", bad)
        assert r.exit_code != 0 and r.stderr.count("error:") == 1, r.stderr
        assert says in r.stderr, r.stderr


def test_allocate_on_a_stop_policy_names_the_run_command(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    problems = trained["tmp"] / "problems.parquet"
    r = run_cli("allocate", trained["stop"], problems, "--out", tmp_path / "plan.parquet")
    assert r.exit_code != 0 and r.stderr.count("error:") == 1
    assert f"ttcalloc run {trained['stop']} {problems} --model MODEL --budget 1.5" in r.stderr
    assert "Python" not in r.stderr and "load_policy" not in r.stderr
