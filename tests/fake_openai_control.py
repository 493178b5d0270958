"""Fake OpenAI servers a test controls without timing: one that holds requests until released,
and one that goes away at a moment the test picks, then says how many requests it received.

:class:`HeldServer` holds every request numbered ``hold_from`` or later until
:meth:`HeldServer.release`, so a test can act while requests are certainly in flight (a
server's in-flight gauge, a signal), or while a run certainly has work left (a kill that must
land mid-run), however slow the machine.  :func:`shut_down` stops a server started by
:func:`closable_openai` and waits for the requests it had accepted, so that its count is final.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fake_openai import FakeServer, fake_openai


class HeldServer(FakeServer):
    """A FakeServer that holds each answered request numbered ``hold_from`` or later until
    :meth:`release` (a request given a fault is not held).  Released, it answers as
    FakeServer; a request still held after ``hold_limit_s`` is answered anyway, so no thread
    outlives a failed test by long."""

    def __init__(self, hold_from: int = 1, hold_limit_s: float = 300.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold_from, self.hold_limit_s = hold_from, hold_limit_s
        self.gate = threading.Event()
        self.held = 0  # requests waiting at the gate now

    def choice(self, i: int, text: str, number: int, logprobs: bool) -> dict[str, Any]:
        if i == 0 and number >= self.hold_from and not self.gate.is_set():
            with self.lock:
                self.held += 1
            try:
                self.gate.wait(self.hold_limit_s)
            finally:
                with self.lock:
                    self.held -= 1
        return super().choice(i, text, number, logprobs)

    def release(self) -> None:
        """Answer the held requests and every later one."""
        self.gate.set()


@contextmanager
def held_openai(hold_from: int = 1, **kwargs: Any) -> Iterator[HeldServer]:
    """A :class:`HeldServer` holding requests ``hold_from`` on (all released at the end)."""
    with fake_openai(HeldServer, hold_from=hold_from, **kwargs) as server:
        assert isinstance(server, HeldServer)
        try:
            yield server
        finally:
            server.release()


class _Accepted:
    """Counts the connections a server accepted (counted as accepted, before the thread that
    handles one starts) and has not finished handling."""

    def __init__(self, server: FakeServer) -> None:
        httpd = server.httpd
        assert httpd is not None
        self.busy, self.lock = 0, threading.Lock()
        handle, process = httpd.process_request, httpd.process_request_thread

        def accepted(request: Any, address: Any) -> None:
            with self.lock:
                self.busy += 1
            handle(request, address)

        def handled(request: Any, address: Any) -> None:
            try:
                process(request, address)
            finally:
                with self.lock:
                    self.busy -= 1

        # socketserver looks both up on the instance for every connection
        httpd.process_request = accepted  # type: ignore[method-assign]
        httpd.process_request_thread = handled  # type: ignore[method-assign]


_ACCEPTED: dict[int, _Accepted] = {}


@contextmanager
def closable_openai(**kwargs: Any) -> Iterator[FakeServer]:
    """A FakeServer that :func:`shut_down` can stop at a moment the test picks."""
    with fake_openai(**kwargs) as server:
        _ACCEPTED[id(server)] = _Accepted(server)  # before anyone knows its address
        try:
            yield server
        finally:
            _ACCEPTED.pop(id(server), None)


def shut_down(server: FakeServer, timeout: float = 60.0) -> int:
    """The server goes away: it stops accepting and its port refuses connections; once the
    requests it had accepted are handled (``timeout`` s at most), how many it received."""
    accepted, httpd = _ACCEPTED[id(server)], server.httpd
    assert httpd is not None
    httpd.shutdown()  # no connection is accepted after this returns
    httpd.server_close()
    deadline = time.monotonic() + timeout
    while accepted.busy:
        if time.monotonic() > deadline:
            raise AssertionError(f"{accepted.busy} requests still handled {timeout:g} s after")
        time.sleep(0.01)
    return len(server.requests)


def wait_held(server: HeldServer, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """Wait until ``server`` holds a request of the child ``proc``, which then cannot finish
    (a signal sent now lands mid-run); fail if the child exits first or after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while server.held == 0:
        if proc.poll() is not None:
            raise AssertionError(
                f"the child exited ({proc.returncode}) before a request was held: "
                f"{len(server.requests)} arrived, holding from {server.hold_from}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no request held within {timeout:g} s: {len(server.requests)} arrived"
            )
        time.sleep(0.02)
