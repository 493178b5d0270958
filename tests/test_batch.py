"""`ttcalloc sample --batch`: provider batch APIs over real local HTTP (the fake server's
/v1/files and /v1/batches), kills and reruns included: no request submitted twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fake_openai import FakeServer, fake_openai
from helpers import run_cli, sum_problems, wait_until

from ttcalloc.artifacts import io
from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.common.errors import InputError
from ttcalloc.sampler.batch_lines import custom_id, outcomes, parse_custom_id, split
from ttcalloc.sampler.batch_state import STATE
from ttcalloc.stages.sample import BatchOptions, SampleOptions, sample_in_batches, sample_problems

ROOT = Path(__file__).resolve().parents[1]
FAST = BatchOptions(poll_seconds=0.02, max_requests=10)


@pytest.fixture
def problems(tmp_path: Path) -> Path:
    return sum_problems(tmp_path)


def options(server: FakeServer, **kw: Any) -> SampleOptions:
    base: dict[str, Any] = {
        "model": "openai/fake",
        "api_base": server.base,
        "n": 4,
        "requests_per_batch": 2,
        "progress": False,
        "price_in": 1.0,
        "price_out": 2.0,
    }
    return SampleOptions(**(base | kw))


def read(folder: Path) -> pl.DataFrame:
    return io.read_artifact(folder, SAMPLES).df


def assert_once(server: FakeServer) -> None:
    twice = {c: k for c, k in Counter(server.batch.submitted).items() if k > 1}
    assert not twice, f"submitted more than once: {twice}"


def test_custom_ids_and_splitting() -> None:
    from ttcalloc.backends import Request

    r = Request("gsm8k#12", 4, 3, [], 0)
    assert custom_id(r) == "gsm8k#12#4-6" and parse_custom_id(custom_id(r)) == ("gsm8k#12", 4, 3)
    assert parse_custom_id("p#0") == ("p", 0, 1)
    with pytest.raises(ValueError):
        parse_custom_id("no-hash")
    lines = [(str(i), b"x" * 10) for i in range(7)]
    assert split(lines, 3, 10_000) == [[0, 1, 2], [3, 4, 5], [6]]
    assert split(lines, 100, 25) == [[0, 1], [2, 3], [4, 5], [6]]  # bytes bound too
    got = outcomes(
        '{"custom_id": "a#0", "response": {"status_code": 200, "body": {"choices": []}}}\n'
        "not json\n"
        '{"custom_id": "a#1", "response": null, "error": {"code": "batch_expired", "message": "late"}}\n'
    )
    assert got["a#0"].body == {"choices": []} and got["a#0"].error is None
    assert got["a#1"].body is None and "batch_expired: late" in (got["a#1"].error or "")


def test_the_batch_price() -> None:
    from ttcalloc.backends.batch_api import batch_price

    # litellm lists gpt-4o-mini's batch price ($0.075 / $0.30 per M, half of $0.15 / $0.60)
    assert batch_price("openai/gpt-4o-mini", None, None, None) == (0.075, 0.3)
    assert batch_price("openai/gpt-4o-mini", None, None, 0.4) == pytest.approx((0.06, 0.24))
    assert batch_price("openai/fake", 1.0, 2.0, None) == (0.5, 1.0)  # --price-in/out halved
    assert batch_price("openai/fake", 1.0, 2.0, 0.25) == (0.25, 0.5)
    assert batch_price("openai/not-a-model-xyz", None, None, None) is None


def test_batches_write_the_same_samples_as_per_request(tmp_path: Path, problems: Path) -> None:
    with fake_openai() as server:
        server.batch.complete_after = 3
        result = sample_in_batches(problems, tmp_path / "b", options(server), FAST)
        sent = [dict(p) for p in server.requests]
        assert len(server.batch.batches) == 3  # 24 lines of n=2, 10 a batch
        assert_once(server)
        assert sorted(server.batch.submitted) == sorted(
            f"{i}#{j}-{j + 1}" for i in range(12) for j in (0, 2)
        )
        server.requests.clear()
        sample_problems(problems, tmp_path / "r", options(server, concurrency=2))
        direct = [dict(p) for p in server.requests]
    assert result.written == 48 and result.errors == 0 and result.stopped is None
    # each line's body is what the per-request path sends (its model name without prefix)
    keys = ("messages", "seed", "temperature", "max_tokens", "n", "logprobs", "top_logprobs")

    def norm(ps: list[dict[str, Any]]) -> list[str]:
        return sorted(json.dumps({k: p.get(k) for k in keys}, sort_keys=True) for p in ps)

    assert norm(sent) == norm(direct)
    assert {p["model"] for p in sent} == {"fake"}
    cols = ["problem_id", "sample_idx", "seed", "pred_answer", "correct", "completion_tokens"]
    b = read(tmp_path / "b").sort("problem_id", "sample_idx")
    r = read(tmp_path / "r").sort("problem_id", "sample_idx")
    assert b.select(cols).equals(r.select(cols))  # same samples, same schema
    assert b["correct"].all()
    # the batch price: half of --price-in/--price-out by default
    assert b["cost_usd"].sum() == pytest.approx(r["cost_usd"].sum() / 2)
    assert not (tmp_path / "b" / STATE).exists()  # every batch collected
    again = sample_in_batches(problems, tmp_path / "b", options(server), FAST)
    assert again.requests == 0 and again.total_samples == 48
    curves = run_cli(
        "estimate", tmp_path / "b", "--problems", problems, "--ks", "1,2", "--out",
        tmp_path / "c.parquet",
    )  # fmt: skip
    assert curves.exit_code == 0, curves.stderr


def test_failed_and_expired_requests_are_sent_once_more_then_reported(
    tmp_path: Path, problems: Path
) -> None:
    with fake_openai() as server:
        server.batch.faults = {"0#0-1": "fail", "1#2-3": "expire", "2#0-1": "fail-always"}
        result = sample_in_batches(problems, tmp_path / "s", options(server), FAST)
        counts = Counter(server.batch.submitted)
        assert counts["0#0-1"] == counts["1#2-3"] == counts["2#0-1"] == 2
        assert sum(counts.values()) == 24 + 3  # nothing else twice
        assert result.written == 46 and result.errors == 2
        df = read(tmp_path / "s")
        failed = df.filter(pl.col("error").is_not_null())
        assert failed["problem_id"].to_list() == ["2", "2"] and set(failed["sample_idx"]) == {0, 1}
        assert "HTTP 500" in failed["error"][0] and failed["correct"].null_count() == 2
        # a later rerun retries what failed, as per-request sampling does
        server.batch.faults = {}
        rerun = sample_in_batches(problems, tmp_path / "s", options(server), FAST)
        assert rerun.written == 2 and Counter(server.batch.submitted)["2#0-1"] == 3
    ok = read(tmp_path / "s").filter(pl.col("error").is_null())
    assert ok.height == 48 and not ok.select("problem_id", "sample_idx").is_duplicated().any()


def test_max_cost_submits_only_the_batches_whose_worst_case_fits(
    tmp_path: Path, problems: Path
) -> None:
    # a line: 2 samples x (prompt tokens + 100 completion tokens) at $5/M (10/M halved)
    with fake_openai() as server:
        opts = options(server, max_tokens=100, price_in=10.0, price_out=10.0, max_cost=0.021)
        result = sample_in_batches(problems, tmp_path / "s", opts, FAST)
        created = len(server.batch.batches)
        submitted = len(server.batch.submitted)
    # a batch of 10 lines is worth at most 10 * 2 * (~20 + 100) * 5e-6 ~ $0.012: one fits
    assert created == 1 and submitted == 10, (created, submitted)
    assert result.stopped and "--max-cost" in result.stopped
    assert result.cost_usd is not None and result.cost_usd <= 0.021
    assert result.written == 20


def test_max_cost_counts_the_batches_an_earlier_run_journaled(
    tmp_path: Path, problems: Path
) -> None:
    from ttcalloc.sampler.batch_state import BatchState
    from ttcalloc.sampler.options import part_params

    out = tmp_path / "s"
    out.mkdir()
    with fake_openai() as server:
        opts = options(server, max_tokens=100, price_in=10.0, price_out=10.0, max_cost=0.021)
        state = BatchState.load(out, opts.model, part_params(opts, "auto"))
        state.add([f"{i}#0-1" for i in range(10)], attempt=0, worst=None)  # journaled uncapped
        state.save()
        result = sample_in_batches(problems, out, opts, FAST)
        assert len(server.batch.batches) == 1 and len(server.batch.submitted) == 10
    assert result.stopped and "--max-cost" in result.stopped and result.written == 20


def test_unsupported_providers_are_refused_in_one_line(tmp_path: Path, problems: Path) -> None:
    for model, words in (
        ("anthropic/claude-3-5-sonnet-20240620", "anthropic has no batch API"),
        ("vertex_ai/gemini-1.5-pro", "Cloud Storage bucket"),
        ("bedrock/anthropic.claude-v2", "S3 bucket"),
        ("hosted_vllm/qwen", "runs hosted_vllm batches itself"),
        ("sim/medium", "not a provider model"),
    ):
        r = run_cli("sample", problems, "--model", model, "--batch", "--out", tmp_path / "s")
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert r.exit_code == 2 and len(lines) == 1 and words in lines[0], (model, r.stderr)
    r = run_cli(
        "sample", problems, "--model", "openai/gpt-4o-mini", "--batch", "--poll-seconds", "0",
        "--out", tmp_path / "s",
    )  # fmt: skip
    assert r.exit_code == 2 and "--poll-seconds" in r.stderr
    assert not (tmp_path / "s").exists()


def _batch_cli(problems: Path, out: Path, base: str) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "ttcalloc", "sample", str(problems), "--model", "openai/fake",
        "--api-base", base, "--n", "4", "--requests-per-batch", "2", "--batch",
        "--batch-requests", "10", "--poll-seconds", "0.05", "--out", str(out),
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OPENAI_API_KEY": "sk-test-dummy-key",
        "TTCALLOC_PROGRESS_SECONDS": "0.05",
    }
    return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)


def _kill_while_polling(problems: Path, out: Path, server: FakeServer, sig: str) -> str:
    """Run the CLI with batches held in progress; signal it once all 3 are being polled."""
    server.batch.hold = True
    proc = _batch_cli(problems, out, server.base)

    def polled_thrice() -> bool:  # a copy under the lock: the server thread adds batches
        assert proc.poll() is None, f"the run ended ({proc.returncode}) before the signal"
        with server.batch.lock:
            polls = list(server.batch.polls.values())
        return len(polls) == 3 and min(polls) >= 3

    # a third poll of each follows the status line the second round of polls printed
    # (0.05 s after the start), which then says the three are in progress
    wait_until(polled_thrice, "all 3 batches polled 3 times", timeout=90)
    proc.send_signal(getattr(signal, sig))
    _, stderr = proc.communicate(timeout=60)
    if sig == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL, stderr
    else:  # handled like Ctrl-C: exit 130, saying the batches keep running
        assert proc.returncode == 130 and "interrupted" in stderr, stderr
        assert "3 batches keep running at the provider" in stderr, stderr
    assert len(server.batch.batches) == 3 and len(server.batch.submitted) == 24
    journal = json.loads((out / STATE).read_text())
    assert [e["batch_id"] for e in journal["entries"]] == ["batch_1", "batch_2", "batch_3"]
    server.batch.hold = False
    return stderr


@pytest.mark.parametrize(
    ("sig", "window"), [("SIGKILL", False), ("SIGKILL", True), ("SIGTERM", False)]
)
def test_a_kill_between_submit_and_completion_reattaches(
    tmp_path: Path, problems: Path, sig: str, window: bool
) -> None:
    out = tmp_path / "s"
    with fake_openai() as server:
        stderr = _kill_while_polling(problems, out, server, sig)
        status = [x for x in stderr.splitlines() if x.startswith("batch ")]
        assert status and "in progress" in status[-1] and "batches:" in status[-1], stderr
        if window:  # killed after `create` returned, before its id was journaled
            journal = json.loads((out / STATE).read_text())
            journal["entries"][1] |= {"batch_id": None, "status": "uploaded"}
            (out / STATE).write_text(json.dumps(journal))
        # a per-request rerun would pay again for what the batches hold: refused; so is
        # collecting them into samples of other settings
        with pytest.raises(InputError, match="batches of an earlier"):
            sample_problems(problems, out, options(server))
        with pytest.raises(InputError, match="temperature"):
            sample_in_batches(problems, out, options(server, temperature=0.3), FAST)
        journal = (out / STATE).read_text()
        again = _batch_cli(problems, out, server.base)
        _, stderr = again.communicate(timeout=120)
        assert again.returncode == 0, stderr
        assert "re-attached to 3 batches" in stderr
        assert len(server.batch.batches) == 3  # nothing created again
        assert_once(server)
        # killed after the results were in parts, before the journal forgot the batches:
        # they are downloaded again and nothing is written twice
        (out / STATE).write_text(journal)
        late = sample_in_batches(problems, out, options(server), FAST)
        assert late.written == 0 and late.errors == 0 and len(server.batch.batches) == 3
    df = read(out)
    ok = df.filter(pl.col("error").is_null())
    assert ok.height == 48 and not ok.select("problem_id", "sample_idx").is_duplicated().any()
    assert not (out / STATE).exists()
    raw = pl.read_parquet(out / "part-*.parquet")  # every part, before superseding
    assert raw.height == 48, raw.height


def test_a_kill_before_upload_submits_the_journaled_lines_once(
    tmp_path: Path, problems: Path
) -> None:
    """An entry journaled but never uploaded (killed in between) is uploaded and submitted by
    the rerun, and its lines are not planned a second time."""
    from ttcalloc.sampler.batch_state import BatchState
    from ttcalloc.sampler.options import part_params

    out = tmp_path / "s"
    out.mkdir()
    with fake_openai() as server:
        opts = options(server)
        state = BatchState.load(out, opts.model, part_params(opts, "auto"))
        state.add(["3#0-1", "3#2-3", "4#0-1"], attempt=0, worst=None)
        state.save()
        result = sample_in_batches(problems, out, opts, FAST)
        assert_once(server)
        assert len(server.batch.submitted) == 24
    assert result.written == 48


def test_an_authentication_error_is_one_line_without_the_key(
    tmp_path: Path, problems: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-batch-secret-0123456789abcdef")
    with fake_openai() as server:
        server.batch.refuse = 401
        r = run_cli(
            "sample", problems, "--model", "openai/fake", "--api-base", server.base, "--batch",
            "--out", tmp_path / "s",
        )  # fmt: skip
        assert not server.batch.submitted
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert r.exit_code == 1 and len(lines) == 1, r.stderr
        assert "upload batch file" in lines[0] and "AuthenticationError" in lines[0], lines[0]
        assert "0123456789abcdef" not in r.stderr
        # the lines stay journaled, never uploaded: the rerun submits them once
        entries = json.loads((tmp_path / "s" / STATE).read_text())["entries"]
        assert len(entries) == 1 and len(entries[0]["cids"]) == 12 * 16
        server.batch.refuse = None
        again = sample_in_batches(problems, tmp_path / "s", options(server, n=16), FAST)
        assert again.written == 12 * 16 and len(server.batch.submitted) == 12 * 16
        assert_once(server)
