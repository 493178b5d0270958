"""Small builders shared by tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from ttcalloc.cli import app


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_cli(*args: str) -> Any:
    """Invoke the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, [str(a) for a in args])


GSM8K_ROWS = [
    {"question": "Tom has 3 apples and buys 4 more. How many?", "answer": "3+4=7\n#### 7"},
    {"question": "A pen costs $2. How much do 5 pens cost?", "answer": "5*2=10\n#### 10"},
    {"question": "What is 1,000 + 250?", "answer": "#### 1,250"},
    {"question": "Half of 9?", "answer": "9/2 = 4.5\n#### 4.5"},
    {"question": "What is 12 * 12?", "answer": "#### 144"},
]
