"""Reliability (issue 15) of sampling: no secret stored, and the sampler's failures bounded.

Each test breaks something for real: credentials in an API base, a header or a source URL are
never stored nor printed; a cost cap that reserves the real prompt, a second run on a folder it
does not hold, SIGKILL and SIGTERM mid-run, and endpoints that refuse every request.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import fake_server_sampler, run_cli, write_jsonl
from test_reliability import (
    _one_error_line,
    pipe_fixture,  # noqa: F401 (the `pipe` fixture)
)

# --- 6. credentials in a URL or header are never stored nor printed -------------------------------


def test_redact_masks_credentials_in_urls_and_headers() -> None:
    from ttcalloc.common.redact import redact, redact_data

    cases = {
        "http://h:8000/v1?api-key=abc123XYZ&x=1": "http://h:8000/v1?api-key=***&x=1",
        "https://me:hunter2pass@h/v1": "https://me:***@h/v1",
        "https://h/d.jsonl?sig=QWERTY12&token=zz99": "https://h/d.jsonl?sig=***&token=***",
        "Authorization: Basic dXNlcjpwYXNzd29yZA==": "Authorization: Basic ***",
        "x-api-key: abcdefghijkl": "x-api-key: ***",
        "http://h/v1?model=a&n=2": "http://h/v1?model=a&n=2",  # nothing secret: unchanged
    }
    for text, expected in cases.items():
        assert redact(text) == expected
    assert redact_data({"a": ["u?key=12345678"], "b": 3}) == {"a": ["u?key=***"], "b": 3}


def test_secret_in_api_base_is_not_stored_nor_shown(tmp_path: Path, pipe: dict[str, Path]) -> None:
    from fake_openai import fake_openai

    secret, password = "QSECRET0123456789", "PWSECRET987"
    with fake_openai() as server:
        base = server.base.replace("http://", f"http://me:{password}@") + f"?api-key={secret}"
        args = ["sample", pipe["problems"], "--model", "openai/fake", "--api-base", base]
        args += ["--n", "1", "--limit", "2", "--out", tmp_path / "s", "--no-progress", "--json"]
        result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    shown = run_cli("info", tmp_path / "s", "--json")
    assert shown.exit_code == 0 and "api-key=***" in shown.stdout
    stored = b"".join(p.read_bytes() for p in (tmp_path / "s").rglob("*") if p.is_file())
    for text in (
        result.stdout,
        result.stderr,
        shown.stdout,
        shown.stderr,
        stored.decode("latin-1"),
    ):
        assert secret not in text and password not in text


def test_secret_in_a_source_url_is_not_printed(tmp_path: Path) -> None:
    url = "http://me:PWSECRET987@127.0.0.1:9/data.jsonl?token=TOKSECRET123"
    result = run_cli("data", "gsm8k", "--source", url, "--out", tmp_path / "p.parquet")
    assert result.exit_code != 0 and "download failed" in result.stderr
    assert "PWSECRET987" not in result.stderr and "TOKSECRET123" not in result.stderr


# --- 2-5. the sampler: the cost cap, one run per folder, kills, hopeless runs ---------------------


@pytest.fixture
def long_problems(tmp_path: Path) -> Path:
    """12 problems whose questions are ~10,000 characters of single-digit tokens."""
    from ttcalloc.stages import data

    pad = " 7" * 5000
    rows = [
        {"question": f"What is {i}+{i + 1}?{pad}", "answer": f"#### {2 * i + 1}"} for i in range(12)
    ]
    out = tmp_path / "long.parquet"
    data.build_problems(write_jsonl(tmp_path / "long.jsonl", rows), out, "gsm8k")
    return out


def test_sample_flags_are_validated(pipe: dict[str, Path], tmp_path: Path) -> None:
    base = ["sample", pipe["problems"], "--model", "sim/weak", "--out", tmp_path / "s"]
    for flags in (
        ["--max-cost", "nan"],
        ["--price-in", "-1"],
        ["--temperature", "-3"],
        ["--flush-every", "0"],
        ["--max-failures", "0"],
        ["--timeout", "inf"],
    ):
        result = run_cli(*base, *flags)
        assert result.exit_code == 2 and flags[0] in _one_error_line(result.stderr), flags
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("no_usage", [False, True])
def test_max_cost_reserves_the_real_prompt_and_waits(
    long_problems: Path, tmp_path: Path, no_usage: bool
) -> None:
    from fake_openai import fake_openai

    from ttcalloc.stages.sample import SampleOptions, sample_problems

    # each request: ~10,000 prompt tokens at $10/M = $0.10 (+ at most 64 completion tokens)
    with fake_openai(tokens_per_char=1.0, no_usage=no_usage, delay_s=0.05) as server:
        opts = SampleOptions(
            model="openai/fake",
            api_base=server.base,
            n=2,
            max_tokens=64,
            concurrency=4,
            price_in=10.0,
            price_out=10.0,
            max_cost=0.5,
            progress=False,
        )
        result = sample_problems(long_problems, tmp_path / "s", opts)
        sent = len(server.requests)
    worst = 10.0 * (10_000 + 64) / 1e6 * 1.01  # one request's worst case, with slack
    assert result.stopped and "--max-cost" in result.stopped
    paid = result.cost_usd if result.cost_usd is not None else sent * worst
    assert paid <= 0.5, (paid, sent)
    assert sent >= int(0.5 / worst) - 1, sent  # it waited for reservations, not stopped early


def test_a_second_run_on_the_same_folder_is_refused(pipe: dict[str, Path], tmp_path: Path) -> None:
    from ttcalloc.sampler.journal import hold

    out = tmp_path / "s"
    with hold(out):
        result = run_cli(
            "sample", pipe["problems"], "--model", "sim/weak", "--n", "1", "--out", out
        )
    assert result.exit_code == 2 and f"another run holds {out}" in _one_error_line(result.stderr)
    assert not any(out.glob("part-*"))
    assert (
        run_cli(
            "sample", pipe["problems"], "--model", "sim/weak", "--n", "1", "--out", out
        ).exit_code
        == 0
    )


def _sampler(problems: Path, out: Path, base: str) -> subprocess.Popen[str]:
    return fake_server_sampler(problems, out, base, flush_every=1000, stderr=subprocess.PIPE)


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_a_kill_loses_at_most_the_requests_in_flight(
    pipe: dict[str, Path], tmp_path: Path, sig: str
) -> None:
    import signal

    import polars as pl
    from fake_openai_control import held_openai, wait_held

    from ttcalloc.artifacts.io import read_artifact
    from ttcalloc.artifacts.schemas import SAMPLES

    problems = tmp_path / "p.parquet"
    rows = [{"question": f"What is {i}+{i + 1}?", "answer": f"#### {2 * i + 1}"} for i in range(12)]
    from ttcalloc.stages import data

    data.build_problems(write_jsonl(tmp_path / "p.jsonl", rows), problems, "gsm8k")
    out = tmp_path / "s"
    # the 21st request is held: the signal lands mid-run however slow the machine
    with held_openai(hold_from=21, delay_s=0.1) as server:
        proc = _sampler(problems, out, server.base)
        wait_held(server, proc)
        proc.send_signal(getattr(signal, sig))
        _, stderr = proc.communicate(timeout=60)
        first = len(server.requests)
        assert 21 <= first < 72, "the signal should land mid-run"
        server.release()
        if sig == "SIGTERM":  # handled like Ctrl-C: what arrived is in parts, exit 130
            assert proc.returncode == 130 and "interrupted" in stderr, stderr
            assert not list(out.glob(".journal-*"))
        again = _sampler(problems, out, server.base)
        assert again.wait(timeout=120) == 0
        total = len(server.requests)
    df = read_artifact(out, SAMPLES).df
    ok = df.filter(pl.col("error").is_null())
    assert ok.height == 72 and not ok.select("problem_id", "sample_idx").is_duplicated().any()
    assert total - 72 <= 2, f"{total - 72} samples paid twice (concurrency 2)"


@pytest.mark.parametrize("fault", ["403", "500"])
def test_a_hopeless_run_stops_with_a_summary(
    pipe: dict[str, Path], tmp_path: Path, fault: str
) -> None:
    from fake_openai import fake_openai

    with fake_openai(fault_all=fault) as server:
        result = run_cli(
            "sample",
            pipe["problems"],
            "--model",
            "openai/fake",
            "--api-base",
            server.base,
            "--n",
            "2",
            "--retries",
            "1",
            "--max-failures",
            "3",
            "--concurrency",
            "1",
            "--out",
            tmp_path / "s",
            "--no-progress",
        )
        sent = len(server.requests)
    line = _one_error_line(result.stderr)
    assert result.exit_code == 1, result.stderr
    if fault == "403":  # no retry can fix it: the run stops at the first answer
        assert sent == 1 and "HTTP 403" in line, (sent, line)
    else:  # 3 requests, each tried twice
        assert sent == 3 * 2 and "3 consecutive requests failed" in line, (sent, line)
        assert "0 samples received, 3 failed, 6 requests" in line
