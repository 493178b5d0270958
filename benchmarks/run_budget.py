"""How closely ``ttcalloc run`` with an adaptive (stop) policy meets its budget.

Realized mean cost per question / budget, for several budgets and seeds, on three sources of
samples (each run in a fresh output folder, so every sample is drawn by the run itself):

- ``sim``: the simulated backend, a stop policy trained at B = 1.5 on 60 simulated questions,
  answering 200 fresh ones per seed (``--seed`` changes every sample); ``sim-hard``: the same
  with ``--hard-budget``;
- ``fake``: the fake OpenAI server of the tests (``tests/fake_openai.py``; every third answer
  wrong, by request number), 40 arithmetic questions, concurrency 4;
- ``smollm2``: real SmolLM2-135M samples replayed: the 8 samples per problem that ``make demo``
  drew (``out/demo/samples.parquet``), served by the CLI's replay backend
  (``--model replay:out/demo/samples.parquet``: each question's recorded samples in an order
  seeded by ``--seed``), answering the demo's 25 test questions with its stop policies.

    .venv/bin/python benchmarks/run_budget.py [sim] [sim-hard] [fake] [smollm2] [--demo out/demo]

It drives the CLI in-process, so the same script measures any version of the code (run it with
``PYTHONPATH`` at another checkout to compare).  Prints a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from ttcalloc.cli import app

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: Any) -> dict[str, Any]:
    r = CliRunner().invoke(app, [str(a) for a in args])
    if r.exit_code != 0:
        raise SystemExit(f"{args[:2]}: {r.stderr}")
    return json.loads(r.stdout) if "--json" in args else {}


def questions(n: int, seed: int) -> list[dict[str, str]]:
    """The tests' word problems (harder when longer, for sim/), with ids and bare answers."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import make_questions

    return [
        {
            "id": f"s{seed}-{i}",
            "question": r["question"],
            "answer": r["answer"].removeprefix("#### "),
        }
        for i, r in enumerate(make_questions(n, seed=seed))
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def sim_policy(tmp: Path) -> Path:
    q = write_jsonl(tmp / "train.jsonl", questions(60, seed=0))
    cli("data", "jsonl", "--source", q, "--grader", "numeric", "--test-frac", "0.3",
        "--out", tmp / "problems.parquet")  # fmt: skip
    cli("sample", tmp / "problems.parquet", "--model", "sim/medium", "--n", "8", "--no-progress",
        "--out", tmp / "samples")  # fmt: skip
    cli("estimate", tmp / "samples", "--problems", tmp / "problems.parquet", "--ks", "1,2,4",
        "--cost", "samples", "--out", tmp / "curves.parquet")  # fmt: skip
    cli("solve", tmp / "curves.parquet", "--problems", tmp / "problems.parquet", "--budgets",
        "1.5,2.5", "--out", tmp / "alloc.parquet")  # fmt: skip
    cli("train", tmp / "alloc.parquet", "--problems", tmp / "problems.parquet", "--budget", "1.5",
        "--learner", "stop", "--out", tmp / "stop")  # fmt: skip
    return tmp / "stop"


def run(policy: Path, source: Path, out: Path, budget: float, *extra: Any) -> dict[str, Any]:
    return cli("run", policy, source, "--budget", budget, "--out", out, "--no-progress",
               "--json", *extra)  # fmt: skip


def measure_sim(
    tmp: Path, budgets: list[float], seeds: list[int], hard: bool = False
) -> list[dict[str, Any]]:
    policy = tmp / "stop" if (tmp / "stop").exists() else sim_policy(tmp)
    flags, name = (["--hard-budget"], "sim, --hard-budget") if hard else ([], "sim")
    rows = []
    for seed in seeds:
        q = write_jsonl(tmp / f"new-{seed}.jsonl", questions(200, seed=100 + seed))
        for b in budgets:
            out = tmp / f"{name}-{seed}-{b}.parquet".replace(", ", "-")
            r = run(policy, q, out, b, "--model", "sim/medium", "--seed", seed, *flags)
            rows.append({"source": name, "budget": b, "seed": seed, **_pick(r)})
    return rows


def measure_fake(tmp: Path, budgets: list[float], seeds: list[int]) -> list[dict[str, Any]]:
    sys.path.insert(0, str(ROOT / "tests"))
    from fake_openai import fake_openai

    policy = tmp / "stop" if (tmp / "stop").exists() else sim_policy(tmp)
    rows = []
    for seed in seeds:
        rng = random.Random(seed)
        qs = []
        for i in range(40):
            a, b = rng.randint(1, 99), rng.randint(1, 99)
            qs.append({"id": f"f{i}", "question": f"What is {a}+{b}?", "answer": str(a + b)})
        q = write_jsonl(tmp / f"fake-{seed}.jsonl", qs)
        for b in budgets:
            with fake_openai(wrong_every=3) as server:
                r = run(policy, q, tmp / f"fake-{seed}-{b}.parquet", b, "--model", "openai/fake",
                        "--api-base", server.base, "--concurrency", "4")  # fmt: skip
            rows.append({"source": "fake", "budget": b, "seed": seed, **_pick(r)})
    return rows


def measure_smollm2(
    tmp: Path, demo: Path, budgets: list[str], seeds: list[int]
) -> list[dict[str, Any]]:
    """The demo's stop policies on its 25 test questions, on ``replay:`` of its samples."""
    model = f"replay:{demo / 'samples.parquet'}"
    rows = []
    for seed in seeds:
        for b in budgets:
            r = run(demo / f"stop-{b}", demo / "problems.parquet", tmp / f"demo-{seed}-{b}.parquet",
                    b, "--split", "test", "--model", model, "--seed", seed,
                    "--concurrency", "4")  # fmt: skip
            rows.append({"source": "smollm2", "budget": float(b), "seed": seed, **_pick(r)})
    return rows


def _pick(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "questions": r["questions"],
        "mean_cost": r["mean_cost"],
        "ratio": r["mean_cost"] / r["budget"],
        "accuracy": r["accuracy"],
    }


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| source | questions | budget | realized cost / budget, per seed | mean | accuracy |",
        "| --- | ---: | ---: | --- | ---: | ---: |",
    ]
    keys = sorted({(r["source"], r["budget"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for source, b in keys:
        sel = [r for r in rows if r["source"] == source and r["budget"] == b]
        ratios = [r["ratio"] for r in sel]
        acc = np.mean([r["accuracy"] for r in sel])
        out.append(
            f"| {source} | {sel[0]['questions']} | {b:g} | "
            f"{', '.join(f'{x:.3f}' for x in ratios)} | {np.mean(ratios):.3f} | {acc:.3f} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="*", default=["sim", "sim-hard", "fake", "smollm2"])
    ap.add_argument("--demo", type=Path, default=ROOT / "out" / "demo")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "sim" in args.sources:
            rows += measure_sim(tmp, [1.25, 1.5, 2.0, 3.0], seeds)
        if "sim-hard" in args.sources:
            rows += measure_sim(tmp, [1.25, 1.5, 2.0], seeds, hard=True)
        if "fake" in args.sources:
            rows += measure_fake(tmp, [1.25, 1.5, 2.0], seeds)
        if "smollm2" in args.sources:
            if not (args.demo / "samples.parquet").exists():
                sys.stderr.write(f"{args.demo}: no make demo output; smollm2 skipped\n")
            else:
                rows += measure_smollm2(tmp, args.demo, ["1.25", "1.5", "2"], seeds)
    print(table(rows))


if __name__ == "__main__":
    main()
