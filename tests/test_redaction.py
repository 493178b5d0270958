"""No credential in any file ttcalloc writes (issue 25): keys in ``--api-base``'s query string
(one of 3 characters) and a short key echoed back by a careless server (in completions and in error
messages) are looked for in every file of the output folders, during a run killed with
``kill -9`` (the journal, the lock, the parts) and after the rerun that finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai_control import held_openai, wait_held
from helpers import write_jsonl

ROOT = Path(__file__).resolve().parents[1]
SHORT_KEY = "k3Y9z"  # an env key shorter than 8 characters, echoed back by the server
QUERY_KEY = "q7w"  # a 3-character key in --api-base's query string
LONG_QUERY_KEY = "QKEYSECRET0123456789"


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from helpers import small_imitate_policy

    return small_imitate_policy(tmp_path_factory.mktemp("redact"))


def _files_text(*folders: Path) -> str:
    """Every file under ``folders`` (hidden ones too), as text."""
    blobs = [f.read_bytes() for d in folders if d.exists() for f in d.rglob("*") if f.is_file()]
    return b"\n".join(blobs).decode("latin-1")


def _assert_no_secret(text: str) -> None:
    for secret in (SHORT_KEY, QUERY_KEY, LONG_QUERY_KEY):
        assert secret not in text, secret


def _run(policy: Path, q: Path, out: Path, base: str) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "ttcalloc", "run", str(policy), str(q), "--model", "openai/fake",
        "--api-base", base, "--budget", "4", "--out", str(out), "--concurrency", "2",
        "--flush-every", "1000", "--retries", "0", "--no-progress", "--json",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": SHORT_KEY}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_no_key_in_any_file_written_during_and_after_a_killed_run(
    policy: Path, tmp_path: Path
) -> None:
    rows = [{"question": f"What is {i}+{i + 3}?", "answer": str(2 * i + 3)} for i in range(12)]
    q = write_jsonl(tmp_path / "q.jsonl", rows)
    out, samples = tmp_path / "out" / "a.parquet", tmp_path / "out" / "a-samples.parquet"
    faults = dict.fromkeys(range(3, 400, 5), "echo500")  # errors echoing the key, recorded
    # the 11th request is held: the kill lands mid-run however slow the machine
    with held_openai(hold_from=11, delay_s=0.1, echo=True, faults=faults) as server:
        base = f"{server.base}?key={QUERY_KEY}&api-key={LONG_QUERY_KEY}"
        proc = _run(policy, q, out, base)
        wait_held(server, proc)
        journals = list(samples.glob(".journal-*.jsonl"))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert journals, "the run was killed before its journal was written"
        # the keys reached no file: journal, lock, questions, parts
        assert journals[0].exists() and len(journals[0].read_text().splitlines()) > 1
        _assert_no_secret(_files_text(tmp_path / "out"))
        server.release()
        again = _run(policy, q, out, base)
        stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    text = _files_text(tmp_path / "out")
    assert "Hello key *** query" in text and "boom for key ***" in text  # echoes, masked
    _assert_no_secret(text + stdout + stderr)


def test_labelled_credentials_of_any_length_and_keys_in_use_are_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ttcalloc.common.redact import keep_url_secrets, mask_echo, redact, redact_echo

    assert redact("x-api-key: ab1") == "x-api-key: ***"
    assert redact('{"api_key": "q1"}') == '{"api_key": "***"}'
    assert redact("Authorization: Bearer ab1") == "Authorization: Bearer ***"
    assert redact("http://h/v1?key=a&n=2") == "http://h/v1?key=***&n=2"
    # prose is left alone: no value follows a name and a colon or equals sign
    assert redact("the api_key client option must be set") == (
        "the api_key client option must be set"
    )
    monkeypatch.setenv("OPENAI_API_KEY", "k3Y9z")
    keep_url_secrets("http://h/v1?token=zz9&model=m")
    said = "Incorrect API key provided: k3Y9z. Sent zz9; k3Y9zz and xzz9 are other words"
    assert (
        redact_echo(said)
        == "Incorrect API key provided: ***. Sent ***; k3Y9zz and xzz9 are other words"
    )
    assert mask_echo("#### k3Y9z") == "#### ***"
    # a base URL litellm reads from the environment: its key is masked where it is echoed
    monkeypatch.setenv("OPENAI_API_BASE", "http://h/v1?api-key=e5k")
    assert mask_echo("you sent e5k") == "you sent ***"
