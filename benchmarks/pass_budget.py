"""Issue 26: does the stop policy's realized test cost meet its budget on pass@k sets?

Two pass@k layouts, each over split seeds 0, 1, 2 and budgets 2, 4, 8, through the CLI:
the synthetic MATH generator (``math_samples.py``: 500 problems x 128 samples, ``--test-frac
0.3``, pass@1..64, cap 64) and SVAMP (Codex PoT, 999 x 30, ``--test-frac 0.3``, pass@1,2,4,8,
cap 15).  Per cell: the stop policy's realized mean cost on the test problems' eval half over
the budget, and its gain over uniform at that cost (``evaluate --json``).

    .venv/bin/python benchmarks/pass_budget.py WORK [--root PACKAGE_ROOT] [--tag NAME]

``WORK`` keeps the prepared layouts (reused between runs); ``--root`` runs another checkout's
``ttcalloc`` package (e.g. main's) on the same layouts, for a before/after table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import math_samples
from common import ttcalloc_at

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
BUDGETS = (2.0, 4.0, 8.0)
HARD = 0.4  # mathhard: 40% of problems hard (24% never solved in 64 samples)


def _prepare(work: Path, name: str, seed: int) -> Path:
    """data -> import -> estimate -> solve for one layout and split seed (skipped when done)."""
    d = work / f"{name}-{seed}"
    if (d / "allocation.parquet").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    if name in ("math", "mathhard", "mathlevel"):
        src = work / name
        if not (src / "math_samples.parquet").exists():
            src.mkdir(parents=True, exist_ok=True)
            hard = HARD if name == "mathhard" else 0.0
            math_samples.write(src, hard=hard, by_level=name == "mathlevel")
        data = ["data", "math", "--source", src / "math_problems.jsonl"]
        raw, ks = src / "math_samples.parquet", "1,2,4,8,16,32,64"
    else:
        data = ["data", "jsonl", "--source", DATA / "svamp_problems.jsonl", "--id-field", "id"]
        raw, ks = DATA / "svamp_codex_pot_30samples.parquet", "1,2,4,8"
    p = d / "problems.parquet"
    steps: list[list[object]] = [
        [*data, "--test-frac", "0.3", "--seed", seed, "--out", p],
        ["import", raw, "--problems", p, "--out", d / "samples.parquet"],
        ["estimate", d / "samples.parquet", "--ks", ks, "--strategy", "pass", "--holdout", "0.5",
         "--cost", "samples", "--problems", p, "--out", d / "curves.parquet"],
        ["solve", d / "curves.parquet", "--budgets", "2,4,8", "--problems", p,
         "--out", d / "allocation.parquet"],
    ]  # fmt: skip
    for args in steps:
        ttcalloc_at(ROOT, args)
    return d


def _cell(root: Path, d: Path, tag: str) -> dict[float, tuple[float, float, float, float]]:
    """Per budget: realized cost / budget, gain over uniform and its 95% interval."""
    out = d / f"stop-{tag}"
    p = d / "problems.parquet"
    args = [
        "train", d / "allocation.parquet", "--problems", p, "--budgets", "2,4,8", "--out", out,
        "--force",
    ]  # fmt: skip
    ttcalloc_at(root, args)
    specs = [f"stop={out / f'b{b:g}'}" for b in BUDGETS]
    args = [
        "evaluate", *specs, "--problems", p, "--curves", d / "curves.parquet",
        "--samples", d / "samples.parquet", "--out", d / f"report-{tag}", "--json", "--force",
    ]  # fmt: skip
    report = json.loads(ttcalloc_at(root, args))
    cells = {}
    for r in report["policies"]:
        if r["policy"] == "stop":
            lo, hi = r["gain_vs_uniform_ci"]
            b = float(r["budget"])
            cells[b] = (r["cost"] / b, r["gain_vs_uniform"], lo, hi)
    return cells


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("work", type=Path)
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--tag", default="today")
    ap.add_argument("--sets", default="math,svamp")
    ap.add_argument("--seeds", default="0,1,2", help="split seeds, comma-separated")
    args = ap.parse_args()
    print(f"| set | seed | {' | '.join(f'B = {b:g}: cost / B, gain [CI]' for b in BUDGETS)} |")
    print("|---|---|" + "---|" * len(BUDGETS))
    for name in args.sets.split(","):
        for seed in map(int, args.seeds.split(",")):
            d = _prepare(args.work, name, seed)
            cells = _cell(args.root.resolve(), d, args.tag)
            row = [
                f"{c[0]:.3f}, {c[1]:+.4f} [{c[2]:+.4f}, {c[3]:+.4f}]"
                for c in (cells[b] for b in BUDGETS)
            ]
            print(f"| {name} | {seed} | {' | '.join(row)} |", flush=True)


if __name__ == "__main__":
    main()
