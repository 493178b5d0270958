"""``ttcalloc serve`` for real: 200 concurrent requests through the ``openai`` client on the
simulated backend and on the fake OpenAI server with injected faults, the fleet budget held,
the ledger kept across ``kill -9``, the budget header, streaming, refusals."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fake_openai import ReasoningServer, fake_openai
from helpers import make_questions, run_cli, sim_pipeline, train_both, wait_until
from serve_process import serving, start, stop

# httpx's default timeout is 5 s: a loaded machine may take longer to answer
get, post = partial(httpx.get, timeout=60), partial(httpx.post, timeout=60)
BUDGET = 1.5


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("serve")
    p = sim_pipeline(tmp, 40)
    return train_both(p["alloc"], p["problems"], str(BUDGET), tmp)


def ask_all(url: str, questions: list[str], key: str = "none", **kw: Any) -> list[Any]:
    """Every question sent at once through the openai client (no client retries)."""

    async def go() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=120)
        async with client:
            calls = [
                client.chat.completions.create(
                    model="ttcalloc", messages=[{"role": "user", "content": q}], **kw
                )
                for q in questions
            ]
            return list(await asyncio.gather(*calls))

    return asyncio.run(go())


def arith(n: int, start: int = 0) -> list[str]:
    return [f"What is {i}+{i + 7}?" for i in range(start, start + n)]


def word_problems(n: int) -> list[str]:
    """Questions like the policies' training ones (new draws of the same generator)."""
    return [r["question"] for r in make_questions(n, seed=1)]


def metric(text: str, name: str) -> float:
    m = re.search(rf"^ttcalloc_{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def ledger_requests(root: str) -> int:
    """The requests the server's fleet ledger holds (its /health)."""
    return int(httpx.get(f"{root}/health", timeout=10).json()["ledger_requests"])


def check_replies(replies: list[Any], budget: float) -> float:
    """Every reply has content, usage summing its samples, the extension; their mean cost."""
    costs = []
    for r in replies:
        ext = r.model_extra["ttcalloc"]
        assert r.choices[0].message.content
        assert ext["samples"] >= 1 and sum(ext["votes"].values()) <= ext["samples"]
        assert r.usage.completion_tokens > 0 and r.usage.total_tokens == (
            r.usage.prompt_tokens + r.usage.completion_tokens
        )
        assert ext["cost_unit"] == "samples" and ext["cost"] == ext["samples"]
        costs.append(ext["cost"])
    mean = sum(costs) / len(costs)
    assert abs(mean - budget) <= 0.05 * budget, (mean, budget)
    return mean


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_200_concurrent_requests_on_the_simulated_backend_hold_the_budget(
    trained: dict[str, Path], tmp_path: Path, learner: str
) -> None:
    with serving(trained[learner], tmp_path / "state", "--model", "sim/medium",
                 "--budget", str(BUDGET)) as srv:  # fmt: skip
        replies = ask_all(srv.url, word_problems(200))
        mean = check_replies(replies, BUDGET)
        kinds = {r.model_extra["ttcalloc"]["policy"] for r in replies}
        assert kinds == {"adaptive" if learner == "stop" else "static"}
        # the policy spends unevenly: some questions get more samples than others
        assert len({r.model_extra["ttcalloc"]["samples"] for r in replies}) > 1
        # a window is committed to the ledger after its replies are sent: the last one may
        # still be committing when the client has every reply
        wait_until(lambda: ledger_requests(srv.root) == 200, "the ledger counts all 200")
        page = get(f"{srv.root}/metrics").text
        assert metric(page, "ledger_requests") == 200
        assert metric(page, "mean_cost_per_request") == pytest.approx(mean)
        assert metric(page, "budget_per_request") == BUDGET
        assert metric(page, "requests_total") == 200
        assert 'ttcalloc_request_latency_seconds{quantile="0.5"}' in page


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_one_request_at_a_time_holds_the_budget_too(
    trained: dict[str, Path], tmp_path: Path, learner: str
) -> None:
    with serving(trained[learner], tmp_path / "state", "--model", "sim/medium",
                 "--budget", str(BUDGET)) as srv:  # fmt: skip
        client = openai.OpenAI(base_url=srv.url, api_key="none", max_retries=0)
        replies = [
            client.chat.completions.create(
                model="ttcalloc", messages=[{"role": "user", "content": q}]
            )
            for q in word_problems(100)
        ]
    check_replies(replies, BUDGET)  # each window holds one request: the ledger's feedback


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_200_concurrent_requests_on_the_fake_server_with_faults_are_all_answered(
    trained: dict[str, Path], tmp_path: Path, learner: str
) -> None:
    kinds = ["429", "500", "malformed", "short"]
    faults = {n: kinds[i % 4] for i, n in enumerate(range(5, 400, 9))}
    with fake_openai(ReasoningServer, faults=faults) as fake, serving(
        trained[learner], tmp_path / "state", "--model", "openai/fake", "--api-base", fake.base,
        "--budget", str(BUDGET), "--retries", "6",
    ) as srv:  # fmt: skip
        replies = ask_all(srv.url, word_problems(200))
        check_replies(replies, BUDGET)
        for r in replies:  # the answer is the votes' winner, its sample the reply's content
            ext = r.model_extra["ttcalloc"]
            assert ext["answer"] == max(ext["votes"], key=ext["votes"].get)
            assert r.choices[0].message.content.endswith(f"#### {ext['answer']}")
        page = get(f"{srv.root}/metrics").text
        assert metric(page, "upstream_retries_total") > 0  # the faults were met and retried
        assert len(fake.requests) > sum(r.model_extra["ttcalloc"]["samples"] for r in replies)


def test_kill_9_and_restart_keep_the_ledger(trained: dict[str, Path], tmp_path: Path) -> None:
    state = tmp_path / "state"
    args = ("--model", "sim/medium", "--budget", str(BUDGET))
    first = start(trained["imitate"], state, *args)
    try:
        one = ask_all(first.url, arith(30))
        # what the restart keeps is what was committed; the last window is committed after its
        # replies are sent, so the kill waits for it (else it could cut the commit)
        wait_until(lambda: ledger_requests(first.root) == 30, "the ledger counts all 30")
    finally:
        stop(first, signal.SIGKILL)
    assert first.proc.returncode == -signal.SIGKILL
    spent = sum(r.model_extra["ttcalloc"]["cost"] for r in one)
    with serving(trained["imitate"], state, *args) as again:
        health = get(f"{again.root}/health").json()
        assert health["ledger_requests"] == 30
        assert health["mean_cost"] == pytest.approx(spent / 30)
        two = ask_all(again.url, arith(30, start=30))
    spent += sum(r.model_extra["ttcalloc"]["cost"] for r in two)
    db = sqlite3.connect(state / "ledger.sqlite")
    requests, total = db.execute("SELECT SUM(requests), SUM(spend) FROM rounds").fetchone()
    assert requests == 60 and total == pytest.approx(spent)


def test_a_budget_header_sets_one_requests_budget_apart_from_the_fleet(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    with serving(trained["imitate"], tmp_path / "state", "--model", "sim/medium",
                 "--budget", str(BUDGET), "--max-request-budget", "4") as srv:  # fmt: skip
        client = openai.OpenAI(base_url=srv.url, api_key="none", max_retries=0)
        rich = client.chat.completions.create(
            model="ttcalloc", messages=[{"role": "user", "content": "What is 2+2?"}],
            extra_headers={"X-Ttcalloc-Budget": "4"},
        )  # fmt: skip
        ext = rich.model_extra["ttcalloc"]
        assert ext["budget"] == 4 and ext["samples"] == 4  # one question at 4: its maj@4
        r = post(f"{srv.url}/chat/completions", headers={"X-Ttcalloc-Budget": "9"},
                       json={"messages": [{"role": "user", "content": "What is 1+1?"}]})  # fmt: skip
        assert r.status_code == 400 and "x-ttcalloc-budget" in r.json()["error"]["message"]
        # the window is written after its reply is sent: wait for its row, then read it
        db = sqlite3.connect(tmp_path / "state" / "ledger.sqlite")
        try:
            rows = "SELECT requests, samples, budget, override FROM rounds"
            wait_until(lambda: db.execute(rows).fetchall(), "the header request's window")
            assert db.execute(rows).fetchall() == [(1, 4, 4.0, 1)]  # apart, at its own budget
        finally:
            db.close()
        health = get(f"{srv.root}/health").json()
        assert health["ledger_requests"] == 0  # the fleet's ledger holds the fleet's requests


def test_max_samples_caps_what_one_request_draws(trained: dict[str, Path], tmp_path: Path) -> None:
    for learner in ("imitate", "stop"):
        with serving(trained[learner], tmp_path / learner, "--model", "sim/medium",
                     "--budget", str(BUDGET), "--max-samples", "2") as srv:  # fmt: skip
            client = openai.OpenAI(base_url=srv.url, api_key="none", max_retries=0)
            replies = [
                client.chat.completions.create(
                    model="ttcalloc",
                    messages=[{"role": "user", "content": q}],
                    extra_headers={"X-Ttcalloc-Budget": "6"},
                )
                for q in word_problems(12)
            ]
        samples = [r.model_extra["ttcalloc"]["samples"] for r in replies]
        assert max(samples) == 2, (learner, samples)  # at 6 a request would draw 4 uncapped
        if learner == "imitate":
            assert all(not r.model_extra["ttcalloc"]["complete"] for r in replies)


def test_stream_true_streams_the_final_answer(trained: dict[str, Path], tmp_path: Path) -> None:
    with serving(trained["stop"], tmp_path / "state", "--model", "sim/medium",
                 "--budget", str(BUDGET)) as srv:  # fmt: skip
        client = openai.OpenAI(base_url=srv.url, api_key="none", max_retries=0)
        stream = client.chat.completions.create(
            model="ttcalloc", messages=[{"role": "user", "content": "What is 3+4?"}], stream=True
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "####" in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["ttcalloc"]["samples"] >= 1


def test_serve_refuses_what_it_cannot_serve(trained: dict[str, Path], tmp_path: Path) -> None:
    cases = [
        (["--budget", "0.5"], "below the cheapest"),
        (["--budget", "1.5", "--max-request-budget", "1"], "--max-request-budget"),
        (["--budget", "1.5", "--window", "0"], "--window 0"),
        (["--budget", "1.5", "--api-key", "short"], "--api-key"),
        (["--budget", "1.5", "--port", "70000"], "--port 70000"),
        (["--budget", "1.5", "--budget-unit", "tokens"], "counts cost in samples"),
        (["--budget", "100"], "--budget-unit samples confirms"),
        (["--budget", "1.5", "--price", "other=1,2"], "no price for model 'sim/medium'"),
    ]
    for args, message in cases:
        r = run_cli("serve", trained["imitate"], "--model", "sim/medium", *args)
        assert r.exit_code == 2, (args, r.stderr)
        assert message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = run_cli("serve", tmp_path / "nope", "--model", "sim/medium", "--budget", "1.5")
    assert r.exit_code != 0 and "nope" in r.stderr
    several = tmp_path / "several"  # the same policy, its actions renamed MODEL:maj@k
    shutil.copytree(trained["imitate"], several)
    info = json.loads((several / "policy.json").read_text())
    for action in info["actions"]:
        action["name"] = f"m:{action['name']}"
    (several / "policy.json").write_text(json.dumps(info))
    r = run_cli("serve", several, "--model", "sim/medium", "--budget", "1.5")  # one SPEC
    assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "give --model NAME=SPEC for each" in r.stderr
