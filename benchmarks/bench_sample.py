"""sample: the sampler's throughput against a bare pooled HTTP client and bare litellm calls.

All three run in one benchmark run against the same zero-latency local OpenAI-compatible server
(benchmarks/fast_server.py, its own process), at concurrency 64 and 256, with n = 1 and n = 8
choices per request:

- bare HTTP: one pooled ``aiohttp.ClientSession`` posting the request ttcalloc sends and decoding
  the JSON answer, nothing else (the ceiling a Python client reaches);
- bare litellm: ``litellm.acompletion`` with the same request (the old per-request path);
- the sampler: ``sample_problems`` with its defaults on the lean client (planning, rate limiting,
  retries, grading, the journal, Parquet parts), one request of n choices per problem.

Each measurement runs in a fresh process so that its peak memory (VmHWM) is its own; timing
starts once the imports are done.  ``python bench_sample.py --profile sampler 2000 8 64``
prints a cProfile of the sampler instead; ``--offline 5000 8`` the sampler's own CPU time per
sample with no HTTP at all (:func:`offline`).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SAMPLES = {
    1: {"http": 8000, "sampler": 8000, "litellm": 1500},
    8: {"http": 40000, "sampler": 40000, "litellm": 4000},
}
CONFIGS = [(64, 1), (64, 8), (256, 1), (256, 8)]  # (concurrency, n)


def _messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"What is {i}+1?"}]


def bare_http(requests: int, n: int, concurrency: int, base: str) -> None:
    import asyncio

    import aiohttp

    async def run() -> None:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            sem = asyncio.Semaphore(concurrency)
            headers = {"Authorization": "Bearer x", "Content-Type": "application/json"}

            async def one(i: int) -> None:
                body = {"model": "bench", "messages": _messages(i), "temperature": 0.7}
                body |= {"max_tokens": 512, "seed": i, "logprobs": True, "top_logprobs": 1}
                if n > 1:
                    body["n"] = n
                async with (
                    sem,
                    session.post(
                        f"{base}/chat/completions", data=json.dumps(body).encode(), headers=headers
                    ) as r,
                ):
                    assert len(json.loads(await r.read())["choices"]) == n

            await asyncio.gather(*(one(i) for i in range(requests)))

    asyncio.run(run())


def bare_litellm(requests: int, n: int, concurrency: int, base: str) -> None:
    import asyncio

    from ttcalloc.backends.litellm_backend import import_litellm

    litellm = import_litellm()

    async def run() -> None:
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                await litellm.acompletion(
                    model="openai/bench",
                    api_base=base,
                    num_retries=0,
                    max_retries=0,
                    messages=_messages(i),
                    seed=i,
                    temperature=0.7,
                    max_tokens=512,
                    timeout=120.0,
                    n=n if n > 1 else None,
                    logprobs=True,
                    top_logprobs=1,
                )

        await asyncio.gather(*(one(i) for i in range(requests)))

    asyncio.run(run())


def sampler(requests: int, n: int, concurrency: int, base: str) -> None:
    import polars as pl

    from ttcalloc.artifacts import io
    from ttcalloc.artifacts.schemas import PROBLEMS
    from ttcalloc.stages.sample import SampleOptions, sample_problems

    tmp = Path(tempfile.mkdtemp())
    problems = pl.DataFrame(
        {
            "problem_id": [str(i) for i in range(requests)],
            "question": [f"What is {i}+1?" for i in range(requests)],
            "answer": ["7"] * requests,
            "split": ["train"] * requests,
            "grader": ["numeric"] * requests,
        }
    )
    io.write_artifact(problems, tmp / "p.parquet", PROBLEMS, stage="bench")
    opts = SampleOptions(
        model="openai/bench",
        api_base=base,
        n=n,
        concurrency=concurrency,
        requests_per_batch=n,
        progress=False,
    )
    result = sample_problems(tmp / "p.parquet", tmp / "s", opts)
    assert result.written == requests * n and result.errors == 0, result


KINDS = {"http": bare_http, "litellm": bare_litellm, "sampler": sampler}


def inner(kind: str, samples: int, n: int, concurrency: int, base: str) -> dict[str, float]:
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-key")
    import aiohttp  # noqa: F401  (imports before timing, on every side)
    import polars  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from ttcalloc.backends.litellm_backend import import_litellm
    from ttcalloc.stages.sample import sample_problems  # noqa: F401

    import_litellm()
    start, cpu = time.perf_counter(), time.process_time()
    KINDS[kind](samples // n, n, concurrency, base)
    wall = time.perf_counter() - start
    cpu_us = 1e6 * (time.process_time() - cpu) / samples  # every thread of the process
    return {"wall": wall, "sps": samples / wall, "cpu_us": cpu_us, "rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, samples: int, n: int, concurrency: int, base: str) -> dict[str, float]:
    args = [kind, str(samples), str(n), str(concurrency), base]
    out = subprocess.run(
        [sys.executable, __file__, "--inner", *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_server() -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(HERE / "fast_server.py")], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def run() -> str:
    server, base = start_server()
    rows, ratios = [], []
    try:
        for concurrency, n in CONFIGS:
            # the sampler and the bare client alternate, best of 2 each, to damp machine noise
            got = {"litellm": measure("litellm", SAMPLES[n]["litellm"], n, concurrency, base)}
            for kind in ("http", "sampler", "http", "sampler"):
                m = measure(kind, SAMPLES[n][kind], n, concurrency, base)
                if kind not in got or m["sps"] > got[kind]["sps"]:
                    got[kind] = m
            ratio = got["sampler"]["sps"] / got["http"]["sps"]
            ratios.append(ratio)
            for kind, label in [
                ("http", "bare pooled `aiohttp`"),
                ("litellm", "bare `litellm.acompletion`"),
                ("sampler", "`ttcalloc sample` (lean client)"),
            ]:
                m = got[kind]
                share = f"{100 * m['sps'] / got['http']['sps']:.0f}%"
                rows.append(
                    f"| {concurrency} | {n} | {label} | {SAMPLES[n][kind]:,} | {m['wall']:.2f} | "
                    f"{m['sps']:,.0f} | {share} | {m['cpu_us']:.1f} | {m['rss_mb']:.0f} |"
                )
    finally:
        server.kill()
    return "\n".join(
        [
            "## sample: sampler throughput and memory",
            "",
            "Zero-latency local server (`benchmarks/fast_server.py`, one process); each row is one "
            "fresh process (the bare client and the sampler: best of 2, alternating); n choices "
            "per request, one request per problem; the sampler with its defaults (parts of up to "
            "5,000 samples, every sample journaled before it is counted).",
            "",
            "| concurrency | n | client | samples | wall (s) | samples/s | of bare HTTP | "
            "CPU µs/sample | peak RSS (MB) |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"The sampler reaches {100 * min(ratios):.0f}% to {100 * max(ratios):.0f}% of the bare "
            "pooled HTTP client's samples per second. Every process imports ttcalloc, litellm "
            "and aiohttp before timing starts, so the bare rows' peak memory includes them. On a "
            "machine shared with other work the figures move by some 20% between runs; the "
            "sampler and the bare client alternate so that both see the same load. CPU µs/sample "
            "is the process's CPU time (all its threads) over the samples: less moved by the "
            "load than the wall time.",
            "",
        ]
    )


def profile(kind: str, samples: int, n: int, concurrency: int, base: str) -> None:
    import cProfile
    import pstats

    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-key")
    from ttcalloc.backends.litellm_backend import import_litellm

    import_litellm()
    prof = cProfile.Profile()
    prof.runcall(KINDS[kind], samples // n, n, concurrency, base)
    pstats.Stats(prof, stream=sys.stderr).sort_stats(
        os.environ.get("PROF_SORT", "tottime")
    ).print_stats(os.environ.get("PROF_FILTER", ""), 30)


def offline(requests: int, n: int) -> float:
    """The sampler's own CPU µs per sample, without HTTP: the lean client's ``complete`` builds
    the request body and parses fast_server's canned answer, nothing is sent (planning, grading,
    journal, parts and bookkeeping remain; the garbage collector off, as it adds noise)."""
    import asyncio
    import gc

    sys.path.insert(0, str(HERE))
    from fast_server import response

    from ttcalloc.backends.litellm_backend import import_litellm
    from ttcalloc.backends.openai_http import OpenAIHTTPBackend

    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-key")
    import_litellm()
    raw = response(n).split(b"\r\n\r\n", 1)[1]

    async def complete(self: OpenAIHTTPBackend, request: Any) -> Any:
        self.body(request)
        await asyncio.sleep(0)
        return self._parse_json(raw)

    OpenAIHTTPBackend.complete = complete  # type: ignore[method-assign]
    gc.disable()
    sampler(64, n, 64, "http://127.0.0.1:9/v1")  # warm up
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        sampler(requests, n, 64, "http://127.0.0.1:9/v1")
        best = min(best, 1e6 * (time.process_time() - start) / (requests * n))
    return best


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        a = sys.argv[2:]
        print(json.dumps(inner(a[0], int(a[1]), int(a[2]), int(a[3]), a[4])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--offline":
        a = sys.argv[2:]
        print(f"{offline(int(a[0]), int(a[1])):.1f} CPU µs per sample (best of 3)")
    elif len(sys.argv) > 1 and sys.argv[1] == "--profile":
        a = sys.argv[2:]
        srv, url = start_server()
        try:
            profile(a[0], int(a[1]), int(a[2]), int(a[3]), url)
        finally:
            srv.kill()
    else:
        print(run())
