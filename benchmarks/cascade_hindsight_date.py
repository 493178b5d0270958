"""How far the MoT threshold rule can go on the Date test halves when tuned in hindsight.

Issue 22 asks the learned cascade to reach gpt-4's one-sample accuracy at no more than 30% of
gpt-4's dollars.  This measures how hard that bar is on each split seed's test half: the MoT rule
(k gpt-3.5-turbo samples, one gpt-4 sample when the leading answer's share is below a threshold)
with every k in 3..8 and every threshold, *tuned on the test questions themselves* (so an upper
bound for that family of rules: no rule tuned on train can do better in expectation), the upper
hull of its (dollars, accuracy) points mixed as ``train`` mixes two settings.  Once on the vote
share alone, once also escalating when the k samples' mean answer length (``gen_chars``) is
above a quantile (a signal the vote does not see).  Last, a perfect detector: 5 samples,
escalating exactly where their vote is wrong and gpt-4 is mostly right.  All of each test question's samples are
used (80 gpt-3.5-turbo, 12 gpt-4; ``cascade_date.py`` scores the eval halves), 100 random orders
per question, and flat per-sample dollars from docs/prices.md ($0.0197 a gpt-4 sample, $0.00035
a gpt-3.5-turbo one).

    .venv/bin/python benchmarks/cascade_hindsight_date.py [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from ttcalloc.core.cascade_baselines import hull_mix

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GPT4, GPT35 = 0.0197, 0.00035  # dollars per sample (docs/prices.md)
ORDERS = 100
Point = tuple[float, float]


def accuracy_at(points: list[Point], dollars: float) -> float:
    """The best mix of two points at ``dollars`` (the upper hull, as ``train`` mixes them)."""
    mix = hull_mix(points, dollars)
    if mix is None:
        return float("nan")
    i, j, w = mix
    return w * points[i][1] + (1 - w) * points[j][1]


def reach(points: list[Point], target: float) -> float:
    """The share of one gpt-4 sample's dollars at which the best mix reaches ``target``."""
    lo, hi = min(c for c, _ in points), GPT4
    if not accuracy_at(points, hi) >= target:
        return float("nan")
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if accuracy_at(points, mid) >= target else (mid, hi)
    return hi / GPT4


def test_ids(seed: int, tmp: Path) -> list[int]:
    out = tmp / f"problems-{seed}.parquet"
    subprocess.run(
        [sys.executable, "-m", "ttcalloc", "data", "jsonl", "--source",
         SHARED / "date_problems.jsonl", "--test-frac", "0.5", "--seed", str(seed),
         "--out", out],
        check=True, capture_output=True, cwd=ROOT,
    )  # fmt: skip
    test = pl.read_parquet(out).filter(pl.col("split") == "test")
    return test["problem_id"].cast(pl.Int64).to_list()


def one_seed(samples: pl.DataFrame, ids: list[int], rng: np.random.Generator) -> dict[str, float]:
    d = samples.filter(pl.col("problem_id").is_in(ids))
    strong = (
        d.filter(pl.col("model") == "gpt-4").group_by("problem_id").agg(pl.col("correct").mean())
    )
    target = float(strong["correct"].mean())
    cheap = (
        d.filter(pl.col("model") == "gpt-3.5-turbo")
        .group_by("problem_id")
        .agg("pred_answer", "correct", "gen_chars")
        .join(strong.rename({"correct": "a4"}), on="problem_id")
        .sort("problem_id")  # group_by's order varies between runs; the draws must not
    )
    a4 = cheap["a4"].to_numpy()[:, None]
    share_only: list[Point] = [(GPT4, target)]
    with_length: list[Point] = [(GPT4, target)]
    for k in range(3, 9):
        share, right, length = (np.zeros((cheap.height, ORDERS)) for _ in range(3))
        for i, (preds, corr, chars) in enumerate(
            zip(cheap["pred_answer"], cheap["correct"], cheap["gen_chars"], strict=True)
        ):
            preds, corr, chars = np.array([str(v) for v in preds]), np.array(corr), np.array(chars)
            for r in range(ORDERS):
                idx = rng.choice(len(preds), k, replace=False)
                top, n = collections.Counter(preds[idx]).most_common(1)[0]
                share[i, r], length[i, r] = n / k, chars[idx].mean()
                right[i, r] = corr[idx[list(preds[idx]).index(top)]]
        if k == 5:  # a perfect detector: escalate exactly where the vote is wrong, gpt-4 right
            up = (right == 0) & (a4 > 0.5)
            perfect = ((k * GPT35 + up * GPT4).mean() / GPT4, np.where(up, a4, right).mean())
        for th in np.unique(share):
            for q in (None, 0.5, 0.7, 0.8, 0.9, 0.95):
                up = share < th - 1e-9
                if q is not None:
                    up |= length > np.quantile(length, q)
                pt = ((k * GPT35 + up * GPT4).mean(), np.where(up, a4, right).mean())
                with_length.append(pt)
                if q is None:
                    share_only.append(pt)
    out = {"gpt4": target, "perfect_share": perfect[0], "perfect_acc": perfect[1]}
    for name, pts in (("share", share_only), ("length", with_length)):
        out[f"{name}_reach"] = reach(pts, target)
        for b in (0.2, 0.3, 0.4):
            out[f"{name}_{b:g}"] = accuracy_at(pts, b * GPT4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    samples = pl.read_parquet(SHARED / "date_3models_mot_samples.parquet")
    rng = np.random.default_rng(0)
    print("| seed | gpt-4 (1 sample) | rule | reaches it at | acc at 20% | at 30% | at 40% |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in map(int, args.seeds.split(",")):
            r = one_seed(samples, test_ids(seed, Path(tmp)), rng)
            for name, label in (("share", "vote share"), ("length", "share or length")):
                print(
                    f"| {seed} | {r['gpt4']:.4f} | {label} | {r[f'{name}_reach']:.1%} | "
                    f"{r[f'{name}_0.2']:.4f} | {r[f'{name}_0.3']:.4f} | {r[f'{name}_0.4']:.4f} |",
                    flush=True,
                )
            print(
                f"| {seed} | {r['gpt4']:.4f} | perfect detector, k = 5 | spends "
                f"{r['perfect_share']:.1%}, accuracy {r['perfect_acc']:.4f} | | | |",
                flush=True,
            )


if __name__ == "__main__":
    main()
