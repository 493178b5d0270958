"""The command line as a user meets it: help, version, lazy imports, error format."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import run_cli

from ttcalloc import __version__

COMMANDS = [
    "data",
    "import",
    "sample",
    "estimate",
    "solve",
    "train",
    "evaluate",
    "allocate",
    "info",
]


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


def test_stages_skip_when_inputs_and_options_are_unchanged(tmp_path) -> None:
    import json

    from helpers import GSM8K_ROWS, write_jsonl

    src = write_jsonl(tmp_path / "g.jsonl", GSM8K_ROWS * 4)
    problems = tmp_path / "p.parquet"
    run = ["data", "jsonl", "--source", src, "--out", problems, "--json"]
    assert json.loads(run_cli(*run).stdout)["problems"] == 20
    again = run_cli(*run)
    assert json.loads(again.stdout) == {"skipped": True, "out": str(problems)}
    assert "up to date" in again.stderr and "--force" in again.stderr
    # another option, a changed input, or --force: the stage runs again
    assert "problems" in json.loads(run_cli(*run, "--test-frac", "0.5").stdout)
    assert "skipped" in json.loads(run_cli(*run, "--test-frac", "0.5").stdout)
    assert "problems" in json.loads(run_cli(*run, "--test-frac", "0.5", "--force").stdout)
    write_jsonl(src, GSM8K_ROWS * 3)
    assert json.loads(run_cli(*run, "--test-frac", "0.5").stdout)["problems"] == 15
    # a file written by an older request is not mistaken for this one
    samples = tmp_path / "s"
    sample = ["sample", problems, "--model", "sim/medium", "--n", "4", "--out", samples]
    assert run_cli(*sample, "--no-progress").exit_code == 0
    est = ["estimate", samples, "--ks", "1,2", "--cost", "samples", "--out", tmp_path / "c.parquet"]
    assert "skipped" not in run_cli(*est, "--json").stdout
    assert "skipped" in run_cli(*est, "--json").stdout
    assert run_cli(*sample, "--n", "6", "--no-progress").exit_code == 0  # more samples
    assert "skipped" not in run_cli(*est, "--json").stdout


@pytest.mark.parametrize("command", ["sample", "run", "train", "evaluate"])
def test_help_fits_80_columns_with_whole_option_names(command: str) -> None:
    env = os.environ | {"COLUMNS": "80", "TERM": "dumb"}
    res = subprocess.run(
        [sys.executable, "-m", "ttcalloc", command, "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert "<bool>" not in text and "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    if command == "sample":
        assert "--requests-per-batch" in text and "--logprobs / --no-logprobs" in text


def test_info_explains_mu_as_a_price() -> None:
    from ttcalloc.artifacts.info import describe_mu

    assert describe_mu(0.004, "samples").startswith("mu = 0.004: the price of cost")
    assert "does not bind" in describe_mu(-3.0, "samples")
    assert describe_mu(None, "samples") == "mu: not recorded"


def test_stderr_tables_are_wide_off_a_terminal() -> None:
    """Logs and CI (stderr not a terminal): 160 columns, not rich's 80 that cut table cells;
    $COLUMNS wins."""
    import os
    import subprocess
    import sys

    code = "from ttcalloc.common.console import err_console; print(err_console.width)"
    env = {
        k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")
    }
    for extra, want in (({}, "160"), ({"COLUMNS": "100"}, "100")):
        got = subprocess.run(
            [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True
        )
        assert got.stdout.strip() == want, got.stderr
