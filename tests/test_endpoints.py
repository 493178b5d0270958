"""Several endpoints and the lean client (issue 23): real fake servers on 127.0.0.1, a real client.

- three replicas, one shut down mid-run: every sample arrives exactly once, the run finishes,
  and the samples (seeds, responses, grades) are those one endpoint alone gives;
- ``kill -9`` on two replicas, then a rerun with one gone; ``run`` over two replicas;
- n choices per request by default for ``hosted_vllm/`` (one per request for ``openai/``);
- the lean client records what the litellm path records for the same requests;
- the endpoint pool: fewest in flight first, a failed endpoint rested, then tried again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import polars as pl
import pytest
from fake_openai import fake_openai
from fake_openai_control import closable_openai, held_openai, shut_down, wait_held
from helpers import run_cli, sum_problems, wait_until

from ttcalloc.artifacts import io
from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.backends.endpoints import Endpoints
from ttcalloc.common.errors import InputError
from ttcalloc.stages.sample import SampleOptions, sample_problems

KEPT = ["problem_id", "sample_idx", "seed", "response", "pred_answer", "correct"]
ROOT = Path(__file__).resolve().parents[1]
SECRET = "QKEYSECRET0123456789"


@pytest.fixture
def problems(tmp_path: Path) -> Path:
    return sum_problems(tmp_path, n=30)


def read(folder: Path) -> pl.DataFrame:
    return io.read_artifact(folder, SAMPLES).df.sort("problem_id", "sample_idx")


def test_three_endpoints_one_shut_down_mid_run(
    tmp_path: Path, problems: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # a and c hold their requests until b is gone, so b answers the first ones and work is
    # certainly left for b's closed port to refuse (else the run could end before the shutdown)
    with (
        held_openai(delay_s=0.02) as a,
        closable_openai(delay_s=0.02) as b,
        held_openai(delay_s=0.02) as c,
    ):
        bases = [a.base, b.base, f"{c.base}?api-key={SECRET}"]  # a key in a base's query
        opts = SampleOptions(
            model="openai/fake",
            api_base=bases[0],
            extra_api_bases=tuple(bases[1:]),
            n=4,
            requests_per_batch=2,
            concurrency=6,
            progress=False,
        )
        results = []
        run = threading.Thread(
            target=lambda: results.append(sample_problems(problems, tmp_path / "s", opts))
        )
        run.start()
        wait_until(lambda: len(b.requests) >= 5, lambda: f"b answers 5: {len(b.requests)}")
        killed_at = shut_down(b)  # the replica goes away: its port refuses connections
        a.release()
        c.release()
        run.join(timeout=120)
        assert not run.is_alive()
        err = capfd.readouterr().err
    result = results[0]
    assert result.written == 30 * 4 and result.errors == 0
    # a request cut mid-answer by the shutdown is retried (at most those in flight); one that
    # finds the port closed goes to another endpoint without a retry (the test below)
    assert result.retries <= opts.concurrency
    summary = {e["api_base"]: e for e in result.to_dict()["endpoints"]}
    assert summary[b.base]["rested"] >= 1 and summary[b.base]["failed"] >= 1
    # every attempt was answered by an endpoint, or cut by the shutdown and retried
    assert sum(e["answered"] for e in summary.values()) + result.retries == result.requests
    df = read(tmp_path / "s")
    assert df.height == 120 and df["error"].null_count() == 120
    assert not df.select("problem_id", "sample_idx").is_duplicated().any()
    assert len(b.requests) == killed_at < 60  # nothing reached it after its shutdown
    assert len(a.requests) > 0 and len(c.requests) > 0
    assert len(a.requests) + len(b.requests) + len(c.requests) >= 60
    # the summary: how many each answered, which was rested
    line = next(x for x in err.splitlines() if x.startswith("endpoints:"))
    assert f"{b.base} answered" in line and "rested" in line
    # the samples do not depend on which endpoint answered: one endpoint alone gives the same
    with fake_openai() as alone:
        single = SampleOptions(
            model="openai/fake", api_base=alone.base, n=4, requests_per_batch=2, progress=False
        )
        sample_problems(problems, tmp_path / "one", single)
    assert read(tmp_path / "one").select(KEPT).equals(df.select(KEPT))
    # the provenance records every endpoint, its key masked, as do the summary and every file
    meta = io.read_meta(next((tmp_path / "s").glob("part-*.parquet")))
    assert meta["params"]["api_bases"] == [a.base, b.base, f"{c.base}?api-key=***"]
    stored = b"".join(p.read_bytes() for p in (tmp_path / "s").rglob("*") if p.is_file())
    assert SECRET not in err and SECRET.encode() not in stored


def test_a_refused_connection_goes_to_another_endpoint_without_a_retry(
    tmp_path: Path, problems: Path
) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    with fake_openai() as live:
        opts = SampleOptions(
            model="openai/fake", api_base=dead, extra_api_bases=(live.base,), n=4,
            requests_per_batch=2, concurrency=4, progress=False,
        )  # fmt: skip
        result = sample_problems(problems, tmp_path / "s", opts)
    assert result.written == 30 * 4 and result.errors == 0
    assert result.retries == 0
    summary = {e["api_base"]: e for e in result.to_dict()["endpoints"]}
    assert summary[dead]["answered"] == 0 and summary[dead]["failed"] >= 1
    assert summary[live.base]["answered"] == result.requests


def _sampler(problems: Path, out: Path, bases: list[str]) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "ttcalloc", "sample", str(problems), "--model", "openai/fake",
        "--n", "4", "--requests-per-batch", "2", "--out", str(out), "--concurrency", "4",
        "--flush-every", "6", "--no-progress",
    ]  # fmt: skip
    for base in bases:
        cmd += ["--api-base", base]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test-dummy-key"}
    return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)


def test_kill_9_on_two_endpoints_then_rerun_on_the_one_left(tmp_path: Path, problems: Path) -> None:
    # the first replica holds its answers from its 3rd request on: the run cannot end, so the
    # kill lands mid-run however slow the machine; the other answers the rest meanwhile
    with held_openai(hold_from=3, delay_s=0.1) as one, closable_openai(delay_s=0.1) as two:
        first, second = one.base, two.base
        out = tmp_path / "s"
        proc = _sampler(problems, out, [first, second])
        wait_held(one, proc)
        wait_until(lambda: len(list(out.glob("part-*.parquet"))) >= 2, "2 parts written")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        partial = read(out)
        assert 0 < partial.height < 120, "the kill should land mid-run"
        shut_down(two)  # one replica is gone for the rerun: it is rested, the other answers
        one.release()
        done = _sampler(problems, out, [first, second])
        _, err = done.communicate(timeout=120)
        assert done.returncode == 0, err
        line = next(x for x in err.splitlines() if x.startswith("endpoints:"))
        assert f"{second} answered 0" in line and "rested" in line
    df = read(out)
    assert df.height == 120 and df["error"].null_count() == 120
    assert not df.select("problem_id", "sample_idx").is_duplicated().any()


def test_lean_client_records_what_litellm_records(tmp_path: Path, problems: Path) -> None:
    columns = [*KEPT, "prompt_tokens", "completion_tokens", "cost_usd", "mean_logprob"]
    frames, bodies = {}, {}
    for client in ("auto", "litellm"):
        with fake_openai(wrong_every=3) as server:
            opts = SampleOptions(
                model="openai/fake",
                api_base=server.base,
                n=3,
                requests_per_batch=3,
                price_in=1.0,
                price_out=2.0,
                client=client,
                concurrency=1,  # the fake server's wrong answers follow the request order
                progress=False,
                limit=10,
            )
            sample_problems(problems, tmp_path / client, opts)
            sent = server.requests
        frames[client] = read(tmp_path / client).select(columns)
        bodies[client] = sent
    assert frames["auto"].equals(frames["litellm"])
    assert not frames["auto"]["correct"].all() and frames["auto"]["correct"].any()
    assert frames["auto"]["mean_logprob"].null_count() == 0
    for body in (*bodies["auto"], *bodies["litellm"]):
        assert body["n"] == 3 and body["logprobs"] and body["model"] == "fake"
    assert [r["seed"] for r in bodies["auto"]] == [r["seed"] for r in bodies["litellm"]]


def test_several_endpoints_need_the_lean_client(tmp_path: Path, problems: Path) -> None:
    opts = SampleOptions(
        model="openai/fake",
        api_base="http://127.0.0.1:9/v1",
        extra_api_bases=("http://127.0.0.1:10/v1",),
        client="litellm",
        progress=False,
    )
    with pytest.raises(InputError, match="--api-base given 2 times"):
        sample_problems(problems, tmp_path / "s", opts)
    assert not (tmp_path / "s").exists()
    result = run_cli(
        "sample", problems, "--model", "openai/x", "--api-base", "http://127.0.0.1:9/v1",
        "--client", "fast", "--out", tmp_path / "t",
    )  # fmt: skip
    assert result.exit_code == 2 and "--client 'fast'" in result.stderr


def test_the_pool_prefers_the_least_busy_and_rests_a_failed_endpoint() -> None:
    pool = Endpoints(["http://a/v1", "http://b/v1", "http://c/v1"], rest_s=30.0)
    first, second = pool.pick(), pool.pick()
    assert {first.base, second.base} == {"http://a/v1", "http://b/v1"}
    third = pool.pick()
    assert third.base == "http://c/v1"  # the one with nothing in flight
    pool.done(second, ok=False)  # b fails: rested for 30 s
    pool.done(first, ok=True)
    pool.done(third, ok=True)
    assert all(pool.pick().base != "http://b/v1" for _ in range(10))
    summary = {s["api_base"]: s for s in pool.summary()}
    assert summary["http://b/v1"]["rested"] == 1 and summary["http://b/v1"]["failed"] == 1
    assert summary["http://a/v1"]["answered"] == 1
    # every endpoint resting: the one whose rest ends first is used anyway
    lone = Endpoints(["http://x/v1", "http://y/v1"], rest_s=30.0)
    x = lone.pick()
    lone.done(x, ok=False)
    y = lone.pick()
    lone.done(y, ok=False)
    assert lone.pick().base == "http://x/v1"
    # a rest ends: the endpoint gets requests again, and its first answer clears its streak
    quick = Endpoints(["http://p/v1", "http://q/v1"], rest_s=0.0)
    p = quick.pick()
    quick.done(p, ok=False)
    again = quick.pick()
    assert again.base == "http://p/v1"
    quick.done(again, ok=True)
    assert again.streak == 0 and again.answered == 1


def test_n_per_request_by_default_for_vllm_only(tmp_path: Path, problems: Path) -> None:
    sent = {}
    for model in ("hosted_vllm/fake", "openai/fake"):
        with fake_openai() as server:
            opts = SampleOptions(
                model=model, api_base=server.base, n=4, progress=False, limit=3, price_in=0.0
            )
            result = sample_problems(problems, tmp_path / model.split("/")[0], opts)
            sent[model] = [r.get("n", 1) for r in server.requests]
        assert result.written == 12 and result.errors == 0
    assert sent["hosted_vllm/fake"] == [4, 4, 4]  # one request per problem, the prompt paid once
    assert sent["openai/fake"] == [1] * 12
    df = read(tmp_path / "hosted_vllm")
    assert sorted(set(df["sample_idx"])) == [0, 1, 2, 3] and df["correct"].all()
    base = df.filter(pl.col("sample_idx") == 0)["seed"]  # each sample keeps its own seed
    for i in range(1, 4):
        assert (df.filter(pl.col("sample_idx") == i)["seed"] == base + i).all()


def test_run_spreads_its_requests_over_several_endpoints(tmp_path: Path) -> None:
    from helpers import small_imitate_policy, write_jsonl

    (tmp_path / "p").mkdir()
    policy = small_imitate_policy(tmp_path / "p")
    rows = [{"question": f"What is {i}+{i + 3}?", "answer": str(2 * i + 3)} for i in range(12)]
    q = write_jsonl(tmp_path / "q.jsonl", rows)
    out = tmp_path / "answers.parquet"
    with fake_openai(delay_s=0.02) as a, fake_openai(delay_s=0.02) as b:
        result = run_cli(
            "run", policy, q, "--model", "openai/fake", "--api-base", a.base, "--api-base",
            b.base, "--budget", "2", "--out", out, "--concurrency", "4", "--no-progress",
        )  # fmt: skip
        sent = len(a.requests), len(b.requests)
    assert result.exit_code == 0, result.stderr
    assert min(sent) > 0  # both replicas answered
    samples = io.read_artifact(tmp_path / "answers-samples.parquet", SAMPLES).df
    assert samples.height == sum(sent) and samples["error"].null_count() == samples.height
    assert not samples.select("problem_id", "sample_idx").is_duplicated().any()
    assert pl.read_parquet(out).height == 12  # every question answered


def test_user_and_password_in_the_base_go_as_basic_auth(problems: Path, tmp_path: Path) -> None:
    """``http://user:password@host/v1``: the lean client sends ``Authorization: Basic
    base64(user:password)`` (RFC 7617, UTF-8), as the OpenAI SDK does; the server sees it."""
    import base64

    with fake_openai(echo=True) as server:
        base = server.base.replace("http://", "http://me:p%C3%A4ss@")
        args = ["sample", problems, "--model", "openai/fake", "--api-base", base, "--n", "1"]
        result = run_cli(*args, "--limit", "1", "--out", tmp_path / "s", "--no-progress")
        assert result.exit_code == 0, result.stderr
    token = base64.b64encode("me:päss".encode()).decode()
    assert f"Basic {token}" in pl.read_parquet(tmp_path / "s")["response"][0]
