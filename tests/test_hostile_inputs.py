"""Smaller cases of issue 25's hostile trial: each is one ``error:`` line naming what is wrong
(the file and line, the flag given), never a traceback."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli, small_imitate_policy

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_imitate_policy(tmp_path_factory.mktemp("hostile"))


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_non_utf8_bytes_in_a_jsonl_name_the_file_and_line(policy: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = b'{"question": "What is 1+2?", "answer": "3"}\n'
    bad.write_bytes(good + b'{"question": "caf\xe9: what is 1+1?", "answer": "2"}\n')
    both = [
        ("data", "jsonl", "--source", bad, "--out", tmp_path / "p.parquet"),
        ("run", policy, bad, "--model", "sim/medium", "--budget", "1.5", "--out",
         tmp_path / "a.parquet", "--no-progress"),
    ]  # fmt: skip
    for args in both:
        r = run_cli(*args)
        line = _one_error_line(r.stderr)
        assert r.exit_code != 0 and f"{bad}: line 2: not UTF-8" in line, line
    assert not (tmp_path / "p.parquet").exists() and not (tmp_path / "a.parquet").exists()
    whole = tmp_path / "bad.json"
    whole.write_bytes(b'[{"question": "caf\xe9", "answer": "2"}]')
    r = run_cli("data", "jsonl", "--source", whole, "--out", tmp_path / "p.parquet")
    assert r.exit_code != 0 and f"{whole}: the file: not UTF-8" in _one_error_line(r.stderr)


def test_a_settings_mismatch_names_the_samples_out_flag(policy: Path, tmp_path: Path) -> None:
    rows = [{"question": f"What is {i}+1?", "answer": str(i + 1)} for i in range(4)]
    q = tmp_path / "q.jsonl"
    q.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = tmp_path / "drawn"
    base = ["run", policy, q, "--model", "sim/medium", "--budget", "1.5", "--no-progress",
            "--samples-out", samples]  # fmt: skip
    r = run_cli(*base, "--out", tmp_path / "a.parquet")
    assert r.exit_code == 0, r.stderr
    r = run_cli(*base, "--out", tmp_path / "b.parquet", "--temperature", "0.2")
    line = _one_error_line(r.stderr)
    assert r.exit_code != 0 and line.startswith(f"error: --samples-out {samples}: holds"), line
    assert "temperature=0.7" in line and line.endswith("or another --samples-out"), line


def _limited(args: list[object], limit: int) -> subprocess.CompletedProcess[str]:
    """``python -m ttcalloc ARGS`` with files limited to ``limit`` bytes (a full disk)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "ttcalloc", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, preexec_fn=cap)


@pytest.mark.parametrize("limit_kb", [2, 8, 12, 20])
def test_a_full_disk_while_sampling_names_the_file(
    policy: Path, tmp_path: Path, limit_kb: int
) -> None:
    # at some limits the part was written and closing the emptied journal failed: the error
    # line named no file ("error: file too large")
    problems = policy.parent / "problems.parquet"
    out = tmp_path / "s"
    args = ["sample", problems, "--model", "sim/medium", "--n", "4", "--out", out, "--no-progress"]
    r = _limited(args, limit_kb * 1024)
    line = _one_error_line(r.stderr)
    assert r.returncode == 1 and f"{out}/" in line and "file size limit" in line, line


def test_a_missing_budget_folder_points_at_the_single_budget_policy(tmp_path: Path) -> None:
    """`train --budget B` (or `--budgets B`, one value) writes the policy in --out itself;
    asking for OUT/bB says where it is."""
    (tmp_path / "cas").mkdir()
    (tmp_path / "cas" / "policy.json").write_text("{}", encoding="utf-8")
    res = run_cli("evaluate", f"c={tmp_path / 'cas' / 'b0.004'}", "--out", tmp_path / "rep")
    assert res.exit_code != 0 and not (tmp_path / "rep").exists()
    assert f"{tmp_path / 'cas' / 'policy.json'} is one" in res.output
    assert "a single budget's policy is written in --out itself" in res.output


def test_the_budget_folder_hint_is_for_policies_in_budget_folders_only(tmp_path: Path) -> None:
    """A missing samples file in a folder whose name starts with b (backup/) is only missing."""
    (tmp_path / "backup").mkdir()
    (tmp_path / "samples.parquet").write_bytes(b"")
    res = run_cli(
        "estimate", tmp_path / "backup" / "samples.parquet", "--out", tmp_path / "c.parquet"
    )
    assert res.exit_code != 0
    assert "samples file not found (run" in res.output and "single budget" not in res.output
