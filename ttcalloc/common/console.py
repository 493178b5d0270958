"""Output streams: results on stdout only when asked (``--json``), everything else on stderr."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console

from ttcalloc.common.redact import redact, redact_data

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
if not err_console.is_terminal and not os.environ.get("COLUMNS"):
    # a log file or CI: tables 160 columns wide, not rich's 80, which cut their cells ("accur…")
    err_console.width = 160


def log(message: str) -> None:
    """A progress or status line on stderr (rich markup allowed; credentials redacted)."""
    err_console.print(redact(message))


def warn(message: str) -> None:
    """A warning on stderr."""
    from rich.markup import escape

    err_console.print(f"[yellow]warning:[/yellow] {escape(redact(message))}")


def emit_json(data: Any) -> None:
    """A machine-readable result on stdout."""
    sys.stdout.write(json.dumps(redact_data(data), indent=2, default=str) + "\n")
    sys.stdout.flush()
