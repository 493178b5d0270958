"""`sample --batch`: the client's cost of a batch run (plan, upload, poll, download, grade,
write parts), against the test suite's fake server answering /v1/files and /v1/batches at once.

Run it alone: `.venv/bin/python benchmarks/bench_batch.py` prints a markdown table (docs/batch.md
holds the last one).  The server runs in its own process, so the CPU seconds are ttcalloc's own
(the process start and imports included: the first row).
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

ROOT = Path(__file__).resolve().parents[1]
N = 8  # samples per problem


def problems(folder: Path, count: int) -> Path:
    from ttcalloc.stages import data

    rows = [
        {"question": f"What is {i}+{i + 1}?", "answer": f"#### {2 * i + 1}"} for i in range(count)
    ]
    src = folder / "p.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = folder / "problems.parquet"
    data.build_problems(src, out, "gsm8k", data.DataOptions(test_frac=0.5))
    return out


def measure(base: str, count: int, folder: Path) -> dict[str, float]:
    path = problems(folder, count)
    cmd = [
        sys.executable, "-m", "ttcalloc", "sample", str(path), "--model", "openai/bench",
        "--api-base", base, "--n", str(N), "--batch", "--poll-seconds", "0.2",
        "--out", str(folder / "s"), "--no-progress", "--json",
    ]  # fmt: skip
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(done.stdout)
    assert result["written"] == count * N, result
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # children's peak RSS: the largest so far, so the runs go from small to large
    return {"samples": count * N, "wall": wall, "cpu": cpu, "rss_mb": after.ru_maxrss / 1024}


def run() -> str:
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_openai.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        rows = []
        for count in (1, 250, 2500):
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(measure(base, count, Path(tmp)))
    finally:
        server.kill()
    start = rows[0]
    lines = [
        "| samples | wall s | client CPU s | CPU ms per sample (less the 8-sample run) | peak RSS MB |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        extra = r["samples"] - start["samples"]
        per = f"{1000 * (r['cpu'] - start['cpu']) / extra:.2f}" if extra else "-"
        lines.append(
            f"| {r['samples']:,} | {r['wall']:.1f} | {r['cpu']:.1f} | {per} | {r['rss_mb']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
