"""Where ttcalloc keeps its own files (download cache, logs), set by ``TTCALLOC_HOME``."""

from __future__ import annotations

import os
from pathlib import Path

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
