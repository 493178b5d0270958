"""``ttcalloc run`` (and ``sample``) interrupted: a resume after SIGKILL on the fake OpenAI server
draws no sample twice, and SIGTERM stops a run or a sample on the simulated backend; the rerun
decides as a run that was never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from helpers import make_questions, signal_when, write_jsonl
from test_run import (
    _answers,
    _arith,
    _same_answers,
    trained_fixture,  # noqa: F401 (the `trained` fixture)
)

from ttcalloc.artifacts.io import read_artifact
from ttcalloc.artifacts.schemas import SAMPLES

ROOT = Path(__file__).resolve().parents[1]


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
    from fake_openai_control import held_openai, wait_held

    q = _arith(tmp_path, 12)
    out = tmp_path / "a.parquet"
    # the 13th request is held: the kill lands mid-run however slow the machine
    with held_openai(hold_from=13, delay_s=0.1, wrong_every=3) as server:
        proc = _runner(trained["imitate"], q, out, server.base)
        wait_held(server, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        first = len(server.requests)
        assert not out.exists() and first >= 13
        server.release()
        again = _runner(trained["imitate"], q, out, server.base)
        _, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        total = len(server.requests)
    df = _answers(out)
    samples = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    assert not samples.select("problem_id", "sample_idx").is_duplicated().any()
    assert total - samples.height <= 2, f"{total - samples.height} samples paid twice"
    assert df["samples"].sum() == samples.height


def _sim_run(
    policy: Path, q: Path, out: Path, *extra: str, command: str = "run"
) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "ttcalloc", command, str(policy), str(q), "--model", "sim/medium",
        "--out", str(out), "--flush-every", "100000", "--no-progress", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _journal_lines(folder: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in folder.glob(".journal-*.jsonl"))


def _terminate_when_drawing(proc: subprocess.Popen[str], folder: Path, lines: int) -> str:
    # checked while the run is stopped: it cannot end between the check and the signal
    signal_when(
        proc,
        lambda: folder.exists() and _journal_lines(folder) >= lines,
        signal.SIGTERM,
        f"{lines} journal lines in {folder}",
    )
    _, err = proc.communicate(timeout=120)
    return err


def test_sigterm_stops_a_run_on_the_simulated_backend_and_a_rerun_decides_the_same(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    q = write_jsonl(tmp_path / "q.jsonl", make_questions(400, seed=5))
    out, samples = tmp_path / "a.parquet", tmp_path / "a-samples.parquet"
    proc = _sim_run(trained["stop"], q, out, "--budget", "1.5")
    err = _terminate_when_drawing(proc, samples, 40)
    assert proc.returncode == 130 and "interrupted" in err, err
    assert not out.exists() and not list(samples.glob(".journal-*"))
    first = read_artifact(samples, SAMPLES).df.height
    assert first > 0
    again = _sim_run(trained["stop"], q, out, "--budget", "1.5", "--json")
    stdout, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    held = read_artifact(samples, SAMPLES).df
    assert not held.select("problem_id", "sample_idx").is_duplicated().any()
    assert json.loads(stdout)["sampling"]["written"] == held.height - first  # none drawn twice
    # the same answers and decisions as a run that was never interrupted
    ref = _sim_run(trained["stop"], q, tmp_path / "ref.parquet", "--budget", "1.5")
    _, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    _same_answers(_answers(out), _answers(tmp_path / "ref.parquet"))


def test_sigterm_stops_sample_on_the_simulated_backend(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "s"
    cmd = ["--n", "64", "--concurrency", "4"]
    proc = _sim_run_sample(trained["problems"], out, cmd)
    err = _terminate_when_drawing(proc, out, 40)
    assert proc.returncode == 130 and "interrupted" in err, err
    first = read_artifact(out, SAMPLES).df.height
    assert 0 < first < 40 * 64
    again = _sim_run_sample(trained["problems"], out, cmd)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    df = read_artifact(out, SAMPLES).df
    assert df.height == 40 * 64 and not df.select("problem_id", "sample_idx").is_duplicated().any()


def _sim_run_sample(problems: Path, out: Path, extra: list[str]) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "ttcalloc", "sample", str(problems), "--model", "sim/medium",
        "--out", str(out), "--flush-every", "100000", "--no-progress", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
