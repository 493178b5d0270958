"""`run` with the learned cascade on the Date test questions, the samples replayed: realized
dollars against the budget, and accuracy, over several split seeds.

For each split seed the cascade is trained as in ``cascade_date.py`` (test share 0.5), then
``run`` answers the test questions with each model served by ``replay:`` of its recorded
samples (in an order seeded by ``--seed``), at each budget, paced round by round to the budget
(``--pace``, the default) and with each question at its calibrated price (``--no-pace``, the
rule ``evaluate`` scores in expectation over orders).

    .venv/bin/python benchmarks/cascade_run_date.py [--seeds 0,1,2] [--budgets 0.002,0.004,0.006]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from cascade_date import ROOT, SHARED, TT, train_seed


def run_one(tmp: Path, folder: Path, budget: str, samples: Path, seed: int, pace: str) -> dict:
    models = json.loads((folder / "policy.json").read_text())["cascade"]["models"]
    out = tmp / f"answers-{folder.name}{pace}.parquet"
    flags = [f"--model={m}=replay:{samples}" for m in models]
    cmd = [
        TT, "run", folder, tmp / "problems.parquet", "--split", "test", "--budget", budget,
        "--budget-unit", "usd", *flags, "--prices", ROOT / "examples" / "date_prices.json", "--seed", seed, "--out", out, "--no-progress", "--json",
        "--concurrency", "16", pace,
    ]  # fmt: skip
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"run failed:\n{res.stderr[-2000:]}")
    import polars as pl

    df = pl.read_parquet(out)
    share = {m: float((df["model"] == m).mean()) for m in models}
    return {
        "accuracy": float(df["correct"].cast(pl.Float64).mean()),
        "cost": float(df["cost_usd"].mean()),
        "questions": df.height,
        "answered_by": share,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budgets", default="0.002,0.004,0.006")
    ap.add_argument("--extra", default="", help="more train flags, space-separated")
    a = ap.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"the shared data is not at {SHARED}")
    samples = SHARED / "date_3models_mot_samples.parquet"
    print("| seed | budget | run | accuracy | $ / question | cost / budget | last model: share |")
    print("|---|---|---|---|---|---|---|")
    for seed in [int(s) for s in a.seeds.split(",")]:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            train_seed(tmp, seed, a.budgets, a.extra.split(), samples)
            for folder in sorted((tmp / "pol").iterdir()):
                budget = json.loads((folder / "policy.json").read_text())["budget"]
                for pace in ("--pace", "--no-pace"):
                    r = run_one(tmp, folder, f"{budget:g}", tmp / "samples.parquet", seed, pace)
                    shares = ", ".join(f"{m} {v:.0%}" for m, v in r["answered_by"].items())
                    print(
                        f"| {seed} | ${budget:g} | {pace} | {r['accuracy']:.4f} | "
                        f"${r['cost']:.5f} | {r['cost'] / budget:.3f} | {shares} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
