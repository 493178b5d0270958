"""Output streams: results on stdout only when asked (``--json``), everything else on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def log(message: str) -> None:
    """A progress or status line on stderr (rich markup allowed)."""
    err_console.print(message)


def warn(message: str) -> None:
    """A warning on stderr."""
    from rich.markup import escape

    err_console.print(f"[yellow]warning:[/yellow] {escape(message)}")


def emit_json(data: Any) -> None:
    """A machine-readable result on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()
