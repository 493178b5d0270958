"""``ttcalloc run`` end to end: static and adaptive policies on the simulated backend and the fake
OpenAI server, resume after SIGKILL, the hard budget, unlabeled questions, --compare uniform."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers import make_questions, run_cli, sim_pipeline, write_jsonl

from ttcalloc.artifacts.io import read_artifact
from ttcalloc.artifacts.schemas import ANSWERS, SAMPLES
from ttcalloc.core.vote import Ledger, majority, uniform_counts

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("run")
    p = sim_pipeline(tmp, 40)
    for learner in ("imitate", "stop"):
        r = run_cli(
            "train", p["alloc"], "--problems", p["problems"], "--budget", "1.5",
            "--learner", learner, "--out", tmp / learner,
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        p[learner] = tmp / learner
    return p


def _arith(tmp: Path, n: int, answers: bool = True) -> Path:
    rows = [{"question": f"What is {i}+{i + 3}?"} for i in range(n)]
    if answers:
        for i, r in enumerate(rows):
            r["answer"] = str(2 * i + 3)
    return write_jsonl(tmp / "arith.jsonl", rows)


def _answers(path: Path) -> pl.DataFrame:
    return read_artifact(path, ANSWERS).df


@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_run_on_the_simulated_backend_with_compare(
    trained: dict[str, Path], tmp_path: Path, learner: str
) -> None:
    q = write_jsonl(tmp_path / "new.jsonl", make_questions(30, seed=7))
    out = tmp_path / "answers.parquet"
    r = run_cli(
        "run", trained[learner], q, "--model", "sim/medium", "--budget", "2", "--out", out,
        "--compare", "uniform", "--no-progress", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    df = _answers(out)
    assert df.height == 30 and df["final_answer"].null_count() < 5
    assert df["correct"].null_count() == 0 and df["uniform_correct"].null_count() == 0
    result = json.loads(r.stdout)
    assert result["policy"] == ("adaptive" if learner == "stop" else "static")
    assert result["mean_cost"] <= 2 + 1e-9 or learner == "stop"
    c = result["comparison"]
    assert c["questions"] == 30 and c["interval"][0] <= c["difference"] <= c["interval"][1]
    assert abs(c["uniform_samples"] - c["policy_samples"]) <= 1 / 30 + 1e-9
    samples = read_artifact(tmp_path / "answers-samples.parquet", SAMPLES).df
    assert not samples.select("problem_id", "sample_idx").is_duplicated().any()
    # a rerun draws nothing new and answers the same
    again = run_cli(
        "run", trained[learner], q, "--model", "sim/medium", "--budget", "2", "--out",
        tmp_path / "again.parquet", "--samples-out", tmp_path / "answers-samples.parquet",
        "--no-progress", "--json",
    )  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["sampling"]["requests"] == 0
    assert (
        _answers(tmp_path / "again.parquet")["final_answer"].to_list()
        == df["final_answer"].to_list()
    )


def test_unlabeled_questions_data_run_allocate_and_refusals(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    q = _arith(tmp_path, 12, answers=False)
    problems = tmp_path / "unlabeled.parquet"
    r = run_cli("data", "jsonl", "--source", q, "--out", problems)
    assert r.exit_code == 1 and "--unlabeled" in r.stderr
    r = run_cli("data", "jsonl", "--source", q, "--unlabeled", "--out", problems)
    assert r.exit_code != 0 and "--grader" in r.stderr
    r = run_cli(
        "data", "jsonl", "--source", q, "--unlabeled", "--grader", "numeric", "--out", problems
    )
    assert r.exit_code == 0, r.stderr
    # run on the JSONL itself (grader given) and on the unlabeled problems table
    for source, extra in ((q, ["--grader", "numeric"]), (problems, [])):
        out = tmp_path / f"a-{source.suffix[1:]}.parquet"
        r = run_cli(
            "run", trained["imitate"], source, "--model", "sim/medium", "--budget", "1.5",
            "--out", out, "--no-progress", *extra,
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        df = _answers(out)
        assert (
            df.height == 12 and df["correct"].null_count() == 12 and df["gold"].null_count() == 12
        )
    r = run_cli("run", trained["imitate"], q, "--model", "sim/medium", "--budget", "1.5")
    assert r.exit_code != 0 and "--grader" in r.stderr
    r = run_cli(
        "allocate",
        trained["imitate"],
        problems,
        "--budget",
        "1.5",
        "--out",
        tmp_path / "plan.parquet",
    )
    assert r.exit_code == 0, r.stderr
    r = run_cli(
        "estimate", tmp_path / "a-parquet-samples.parquet", "--problems", problems,
        "--out", tmp_path / "c.parquet",
    )  # fmt: skip
    lines = [x for x in r.stderr.strip().splitlines() if x.strip()]
    assert r.exit_code != 0 and "unlabeled" in lines[-1] and len(lines) == 1, r.stderr


@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_hard_budget_is_never_exceeded(
    trained: dict[str, Path], tmp_path: Path, learner: str
) -> None:
    from fake_openai import fake_openai

    q = _arith(tmp_path, 20)
    with fake_openai(wrong_every=2) as server:
        r = run_cli(
            "run", trained[learner], q, "--model", "openai/fake", "--api-base", server.base,
            "--budget", "1.2", "--hard-budget", "--concurrency", "4", "--out",
            tmp_path / "a.parquet", "--no-progress", "--json",
        )  # fmt: skip
        sent = len(server.requests)
    assert r.exit_code == 0, r.stderr
    df = _answers(tmp_path / "a.parquet")
    assert df["samples"].sum() <= 1.2 * 20 and sent <= 1.2 * 20
    assert df["samples"].min() >= 1 and df["final_answer"].null_count() == 0


def test_adaptive_on_the_fake_server_spends_by_agreement(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    from fake_openai import fake_openai

    q = _arith(tmp_path, 16)
    with fake_openai() as server:
        r = run_cli(
            "run", trained["stop"], q, "--model", "openai/fake", "--api-base", server.base,
            "--budget", "1.5", "--out", tmp_path / "a.parquet", "--no-progress",
        )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    df = _answers(tmp_path / "a.parquet")
    assert df["correct"].all() and df["action"].str.starts_with("stop@").all()


def _runner(policy: Path, q: Path, out: Path, base: str) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "ttcalloc", "run", str(policy), str(q), "--model", "openai/fake",
        "--api-base", base, "--budget", "4", "--out", str(out), "--concurrency", "2",
        "--flush-every", "1000", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test-dummy-key"}
    return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)


def test_resume_after_sigkill_draws_no_sample_twice(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    from fake_openai import fake_openai

    q = _arith(tmp_path, 12)
    out = tmp_path / "a.parquet"
    with fake_openai(delay_s=0.1, wrong_every=3) as server:
        proc = _runner(trained["imitate"], q, out, server.base)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(server.requests) < 12:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        first = len(server.requests)
        assert not out.exists() and first >= 12
        again = _runner(trained["imitate"], q, out, server.base)
        _, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        total = len(server.requests)
    df = _answers(out)
    samples = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    assert not samples.select("problem_id", "sample_idx").is_duplicated().any()
    assert total - samples.height <= 2, f"{total - samples.height} samples paid twice"
    assert df["samples"].sum() == samples.height


def test_vote_and_budget_core() -> None:
    assert majority(["a", "b", "b", None, "a"]) == "a"  # tie: the first seen
    assert majority([None, None]) is None
    keys = np.linspace(0, 1, 10, endpoint=False)
    counts = uniform_counts(keys, 1.3, 4)
    assert counts.sum() == 13 and set(counts) == {1, 2}
    ledger = Ledger(total=5.0, worst=1.0, floor=1)
    ledger.open(["a", "b", "c"], [0, 0, 0])
    assert ledger.admit("a", 4) == 3  # two owed to b and c
    ledger.settle(3, 3.0)
    assert ledger.admit("a", 1) == 0 and ledger.admit("b", 2) == 1


def test_a_reused_samples_folder_does_not_answer_other_questions(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    first = _arith(tmp_path, 10, answers=False)  # no id field: ids are row numbers
    other = write_jsonl(
        tmp_path / "other.jsonl", [{"question": f"What is {i} * 7?"} for i in range(10)]
    )
    out = tmp_path / "ans.parquet"
    base = ["--model", "sim/medium", "--budget", "1.5", "--grader", "numeric", "--no-progress"]
    r = run_cli("run", trained["imitate"], first, *base, "--out", out)
    assert r.exit_code == 0, r.stderr
    r = run_cli("run", trained["imitate"], other, *base, "--out", out)
    assert r.exit_code != 0 and "is not the one its samples" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    # the same questions again are fine (and draw nothing)
    r = run_cli("run", trained["imitate"], first, *base, "--out", out, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["sampling"]["requests"] == 0


def test_a_hard_budget_rerun_answers_as_the_first_run(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    q = _arith(tmp_path, 30)
    args = ["--model", "sim/medium", "--budget", "1.5", "--hard-budget", "--no-progress"]
    out = tmp_path / "h.parquet"
    r = run_cli("run", trained["imitate"], q, *args, "--out", out)
    assert r.exit_code == 0, r.stderr
    first = _answers(out)
    r = run_cli("run", trained["imitate"], q, *args, "--out", out, "--json")
    assert r.exit_code == 0, r.stderr
    again = _answers(out)
    assert again["samples"].to_list() == first["samples"].to_list()
    assert again["final_answer"].to_list() == first["final_answer"].to_list()
    assert json.loads(r.stdout)["sampling"]["requests"] == 0


def test_run_refuses_before_drawing(trained: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "u").mkdir()
    labeled, unlabeled = _arith(tmp_path, 5), _arith(tmp_path / "u", 5, answers=False)
    base = ["--model", "sim/medium", "--no-progress"]
    out = tmp_path / "a.parquet"
    cases = [
        ([trained["stop"], labeled, "--budget", "0.5", "--out", out], "below one sample"),
        ([trained["stop"], labeled, "--budget", "0.0005", "--out", out], "below one sample"),
        (
            [trained["stop"], labeled, "--budget", "2", "--out", out, "--samples-out", out],
            "--samples-out",
        ),
        (
            [trained["stop"], unlabeled, "--budget", "2", "--grader", "numeric",
             "--compare", "uniform", "--out", out],
            "no gold answers",
        ),
        ([trained["stop"], labeled, "--budget", "2", "--out", trained["stop"] / "x.parquet"],
         "inside the policy folder"),
    ]  # fmt: skip
    cases += [
        ([trained["stop"], labeled, "--budget", "2", "--answer-field", "nope", "--out", out],
         "--answer-field 'nope'"),
        ([trained["stop"], labeled, "--budget", "2", "--id-field", "nope", "--out", out],
         "--id-field 'nope'"),
    ]  # fmt: skip
    for args, message in cases:
        r = run_cli("run", *args, *base)
        assert r.exit_code != 0 and message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert not out.exists() and not (tmp_path / "a-samples.parquet").exists()
    assert not (trained["stop"] / "x.parquet").exists()
