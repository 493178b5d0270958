"""``ttcalloc serve`` against a hostile state directory and hostile requests: a ledger that is
not one, a second server on the same ledger, a port in use, a ledger that cannot be written
for a while, a body nested too deep.  The server runs for real (a child process)."""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import signal
import socket
import sqlite3
from pathlib import Path

import httpx
import pytest
from fake_openai import fake_openai
from fake_openai_hostile import endless_answer
from helpers import run_cli, small_imitate_policy, wait_until
from serve_process import free_port, serving, start, stop
from test_serve_http import in_flight

ASK = {"messages": [{"role": "user", "content": "What is 2+3?"}]}
SIM = ("--model", "sim/medium", "--budget", "1.5")


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_imitate_policy(tmp_path_factory.mktemp("serve-hostile"))


def refused(policy: Path, state: Path, *more: str) -> str:
    """``serve`` that must stop before listening: its one error line (exit code 2)."""
    result = run_cli("serve", policy, "--state-dir", state, "--port", str(free_port()), *SIM, *more)
    lines = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def foreign_db(path: Path, *statements: str) -> bytes:
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()
    return path.read_bytes()


def test_a_file_that_is_not_a_ledger_is_refused_in_one_line_and_left_alone(
    policy: Path, tmp_path: Path
) -> None:
    text = tmp_path / "text" / "ledger.sqlite"
    text.parent.mkdir()
    text.write_text("my notes, not a database\n")
    assert "not a ttcalloc serve ledger" in refused(policy, text.parent)
    assert text.read_text() == "my notes, not a database\n"
    cases = {
        "schema": ("CREATE TABLE rounds (x TEXT)",),
        "foreign": ("CREATE TABLE customers (name TEXT)",),
        "newer": ("PRAGMA user_version = 7",),
    }
    for name, statements in cases.items():
        path = tmp_path / name / "ledger.sqlite"
        before = foreign_db(path, *statements)
        line = refused(policy, path.parent)
        assert str(path) in line
        assert ("newer ttcalloc" if name == "newer" else "not a ttcalloc serve ledger") in line
        assert path.read_bytes() == before, name  # nothing added to someone else's database


def test_a_second_server_on_the_same_state_dir_and_a_port_in_use_are_one_line(
    policy: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with serving(policy, state, *SIM) as first:
        assert "held by another ttcalloc serve" in refused(policy, state)
        port = int(first.root.rsplit(":", 1)[1])
        line = refused(policy, tmp_path / "other", "--port", str(port))
        assert f"--port {port}" in line
        assert httpx.post(f"{first.url}/chat/completions", json=ASK, timeout=60).status_code == 200
    with serving(policy, state, *SIM) as again:  # the first one stopped: its lock is gone
        assert httpx.get(f"{again.root}/health").json()["ledger_requests"] == 1


def test_hostile_bodies_and_budget_headers_are_400s(policy: Path, tmp_path: Path) -> None:
    deep = b'{"messages": [{"role": "user", "content": "hi"}], "x": ' + b"[" * 100_000
    deep += b"]" * 100_000 + b"}"
    latin = '{"messages": [{"role": "user", "content": "caf\u00e9"}]}'.encode("latin-1")
    with serving(policy, tmp_path / "state", *SIM, "--max-body", str(1 << 22)) as srv:
        chat = f"{srv.url}/chat/completions"
        r = httpx.post(chat, content=deep, timeout=60)
        assert r.status_code == 400 and "nested too deep" in r.json()["error"]["message"]
        r = httpx.post(chat, content=latin, timeout=60)
        assert r.status_code == 400 and "not JSON" in r.json()["error"]["message"]
        for header in ("nan", "inf", "-0", "1e308"):
            r = httpx.post(chat, json=ASK, headers={"X-Ttcalloc-Budget": header}, timeout=60)
            assert r.status_code == 400 and "outside" in r.json()["error"]["message"], header
        assert httpx.post(f"{srv.url}/chat/completions", json=ASK, timeout=60).status_code == 200
    assert "Traceback" not in srv.log()


def test_a_ledger_that_cannot_be_written_gets_503_then_catches_up(
    policy: Path, tmp_path: Path
) -> None:
    """Another process holds the ledger's write lock (SQLite's failure is the one a full or
    read-only disk gives a commit): the window answered meanwhile is kept in memory, new
    requests get 503 with one line, and once the lock is gone the kept window is written."""
    state = tmp_path / "state"
    srv = start(policy, state, *SIM)
    chat, health = f"{srv.url}/chat/completions", f"{srv.root}/health"
    try:
        assert httpx.post(chat, json=ASK, timeout=60).status_code == 200
        wait_until(lambda: httpx.get(health).json()["ledger_requests"] == 1, "the first window")
        blocker = sqlite3.connect(state / "ledger.sqlite", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        assert httpx.post(chat, json=ASK, timeout=60).status_code == 200  # answered, unwritten
        wait_until(
            lambda: httpx.get(health).json()["unwritten_windows"] == 1, "the unwritten window"
        )
        assert httpx.get(health).json()["status"] == "ledger unwritable"
        r = httpx.post(chat, json=ASK, timeout=60)
        assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
        assert "cannot write (database is locked)" in r.json()["error"]["message"], r.text
        blocker.execute("ROLLBACK")
        blocker.close()
        wait_until(lambda: httpx.post(chat, json=ASK, timeout=60).status_code == 200, "a 200 again")
        wait_until(lambda: httpx.get(health).json()["ledger_requests"] == 3, "all three written")
        assert httpx.get(health).json()["unwritten_windows"] == 0
    finally:
        assert stop(srv) == 0
    log = srv.log()
    assert log.count("cannot write") == 1 and "Traceback" not in log, log
    db = sqlite3.connect(state / "ledger.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT SUM(requests) FROM rounds").fetchone()[0] == 3
    db.close()
    with serving(policy, state, *SIM) as again:  # a restart reads the three back
        assert httpx.get(f"{again.root}/health").json()["ledger_requests"] == 3


def test_a_write_waiting_for_a_foreign_lock_holds_up_no_request(
    policy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, a window's row was written on the event loop: while SQLite waited for a lock
    another process held (its busy timeout), nothing was answered, /health included.  The
    write waits on the ledger's own thread: with the wait as long as the lock is held, a
    reply, /health and another request are answered before it ends, and once the lock goes
    both rows are written, once each."""
    monkeypatch.setenv("TTCALLOC_LEDGER_BUSY_SECONDS", "600")  # longer than the test
    state = tmp_path / "state"
    srv = start(policy, state, *SIM)
    chat, health = f"{srv.url}/chat/completions", f"{srv.root}/health"
    try:
        assert httpx.post(chat, json=ASK, timeout=60).status_code == 200
        wait_until(lambda: httpx.get(health).json()["ledger_requests"] == 1, "the first window")
        blocker = sqlite3.connect(state / "ledger.sqlite", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:  # the next window's row waits for the lock, which only the test can end
            assert httpx.post(chat, json=ASK, timeout=60).status_code == 200
            now = httpx.get(health, timeout=60).json()
            assert now["ledger_requests"] == 1 and now["unwritten_windows"] == 0, now
            assert now["status"] == "ok", now  # no write has failed
            assert httpx.post(chat, json=ASK, timeout=60).status_code == 200
            assert httpx.get(health, timeout=60).json()["ledger_requests"] == 1
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        wait_until(lambda: httpx.get(health).json()["ledger_requests"] == 3, "both rows written")
        assert httpx.get(health).json()["unwritten_windows"] == 0
    finally:
        assert stop(srv) == 0
    log = srv.log()
    assert "cannot write" not in log and "Traceback" not in log, log
    db = sqlite3.connect(state / "ledger.sqlite")
    assert db.execute("SELECT COUNT(*), SUM(requests) FROM rounds").fetchone() == (3, 3)
    db.close()


def test_sigterm_with_an_upstream_that_never_answers_stops_after_the_grace(
    policy: Path, tmp_path: Path
) -> None:
    """The request in flight gets a JSON 503 once --shutdown-grace is over (not a bare 500
    and a traceback), the process exits 0, and its last line does not claim it was answered."""
    with fake_openai(delay_s=3600.0) as fake:
        srv = start(policy, tmp_path / "state", "--model", "openai/fake", "--api-base",
                    fake.base, "--budget", "1.5", "--timeout", "3600", "--shutdown-grace", "1")  # fmt: skip
        try:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                call = pool.submit(httpx.post, f"{srv.url}/chat/completions", json=ASK, timeout=120)
                wait_until(
                    lambda: bool(fake.requests) and in_flight(srv) == 1, "the request in flight"
                )
                srv.proc.send_signal(signal.SIGTERM)
                response = call.result()
            code = srv.proc.wait(timeout=60)
        finally:
            stop(srv, signal.SIGKILL)
    assert response.status_code == 503, response.text
    assert "stopping" in response.json()["error"]["message"]
    assert code == 0
    log = srv.log()
    assert "Traceback" not in log and "every request in flight was answered" not in log, log
    assert "1 requests in flight got 503" in log, log


def test_a_hostile_policy_folder_is_refused_before_listening(policy: Path, tmp_path: Path) -> None:
    """serve loads the policy through run's checks (an action drawing without limit), and a
    policy.json of a newer schema is refused rather than read as if it were this one's."""
    edits = {
        "huge": lambda d: d["actions"][-1].update(name="maj@100000000"),
        "newer": lambda d: d.update(schema_version=99),
    }
    for name, edit in edits.items():
        folder = tmp_path / name
        shutil.copytree(policy, folder)
        data = json.loads((folder / "policy.json").read_text())
        edit(data)
        (folder / "policy.json").write_text(json.dumps(data))
        result = run_cli("serve", folder, "--state-dir", tmp_path / f"state-{name}", *SIM)
        assert result.exit_code != 0 and "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "policy.json" in lines[0], result.stderr
        assert ("more than 1024 samples" if name == "huge" else "newer") in lines[0]
        assert not (tmp_path / f"state-{name}").exists()


def test_an_upstream_answering_endlessly_is_a_502_and_the_server_serves_on(
    policy: Path, tmp_path: Path
) -> None:
    """The lean client stops reading an answer at 64 MiB (it read to the end, in memory,
    until --timeout): the request gets a 502 saying so, the process stays up."""
    with endless_answer() as base, serving(policy, tmp_path / "state", "--model", "openai/fake",
                                           "--api-base", base, "--budget", "1.5", "--timeout",
                                           "60", "--retries", "0") as srv:  # fmt: skip
        r = httpx.post(f"{srv.url}/chat/completions", json=ASK, timeout=120)
        assert r.status_code == 502, r.text
        assert f"over {64 << 20} bytes" in r.json()["error"]["message"]
        assert httpx.get(f"{srv.root}/health").status_code == 200
    assert "Traceback" not in srv.log()


def test_sigterm_while_the_ledger_cannot_be_written_says_what_is_lost(
    policy: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    srv = start(policy, state, *SIM)
    try:
        blocker = sqlite3.connect(state / "ledger.sqlite", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        assert httpx.post(f"{srv.url}/chat/completions", json=ASK, timeout=60).status_code == 200
        health = f"{srv.root}/health"
        wait_until(
            lambda: httpx.get(health).json()["unwritten_windows"] == 1, "the unwritten window"
        )
        code = stop(srv)
    finally:
        stop(srv, signal.SIGKILL)
        blocker.close()
    log = srv.log()
    assert code == 0 and "Traceback" not in log, log
    assert "1 windows kept in memory; lost at exit" in log, log


def test_a_state_dir_inside_the_policy_folder_is_one_line(policy: Path, tmp_path: Path) -> None:
    folder = tmp_path / "policy"
    shutil.copytree(policy, folder)
    before = sorted(p.name for p in folder.iterdir())
    with socket.socket() as busy:  # were the check gone, the port in use stops serve anyway
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for state in (folder, folder / "state"):
            assert "inside the policy folder" in refused(folder, state, "--port", port)
    assert sorted(p.name for p in folder.iterdir()) == before
