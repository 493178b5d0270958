"""The command line as a user meets it: help, version, lazy imports, error format."""

from __future__ import annotations

import subprocess
import sys

from helpers import run_cli

from ttcalloc import __version__

COMMANDS = ["data", "import", "sample", "estimate", "solve", "train", "allocate", "info"]


def test_help_lists_every_command_with_a_summary() -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.stdout
    data_help = run_cli("data", "--help")
    for kind in ["gsm8k", "math", "jsonl"]:
        assert kind in data_help.stdout


def test_version() -> None:
    result = run_cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"ttcalloc {__version__}"


def test_help_does_not_import_heavy_libraries() -> None:
    """--help stays fast because polars, pyarrow, litellm, xgboost and matplotlib load lazily."""
    code = (
        "import sys\n"
        "from ttcalloc.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('polars', 'pyarrow', 'numpy', 'litellm', 'xgboost', 'matplotlib',"
        " 'math_verify') if m in sys.modules]\n"
        "sys.stderr.write(repr(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip().endswith("[]"), proc.stderr


def test_unknown_command_fails() -> None:
    result = run_cli("frobnicate")
    assert result.exit_code != 0


def test_info_shows_provenance(tmp_path) -> None:
    import json

    from helpers import GSM8K_ROWS, write_jsonl

    src = write_jsonl(tmp_path / "g.jsonl", GSM8K_ROWS)
    out = tmp_path / "p.parquet"
    assert run_cli("data", "gsm8k", "--source", src, "--out", out).exit_code == 0
    result = run_cli("info", out, "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["artifact"] == "problems" and info["rows"] == 5
    assert info["provenance"]["stage"] == "data"
    assert info["provenance"]["inputs"]["source"]["fingerprint"].startswith("sha256:")
    assert "written by ttcalloc" in result.stderr
