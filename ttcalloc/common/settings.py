"""Where ttcalloc keeps its own files (``TTCALLOC_HOME``) and how many threads model fits use."""

from __future__ import annotations

import os
from pathlib import Path

from ttcalloc.common.errors import InputError

HOME_ENV = "TTCALLOC_HOME"


def home_dir() -> Path:
    """The work directory: ``$TTCALLOC_HOME``, else the user cache dir (``~/.cache/ttcalloc``).

    Tests point ``TTCALLOC_HOME`` at a temporary directory so that nothing leaks between runs.
    """
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ttcalloc"


def cache_dir(kind: str) -> Path:
    """A sub-directory of the work directory, created on demand: ``cache_dir("downloads")``."""
    path = home_dir() / "cache" / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


THREADS_ENV = "TTCALLOC_FIT_THREADS"


def fit_threads() -> int:
    """Threads for model fits and predictions: ``$TTCALLOC_FIT_THREADS``, else the cores this
    process may run on (at most 8).  Results do not depend on it (each model is fit on one
    thread); only the wall time does."""
    explicit = os.environ.get(THREADS_ENV, "").strip()
    if explicit:
        if not explicit.isdigit() or int(explicit) < 1:
            raise InputError(f"{THREADS_ENV}={explicit!r}: expected a positive integer")
        return int(explicit)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))
