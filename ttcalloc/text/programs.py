"""Program-of-thought answers: extract the code from a completion, run it, read its answer.

A PoT prompt (Chen et al. 2022) asks the model for a Python program whose variable ``ans`` holds
the answer.  :func:`extract_program` finds the code in a completion; :func:`run_programs` runs
each program in its own child process and returns its answer as a string: the value of ``ans``,
else ``answer``, else what a zero-argument ``solution()`` returns, else the last non-empty
printed line; ``None`` when there is no program, or it fails, times out or yields nothing.

This is NOT a security sandbox.  Each program runs in a child Python (``-I``) with an empty
environment, a fresh temporary working directory (removed afterwards), its stdout and stderr
detached from the parent's pipe, a wall-clock timeout that kills its process group and, on POSIX,
resource limits (address space, CPU seconds, file size, no new processes for non-root users).  It
can still read and write whatever files its user can, and use the network.  Programs come from the
model the user chose to call; run them only where that is acceptable.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

_MARK = "@@ttcalloc-pot-result@@"
_STDOUT_CAP = 64 * 1024  # bytes the parent reads from a child; the program's prints keep their tail
_STARTUP_S = 0.5  # wall-clock seconds the child's interpreter start-up gets on top of timeout_s
_FILE_MB = 1
_PYTHON_TAGS = ("", "python", "python3", "py")

# The child's runner.  It reads its spec (the code, the limits and a random token) from stdin,
# points fds 1 and 2 at /dev/null, keeps a private duplicate of the old fd 1 for its single result
# line (marker + token + JSON), runs the program with its prints captured in memory, and exits
# with os._exit so the program's atexit handlers cannot write after it.
_RUNNER = r"""
import inspect, json, math, numbers, os, sys
from datetime import date, datetime, timedelta

def main():
    spec = json.loads(sys.stdin.read())
    sys.stdin.close()
    token = spec.pop("token")
    res_fd = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    g = {"__name__": "__main__", "__builtins__": __builtins__, "math": math,
         "datetime": datetime, "date": date, "timedelta": timedelta}
    try:
        from dateutil.relativedelta import relativedelta
        g["relativedelta"] = relativedelta
    except Exception:
        pass
    limit(spec)

    class Tail:  # keeps the last `cap` characters printed, at most twice that in memory
        parts, size, flush = [], 0, lambda self: None
        def write(self, s):
            self.parts.append(str(s))
            self.size += len(self.parts[-1])
            if self.size > 2 * spec["cap"]:
                self.parts = ["".join(self.parts)[-spec["cap"]:]]
                self.size = len(self.parts[0])
            return len(self.parts[-1])

    out = Tail()
    sys.stdout = sys.stderr = out
    answer, done = None, False
    try:
        exec(compile(spec["code"], "<program>", "exec"), g)
        done = True
    except SystemExit as e:
        done = e.code in (None, 0)
    except BaseException:
        pass
    if done:
        try:
            answer = pick(g, "".join(out.parts))
        except BaseException:
            answer = None
    os.write(res_fd, (spec["mark"] + token + " " + json.dumps({"answer": answer}) + "\n").encode())
    os._exit(0)

def limit(spec):
    try:
        import resource
    except ImportError:
        return
    mb = 1 << 20
    for name, value in (("RLIMIT_AS", spec["memory_mb"] * mb), ("RLIMIT_CPU", spec["cpu_s"]),
                        ("RLIMIT_FSIZE", spec["file_mb"] * mb), ("RLIMIT_NPROC", 0),
                        ("RLIMIT_CORE", 0)):
        kind = getattr(resource, name, None)
        if kind is None:
            continue
        hard = resource.getrlimit(kind)[1]
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            pass

def fmt(v):
    if isinstance(v, numbers.Real) and not isinstance(v, numbers.Rational):
        x = float(v)
        if math.isfinite(x):
            r = round(x, 6)
            return str(int(r)) if r.is_integer() else repr(r)
    return str(v).strip() or None

def pick(g, printed):
    for name in ("ans", "answer"):
        v = g.get(name)
        if v is not None and not callable(v) and not inspect.ismodule(v):
            s = fmt(v)
            if s:
                return s
    f = g.get("solution")
    if callable(f):
        params = inspect.signature(f).parameters.values()
        if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in params):
            v = f()
            s = None if v is None else fmt(v)
            if s:
                return s
    lines = [ln.strip() for ln in printed.splitlines() if ln.strip()]
    return lines[-1] if lines else None

main()
"""


@dataclass(frozen=True)
class ProgramOptions:
    """Limits for one program: wall-clock seconds and address space in MB."""

    timeout_s: float = 5.0
    memory_mb: int = 512


def extract_program(text: str) -> str | None:
    """The code in a completion: the last ```python (or plain ```) fenced block, else the whole
    text if it parses as Python, else None.  An unclosed last block runs to the end of the text."""
    blocks: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if current is None and stripped.startswith("```"):
            current = []
            blocks.append((stripped[3:].strip().lower(), current))
        elif current is not None and re.fullmatch(r"```+", stripped):
            current = None
        elif current is not None:
            current.append(line)
    for tag, lines in reversed(blocks):
        code = textwrap.dedent("\n".join(lines)).strip("\n")
        if tag in _PYTHON_TAGS and code.strip():
            return code + "\n"
    if not text.strip():
        return None
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return text


def run_programs(
    programs: Sequence[str | None], options: ProgramOptions = ProgramOptions()
) -> list[str | None]:
    """Each program's answer (see the module docstring), in input order; a few run at once."""
    workers = max(1, min(4, os.cpu_count() or 1, len(programs)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda code: _run_one(code, options), programs))


def _run_one(code: str | None, options: ProgramOptions) -> str | None:
    """Run one program in a child process and read its result line."""
    if code is None or not code.strip():
        return None
    token = secrets.token_hex(16)
    spec = {
        "code": code,
        "token": token,
        "mark": _MARK,
        "cap": _STDOUT_CAP,
        "memory_mb": options.memory_mb,
        "cpu_s": math.ceil(options.timeout_s) + 1,
        "file_mb": _FILE_MB,
    }
    posix = os.name == "posix"
    with tempfile.TemporaryDirectory(prefix="ttcalloc-pot-", ignore_cleanup_errors=True) as cwd:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _RUNNER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=cwd,
            env={},
            start_new_session=posix,
        )
        assert proc.stdin is not None and proc.stdout is not None
        stdout, got = proc.stdout, bytearray()
        reader = threading.Thread(target=lambda: got.extend(stdout.read(_STDOUT_CAP)), daemon=True)
        reader.start()
        with contextlib.suppress(OSError):
            proc.stdin.write(json.dumps(spec).encode())
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=options.timeout_s + _STARTUP_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):  # the child and its process group
                if posix:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
            proc.wait()
        reader.join(timeout=2.0)
        if not reader.is_alive():  # else a stray holds the pipe: leave the reader be
            stdout.close()
    return _parse(bytes(got), token)


def _parse(stdout: bytes, token: str) -> str | None:
    """The answer on the last line carrying this child's marker and token, or None."""
    prefix = f"{_MARK}{token} "
    for line in reversed(stdout.decode("utf-8", "replace").splitlines()):
        if line.startswith(prefix):
            try:
                answer = json.loads(line[len(prefix) :]).get("answer")
            except (ValueError, AttributeError):
                return None
            return answer if isinstance(answer, str) else None
    return None
