"""serve: requests/s and the latency ``ttcalloc serve`` adds over its upstream, concurrency 64.

The upstream is the zero-latency local server (benchmarks/fast_server.py, its own process).
The same ``openai`` client, at the same concurrency, sends the same chat requests once straight
to the upstream and once through ``ttcalloc serve`` (its own process) with a static policy at
budget 1 sample per request (every request is answered by one upstream sample, so the two
paths do the same upstream work) and at 1.5 (a policy's mix of maj@1/2/4).  ``serve`` runs
with its default windows (32 requests / 20 ms) and with windows of one request.

    python benchmarks/bench_serve.py [REQUESTS]
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONCURRENCY = 64


def policy(tmp: Path) -> Path:
    """A small static policy (maj@1, 2, 4; trained at 1.5 samples) on the simulated backend."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import small_imitate_policy

    return small_imitate_policy(tmp, 40)


async def drive(base: str, requests: int) -> dict[str, float]:
    """``requests`` chat requests at ``CONCURRENCY`` in flight: requests/s and latencies (ms)."""
    import openai

    sem = asyncio.Semaphore(CONCURRENCY)
    latencies: list[float] = []
    client = openai.AsyncOpenAI(base_url=base, api_key="sk-bench-not-a-key", max_retries=0)

    async def one(i: int) -> None:
        async with sem:
            start = time.perf_counter()
            await client.chat.completions.create(
                model="bench", messages=[{"role": "user", "content": f"What is {i}+1?"}]
            )
            latencies.append(time.perf_counter() - start)

    async with client:
        await asyncio.gather(*(one(i) for i in range(CONCURRENCY)))  # warm the connections
        latencies.clear()
        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"rps": requests / wall, "p50": float(np.median(ms)), "p90": float(np.quantile(ms, 0.9))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def through_serve(
    pol: Path, upstream: str, budget: str, requests: int, *args: str
) -> dict[str, float]:
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    cmd = [sys.executable, "-m", "ttcalloc", "serve", str(pol), "--model", "openai/bench",
           "--api-base", upstream, "--budget", budget, "--port", str(port), "--state-dir",
           str(state), *args]  # fmt: skip
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench-not-a-key", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        return asyncio.run(drive(f"http://127.0.0.1:{port}/v1", requests))
    finally:
        proc.terminate()
        proc.wait()


def run(requests: int = 2000) -> str:
    upstream_proc = subprocess.Popen(
        [sys.executable, str(HERE / "fast_server.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert upstream_proc.stdout is not None
        upstream = upstream_proc.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            pol = policy(Path(tmp))
            rows = [("straight to the upstream", asyncio.run(drive(upstream, requests)))]
            for budget, args, label in [
                ("1", (), "serve, budget 1 (windows of 32 / 20 ms)"),
                ("1", ("--window", "1"), "serve, budget 1 (windows of 1)"),
                ("1.5", (), "serve, budget 1.5 (windows of 32 / 20 ms)"),
            ]:
                rows.append((label, through_serve(pol, upstream, budget, requests, *args)))
    finally:
        upstream_proc.terminate()
        upstream_proc.wait()
    base = rows[0][1]
    out = [
        f"{requests} requests, concurrency {CONCURRENCY}, openai client; load average before: "
        f"{os.getloadavg()[0]:.1f}",
        "",
        "| path | requests/s | p50 ms | p90 ms | added p50 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, r in rows:
        added = r["p50"] - base["p50"]
        out.append(
            f"| {label} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p90']:.1f} | "
            f"{'' if r is base else f'{added:.1f}'} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
