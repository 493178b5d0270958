"""The `stop` learner on samples drawn with several prompt variants (GSM8K test, GPT-4 MoT: 4
prompts x 3 samples per problem), through the CLI, over split seeds, as docs/adaptive.md ran it.

Per seed: ``data gsm8k --test-frac 0.3``, ``import`` (which keeps the variants since
2026-12-05), ``estimate --ks 1,2,3,4,6 --holdout 0.5 --cost samples``, ``solve``, ``train``
(stop, budgets 1.5, 2, 3), ``evaluate --json``.  Prints, per seed and budget, the stop policy's
realized cost / budget and its gain over uniform at that cost with the 95% interval, and the
gains of early-stopping self-consistency and adaptive-consistency.

    .venv/bin/python benchmarks/stop_variants.py WORK [--root PACKAGE_ROOT] [--seeds 0,1,2]

``--root`` runs another checkout's ``ttcalloc`` package (a before/after table); every stage is
run with it, into ``WORK/<tag>-<seed>``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from common import ttcalloc_at

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
BUDGETS = (1.5, 2.0, 3.0)


def one_seed(root: Path, d: Path, seed: int) -> dict:
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    p = d / "problems.parquet"
    budgets = ",".join(f"{b:g}" for b in BUDGETS)
    steps: list[list[object]] = [
        ["data", "gsm8k", "--source", DATA / "gsm8k_test.jsonl", "--test-frac", "0.3",
         "--seed", seed, "--out", p],
        ["import", DATA / "gsm8k_gpt4_mot_12samples.parquet", "--problems", p,
         "--out", d / "samples.parquet"],
        ["estimate", d / "samples.parquet", "--ks", "1,2,3,4,6", "--holdout", "0.5", "--cost",
         "samples", "--problems", p, "--out", d / "curves.parquet"],
        ["solve", d / "curves.parquet", "--budgets", budgets, "--problems", p,
         "--out", d / "allocation.parquet"],
        ["train", d / "allocation.parquet", "--problems", p, "--budgets", budgets,
         "--out", d / "stop"],
    ]  # fmt: skip
    for args in steps:
        ttcalloc_at(root, args)
    specs = [f"stop={d / 'stop' / f'b{b:g}'}" for b in BUDGETS]
    args = [
        "evaluate", *specs, "--problems", p, "--curves", d / "curves.parquet",
        "--samples", d / "samples.parquet", "--out", d / "report", "--json",
    ]  # fmt: skip
    return json.loads(ttcalloc_at(root, args))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("work", type=Path)
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--tag", default="today")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    print("| seed | B | stop cost / B | stop gain over uniform [95%] | esc gain | adaptive gain |")
    print("|---|---|---|---|---|---|")
    for seed in map(int, args.seeds.split(",")):
        report = one_seed(args.root.resolve(), args.work / f"{args.tag}-{seed}", seed)
        by = {}
        for r in report["policies"]:
            by.setdefault(r["policy"], {})[round(float(r["budget"]), 6)] = r
        for b in BUDGETS:
            s = by["stop"][round(b, 6)]
            lo, hi = s["gain_vs_uniform_ci"]
            others = []
            for name in ("esc", "adaptive"):
                o = by.get(name, {}).get(round(b, 6))
                others.append(f"{o['gain_vs_uniform']:+.4f}" if o else "n/a")
            print(
                f"| {seed} | {b:g} | {s['cost'] / b:.3f} | {s['gain_vs_uniform']:+.4f} "
                f"[{lo:+.4f}, {hi:+.4f}] | {' | '.join(others)} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
