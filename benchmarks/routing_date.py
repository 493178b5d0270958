"""Issue 22: static routing over three models under one dollar budget, on the shared Date set.

BIG-Bench Date (369 questions) x gpt-3.5-turbo (80 samples), llama-2-13b (80) and gpt-4 (12),
each sample priced at a fixed dollar cost per model (gpt-4 $0.0197, gpt-3.5-turbo $0.00035,
llama-2-13b $0.00015), through the CLI: ``data --test-frac 0.3 --seed S`` -> ``import`` ->
``estimate --cost usd --ks 1,2,4,8,16,32 --holdout 0.5`` (gpt-4's 6 samples a half stop it at
maj@4) -> ``solve --budgets`` -> ``train --learner imitate`` at each budget -> ``evaluate
--budgets``.  Per split seed and budget: accuracy and realized dollars per question of the
oracle, the imitate router, the best single model (chosen on train), each single model and
random routing, and the router's paired gain over the best single model at the dollars the
router spent, with its interval.

    .venv/bin/python benchmarks/routing_date.py WORK [--seeds 0,1,2] [--budgets 0.002,0.004,0.006]

Nothing here is tuned to the file: the learner runs with its defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from common import ttcalloc_at

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
PRICES = {"gpt-4": 0.0197, "gpt-3.5-turbo": 0.00035, "llama-2-13b": 0.00015}
KS = "1,2,4,8,16,32"


def _ttcalloc(args: list[object]) -> str:
    """Run one ttcalloc command from this checkout; its stdout."""
    return ttcalloc_at(ROOT, args)


def _priced_samples(work: Path) -> Path:
    """The Date samples with a cost_usd column from the model's price per sample."""
    import polars as pl

    out = work / "date_usd.parquet"
    if not out.exists():
        work.mkdir(parents=True, exist_ok=True)
        (
            pl.read_parquet(DATA / "date_3models_mot_samples.parquet")
            .with_columns(pl.col("model").replace_strict(PRICES).alias("cost_usd"))
            .drop("tokens")
            .write_parquet(out)
        )
    return out


def _report(
    work: Path, seed: int, budgets: list[float], learners: tuple[str, ...] = ("imitate",)
) -> dict[str, Any]:
    """The whole pipeline for one split seed; evaluate's report.json content."""
    d = work / f"seed{seed}"
    d.mkdir(parents=True, exist_ok=True)
    problems, samples, curves = d / "problems.parquet", d / "samples.parquet", d / "curves.parquet"
    csv = ",".join(f"{b:g}" for b in budgets)
    _ttcalloc(["data", "jsonl", "--source", DATA / "date_problems.jsonl", "--grader", "exact",
               "--test-frac", "0.3", "--seed", seed, "--out", problems])  # fmt: skip
    _ttcalloc(["import", _priced_samples(work), "--problems", problems, "--out", samples])
    _ttcalloc(["estimate", samples, "--problems", problems, "--cost", "usd", "--ks", KS,
               "--holdout", "0.5", "--out", curves])  # fmt: skip
    _ttcalloc(["solve", curves, "--problems", problems, "--budgets", csv,
               "--out", d / "alloc.parquet"])  # fmt: skip
    routers = []
    for learner in learners:
        for b in budgets:
            folder = d / f"{learner}-{b:g}"
            _ttcalloc(["train", d / "alloc.parquet", "--problems", problems, "--budget", b,
                       "--learner", learner, "--out", folder])  # fmt: skip
            routers.append(f"{learner}={folder}")
    out = _ttcalloc(["evaluate", *routers, "--curves", curves, "--problems", problems,
                     "--budgets", csv, "--out", d / "report", "--json"])  # fmt: skip
    return dict(json.loads(out))


def _rows(report: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """One row per (budget, policy) of interest, with the router's paired gain over best-single."""
    keep = ("oracle", "imitate", "plugin", "best-single", "random-route")
    out = []
    for r in report["policies"]:
        name = r["policy"]
        if name not in keep and not name.startswith("single:"):
            continue
        row = {"seed": seed, "budget": r["budget"], "policy": name,
               "accuracy": r["accuracy"], "cost": r["cost"]}  # fmt: skip
        if name == "best-single":
            row["model"] = r["params"]["model"]
        if r["kind"] == "learned":
            row["fallback"] = bool(r["params"].get("uniform_fallback"))
            gain = (r.get("gain_vs") or {}).get("best-single")
            row["gain_vs_best_single"] = gain if gain else None  # diff, lo, hi, its cost
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budgets", default="0.002,0.004,0.006")
    parser.add_argument("--learners", default="imitate", help="imitate and/or plugin")
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    rows, strongest = [], {}
    for seed in (int(s) for s in args.seeds.split(",")):
        sys.stderr.write(f"seed {seed} ...\n")
        report = _report(args.work, seed, budgets, tuple(args.learners.split(",")))
        rows += _rows(report, seed)
        strongest[seed] = report.get("strongest")
    (args.work / "results.json").write_text(json.dumps({"rows": rows, "strongest": strongest}))
    print("| seed | budget | policy | accuracy | $/question | router - best-single [95% CI] |")
    print("|---|---:|---|---:|---:|---|")
    for r in rows:
        gain = r.get("gain_vs_best_single")
        extra = (
            f"{gain[0]:+.4f} [{gain[1]:+.4f}, {gain[2]:+.4f}] (best-single at ${gain[3]:.4g})"
            if gain
            else ""
        )
        name = r["policy"] + (f" ({r['model']})" if "model" in r else "")
        name += " (fallback)" if r.get("fallback") else ""
        print(f"| {r['seed']} | {r['budget']:g} | {name} | {r['accuracy']:.4f} | "
              f"${r['cost']:.4g} | {extra} |")  # fmt: skip
    for seed, s in strongest.items():
        if s:
            shares = ", ".join(
                f"{n} {e['share']:.0%}" if e["share"] is not None else f"{n} not reached"
                for n, e in s["policies"].items()
            )
            print(f"\nseed {seed}: {s['model']} maj@1 {s['accuracy']:.4f} at ${s['cost']:.4g}; "
                  f"share of its cost: {shares}")  # fmt: skip


if __name__ == "__main__":
    main()
