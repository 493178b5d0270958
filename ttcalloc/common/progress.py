"""Progress when stderr is not a terminal: one status line every few seconds.

On a terminal, long work shows a rich progress bar.  Piped or redirected (``make demo > log``,
CI, ``nohup``), a bar is off, and :class:`StatusLines` prints instead, every
``$TTCALLOC_PROGRESS_SECONDS`` (default 10; 0 turns it off), a line such as::

    sampling 120/384 (31%) 1.52/s ETA 2:53 | 15/48 problems 21.3k tok $0.0000 0.8 req/s 0 err
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

from ttcalloc.common.console import err_console
from ttcalloc.common.redact import redact

PROGRESS_ENV = "TTCALLOC_PROGRESS_SECONDS"
DEFAULT_SECONDS = 10.0


def status_seconds() -> float | None:
    """Seconds between status lines: ``$TTCALLOC_PROGRESS_SECONDS``, else 10; None: off."""
    text = os.environ.get(PROGRESS_ENV, "").strip()
    if not text:
        return DEFAULT_SECONDS
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_SECONDS
    return value if math.isfinite(value) and value > 0 else None


def clock(seconds: float) -> str:
    """``0:45``, ``12:03`` or ``1:02:03``."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def status_line(label: str, done: float, total: float, elapsed: float, detail: str = "") -> str:
    """``label done/total (pct) rate/s ETA m:ss | detail``; the rate is per second since start."""
    rate = done / elapsed if elapsed > 0 else 0.0
    pct = f" ({100 * done / total:.0f}%)" if total > 0 else ""
    if done >= total > 0:
        eta = "done"
    elif rate > 0:
        eta = f"ETA {clock((total - done) / rate)}"
    else:
        eta = "ETA ?"
    rate_text = f"{rate:.2f}/s" if rate < 10 else f"{rate:.0f}/s"
    line = f"{label} {done:g}/{total:g}{pct} {rate_text} {eta} after {clock(elapsed)}"
    return f"{line} | {detail}" if detail else line


class StatusLines:
    """Prints a status line on stderr at most every ``seconds`` (when stderr is not a terminal).

    ``enabled`` is False on a terminal (a rich bar shows progress there), when progress is
    turned off, or when ``$TTCALLOC_PROGRESS_SECONDS`` is 0.
    """

    def __init__(self, label: str, enabled: bool = True, seconds: float | None = None) -> None:
        self.label = label
        self.seconds = seconds if seconds is not None else status_seconds()
        self.enabled = enabled and self.seconds is not None and not err_console.is_terminal
        self.started = self.last = time.monotonic()

    def due(self) -> bool:
        """Whether a line is due now."""
        return (
            self.enabled
            and self.seconds is not None
            and time.monotonic() - self.last >= self.seconds
        )

    def show(self, done: float, total: float, detail: str = "") -> None:
        """Print the status now."""
        self.last = now = time.monotonic()
        line = status_line(self.label, done, total, now - self.started, detail)
        err_console.print(redact(line), markup=False, highlight=False)

    def tick(self, done: float, total: float, detail: str = "") -> None:
        """Print the status if a line is due (for loops that make progress often)."""
        if self.due():
            self.show(done, total, detail)


class Tracker:
    """Progress of long offline work (grading, scoring): a transient rich bar on a terminal,
    :class:`StatusLines` otherwise.  Use as a context manager; ``advance`` after each unit."""

    def __init__(self, label: str, total: float, enabled: bool = True) -> None:
        self.label, self.total, self.done = label, total, 0.0
        self.lines = StatusLines(label, enabled)
        self.bar: Any = None
        if enabled and err_console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn(label),
                BarColumn(),
                TextColumn("{task.completed:g}/{task.total:g}"),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            )

    def __enter__(self) -> Tracker:
        if self.bar is not None:
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def advance(self, n: float = 1, detail: str = "") -> None:
        """Count ``n`` more units done; print a status line if one is due."""
        self.done += n
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)
        self.lines.tick(self.done, self.total, detail)


class Steps(Tracker):
    """Progress of a few long steps (model fits, budgets): a :class:`Tracker` whose status line
    also comes while a step runs, every ``$TTCALLOC_PROGRESS_SECONDS`` when stderr is not a
    terminal, naming the step (``begin``) and the time since the start."""

    def __init__(self, label: str, total: float, enabled: bool = True) -> None:
        super().__init__(label, total, enabled)
        self.detail = ""
        self._final = False  # the last line shown was the finished state
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Steps:
        super().__enter__()
        seconds = self.lines.seconds
        if self.lines.enabled and seconds is not None:
            self._thread = threading.Thread(target=self._beat, args=(seconds,), daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        shown = self.lines.last != self.lines.started
        if shown and exc[0] is None and not self._final:  # a log that showed steps ends done
            self.lines.show(self.done, self.total, self.detail)
        super().__exit__(*exc)

    def begin(self, detail: str) -> None:
        """Name the step now running (its status lines say it)."""
        self.detail = detail

    def advance(self, n: float = 1, detail: str = "") -> None:
        """Count ``n`` more units done; print a status line if one is due."""
        before = self.lines.last
        super().advance(n, detail)
        self._final = self.lines.last != before and self.done >= self.total

    def _beat(self, seconds: float) -> None:
        while not self._stop.wait(min(seconds, 1.0)):
            self.lines.tick(self.done, self.total, self.detail)
