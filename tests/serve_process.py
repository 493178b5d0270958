"""``ttcalloc serve`` started for real, as a child process on a free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running server: its process, base URL (``.../v1``), and its stderr file."""

    proc: subprocess.Popen[str]
    url: str
    stderr: Path

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8")


def start(policy: Path, state: Path, *args: str, port: int | None = None) -> Served:
    """Start ``ttcalloc serve POLICY --state-dir STATE ARGS`` and wait for /health.

    Without ``port``, a free port is picked; it is free when picked but the child binds it
    later, and another process (a parallel test, another user) may take it in between: the
    child then exits with "address already in use", and it is started again on a new port."""
    if port is not None:
        return _start_on(policy, state, args, port)
    for _ in range(BIND_ATTEMPTS - 1):
        try:
            return _start_on(policy, state, args, free_port())
        except PortTaken:
            continue
    return _start_on(policy, state, args, free_port())


BIND_ATTEMPTS = 5


class PortTaken(RuntimeError):
    """The port picked for the child was taken before the child bound it."""


def _start_on(policy: Path, state: Path, args: tuple[str, ...], port: int) -> Served:
    cmd = [sys.executable, "-m", "ttcalloc", "serve", str(policy), "--state-dir", str(state),
           "--port", str(port), *args]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test-dummy-key"}
    err = state.parent / f"serve-{port}.stderr"
    with err.open("w") as handle:
        proc = subprocess.Popen(cmd, env=env, stderr=handle, stdout=subprocess.DEVNULL, text=True)
    served = Served(proc, f"http://127.0.0.1:{port}/v1", err)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = served.log()
            if "address already in use" in log.lower():
                raise PortTaken(f"port {port} was taken before serve bound it: {log}")
            raise RuntimeError(f"serve exited with {proc.returncode}: {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{served.root}/health", timeout=1).status_code == 200:
                return served
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"serve did not answer /health within 60 s: {served.log()}")


@contextlib.contextmanager
def serving(policy: Path, state: Path, *args: str) -> Iterator[Served]:
    """A server for the block; stopped with SIGTERM (killed if it does not stop) after it."""
    served = start(policy, state, *args)
    try:
        yield served
    finally:
        stop(served)


def stop(served: Served, sig: int = signal.SIGTERM) -> int:
    if served.proc.poll() is None:
        served.proc.send_signal(sig)
        try:
            served.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            served.proc.kill()
            served.proc.wait()
    return served.proc.returncode
