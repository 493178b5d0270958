"""``ttcalloc serve`` as an HTTP server: 4xx JSON errors, the API key, 503 with Retry-After
when the queue is full, timeouts, the model's failures, and SIGTERM finishing what is in
flight.  The server runs for real (a child process) against the fake OpenAI server."""

from __future__ import annotations

import concurrent.futures
import signal
import sqlite3
from functools import partial
from pathlib import Path

import httpx
import openai
import pytest
from fake_openai import fake_openai
from fake_openai_control import held_openai
from helpers import sim_pipeline, train_both, wait_until
from serve_process import Served, serving, start, stop

# httpx's default timeout is 5 s: a loaded machine may take longer to answer
get, post = partial(httpx.get, timeout=60), partial(httpx.post, timeout=60)
ASK = {"messages": [{"role": "user", "content": "What is 2+3?"}]}


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("serve-http")
    p = sim_pipeline(tmp, 40)
    return train_both(p["alloc"], p["problems"], "1.5", tmp)["imitate"]


def fake_args(base: str, *more: str) -> tuple[str, ...]:
    return ("--model", "openai/fake", "--api-base", base, "--budget", "1.5", *more)


def test_bad_requests_get_4xx_with_a_json_error(policy: Path, tmp_path: Path) -> None:
    with serving(policy, tmp_path / "state", "--model", "sim/medium", "--budget", "1.5",
                 "--max-body", "2000") as srv:  # fmt: skip
        chat = f"{srv.url}/chat/completions"
        cases = [
            (post(chat, content=b"{not json"), 400, "not JSON"),
            (post(chat, json=[1, 2]), 400, "JSON object"),
            (post(chat, json={}), 400, "messages"),
            (post(chat, json={"messages": []}), 400, "messages"),
            (post(chat, json={"messages": "hi"}), 400, "messages"),
            (post(chat, json={"messages": [{"content": "x"}]}), 400, "role"),
            (post(chat, json={"messages": [{"role": "user", "content": 3}]}), 400, "content"),
            (post(chat, json={"messages": [{"role": "system", "content": "x"}]}), 400,
             "no user message"),
            (post(chat, json={**ASK, "stream": "yes"}), 400, "stream"),
            (post(chat, json={**ASK, "n": 3}), 400, "n: only 1"),
            (post(chat, json={**ASK, "model": 5}), 400, "model"),
            (post(chat, json={**ASK, "pad": "x" * 3000}), 413, "2000 bytes"),
            (post(chat, json=ASK, headers={"X-Ttcalloc-Budget": "lots"}), 400,
             "not a number"),
            (post(chat, json=ASK, headers={"X-Ttcalloc-Budget": "0.5"}), 400, "outside"),
            (get(chat), 405, "Method Not Allowed"),
            (get(f"{srv.url}/nope"), 404, "Not Found"),
        ]  # fmt: skip
        for response, status, message in cases:
            assert response.status_code == status, (message, response.text)
            error = response.json()["error"]
            assert message in error["message"] and error["type"], error
        assert post(chat, json=ASK).status_code == 200  # the server still answers
        with pytest.raises(openai.BadRequestError, match="messages"):
            openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0).chat.completions.create(
                model="ttcalloc", messages=[]
            )


def test_the_api_key_is_checked(policy: Path, tmp_path: Path) -> None:
    key = "serve-key-0123456789"
    with serving(policy, tmp_path / "state", "--model", "sim/medium", "--budget", "1.5",
                 "--api-key", key) as srv:  # fmt: skip
        for wrong in ("nope", key[:-1], key + "x"):
            client = openai.OpenAI(base_url=srv.url, api_key=wrong, max_retries=0)
            with pytest.raises(openai.AuthenticationError):
                client.chat.completions.create(model="ttcalloc", messages=ASK["messages"])
        r = post(f"{srv.url}/chat/completions", json=ASK)  # no Authorization header
        assert r.status_code == 401 and "API key" in r.json()["error"]["message"]
        assert get(f"{srv.root}/metrics").status_code == 401
        assert get(f"{srv.url}/models").status_code == 401
        assert get(f"{srv.root}/health").status_code == 200  # a liveness probe needs none
        client = openai.OpenAI(base_url=srv.url, api_key=key, max_retries=0)
        ok = client.chat.completions.create(model="ttcalloc", messages=ASK["messages"])
        assert ok.choices[0].message.content
        assert [m.id for m in client.models.list()] == ["ttcalloc"]
        log = srv.log()
    assert key not in log


def test_a_full_queue_answers_503_with_retry_after(policy: Path, tmp_path: Path) -> None:
    # the model holds every request until released: the two admitted stay in flight (the
    # queue stays full) however slow the machine, and each of the six sent then is refused
    with held_openai() as fake, serving(
        policy, tmp_path / "state", *fake_args(fake.base, "--max-queue", "2", "--window", "1")
    ) as srv, concurrent.futures.ThreadPoolExecutor(2) as pool:  # fmt: skip
        admitted = [
            pool.submit(httpx.post, f"{srv.url}/chat/completions", json=ASK, timeout=120)
            for _ in range(2)
        ]
        wait_until(lambda: in_flight(srv) == 2, lambda: f"2 requests admitted: {srv.log()}")
        refused = [post(f"{srv.url}/chat/completions", json=ASK, timeout=60) for _ in range(6)]
        fake.release()
        answered = [c.result() for c in admitted]
    assert [r.status_code for r in answered] == [200, 200], [r.text for r in answered]
    assert [r.status_code for r in refused] == [503] * 6, [r.text for r in refused]
    for r in refused:
        assert r.headers["retry-after"] == "1" and "busy" in r.json()["error"]["message"]


def test_timeouts_and_model_failures_are_json_errors(policy: Path, tmp_path: Path) -> None:
    # the model holds its answer until the 504 is in (a 3 s delay could be outrun by a
    # server too slow to time out at 0.5 s)
    with held_openai() as slow, serving(
        policy, tmp_path / "slow", *fake_args(slow.base, "--request-timeout", "0.5")
    ) as srv:  # fmt: skip
        r = post(f"{srv.url}/chat/completions", json=ASK, timeout=60)
        assert r.status_code == 504 and "0.5 s" in r.json()["error"]["message"]
        slow.release()
    with fake_openai(fault_all="401") as broken, serving(
        policy, tmp_path / "broken", *fake_args(broken.base)
    ) as srv:  # fmt: skip
        r = post(f"{srv.url}/chat/completions", json=ASK, timeout=60)
        assert r.status_code == 502, r.text
        assert "sk-secret1234567890" not in r.text and "model" in r.json()["error"]["message"]
        assert get(f"{srv.root}/health").status_code == 200  # it still serves


def in_flight(srv: Served) -> int:
    """The server's ``ttcalloc_in_flight`` gauge."""
    text = httpx.get(f"{srv.root}/metrics", timeout=10).text
    return int(float(next(line.split()[1] for line in text.splitlines()
                          if line.startswith("ttcalloc_in_flight"))))  # fmt: skip


def listening(srv: Served) -> bool:
    """Whether the server still accepts connections."""
    try:
        httpx.get(f"{srv.root}/health", timeout=10)
    except httpx.ConnectError:
        return False
    except httpx.TransportError:  # accepted as it closed: ask again
        return True
    return True


def test_sigterm_finishes_the_requests_in_flight_and_flushes_the_ledger(
    policy: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    # the model holds every request until released: the four stay in flight while the
    # server is told to stop (a gauge read between a delay's start and end could miss them)
    with held_openai() as fake:
        srv = start(policy, state, *fake_args(fake.base))
        try:
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                calls = [
                    pool.submit(httpx.post, f"{srv.url}/chat/completions", json=ASK, timeout=120)
                    for _ in range(4)
                ]
                # all four are admitted by the server and one at least is at the model; a
                # SIGTERM before a request is accepted would refuse it (CI once sent it early)
                wait_until(
                    lambda: fake.held > 0 and in_flight(srv) == 4,
                    lambda: f"4 requests in flight, the model holding some: {srv.log()}",
                )
                srv.proc.send_signal(signal.SIGTERM)
                wait_until(
                    lambda: not listening(srv), lambda: f"serve stops listening: {srv.log()}"
                )
                fake.release()  # the model answers only once the server is stopping
                responses = [c.result() for c in calls]
            code = srv.proc.wait(timeout=60)
        finally:
            stop(srv, signal.SIGKILL)
    assert [r.status_code for r in responses] == [200] * 4
    assert code == 0, srv.log()
    assert "stopped" in srv.log()
    with sqlite3.connect(state / "ledger.sqlite") as db:
        assert db.execute("SELECT SUM(requests) FROM rounds").fetchone()[0] == 4
    with pytest.raises(httpx.ConnectError):  # it no longer listens
        httpx.get(f"{srv.root}/health")
