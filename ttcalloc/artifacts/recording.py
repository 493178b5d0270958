"""The request a stage is running under, stamped by :mod:`ttcalloc.artifacts.io` on every output.

:mod:`ttcalloc.artifacts.freshness` builds the request and compares it with stored ones; this
module only carries it while the stage runs, so the writer needs nothing from freshness.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

KEY = "request"
_current: ContextVar[dict[str, Any] | None] = ContextVar("ttcalloc_request", default=None)


@contextlib.contextmanager
def recording(req: dict[str, Any]) -> Iterator[None]:
    """Within the block, artifacts written record ``req``."""
    token = _current.set(req)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> dict[str, Any] | None:
    """The request being recorded (None outside :func:`recording`)."""
    return _current.get()
