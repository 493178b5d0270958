"""Which votes should answer an escalated question: the last model's, or a vote pooled across models?

On the shared Date set, the MoT rule (k samples of a cheap model, escalate to gpt-4 when the
leader's share is below 0.7) is replayed in 30 random draws per question; for the escalated
draws it compares the accuracy of gpt-4's own vote with a vote pooling the cheap model's k
answers (weight 1 each) and gpt-4's (weight w each).  Ties are split as in ``maj@k``.

    .venv/bin/python benchmarks/cascade_votes.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "date_3models_mot_samples.parquet"
WEIGHTS = (0.5, 1.0, 2.0, 3.0, 5.0)


def vote(labels: list[str | None], weights: list[float]) -> float:
    """Credit of the weighted vote: 1/t when the correct answer is among t tied leaders."""
    tally: dict[str, float] = {}
    for lab, w in zip(labels, weights, strict=True):
        if lab is not None:
            tally[lab] = tally.get(lab, 0.0) + w
    if not tally:
        return 0.0
    best = max(tally.values())
    tied = [lab for lab, v in tally.items() if abs(v - best) < 1e-12]
    return 1.0 / len(tied) if "__ok" in tied else 0.0


def main() -> None:
    if not DATA.exists():
        raise SystemExit(f"{DATA} is absent")
    df = pl.read_parquet(DATA).with_columns(
        pl.when(pl.col("correct"))
        .then(pl.lit("__ok"))
        .otherwise(pl.col("pred_answer"))
        .alias("lab")
    )
    by = {k: v["lab"].to_list() for k, v in df.sort("sample_idx").group_by(["problem_id", "model"])}
    problems = sorted({k[0] for k in by})
    rng = np.random.default_rng(0)
    print(
        "| cheap model | k | gpt-4 samples | escalated draws | gpt-4's vote | "
        + " | ".join(f"pooled, w={w:g}" for w in WEIGHTS)
        + " |"
    )
    print("|---" * (5 + len(WEIGHTS)) + "|")
    for cheap, k, strong_k in [
        ("gpt-3.5-turbo", 5, 1),
        ("gpt-3.5-turbo", 5, 2),
        ("gpt-3.5-turbo", 3, 1),
        ("llama-2-13b", 5, 1),
    ]:
        last: list[float] = []
        pooled: dict[float, list[float]] = {w: [] for w in WEIGHTS}
        for p in problems:
            c, s = by[(p, cheap)], by[(p, "gpt-4")]
            for _ in range(30):
                cl = [c[i] for i in rng.choice(len(c), k, replace=False)]
                sl = [s[i] for i in rng.choice(len(s), strong_k, replace=False)]
                counts: dict[str, int] = {}
                for lab in cl:
                    if lab is not None:
                        counts[lab] = counts.get(lab, 0) + 1
                if max(counts.values(), default=0) / k >= 0.7:
                    continue
                last.append(vote(sl, [1.0] * strong_k))
                for w in WEIGHTS:
                    pooled[w].append(vote(cl + sl, [1.0] * k + [w] * strong_k))
        cells = " | ".join(f"{np.mean(v):.4f}" for v in pooled.values())
        print(f"| {cheap} | {k} | {strong_k} | {len(last)} | {np.mean(last):.4f} | {cells} |")


if __name__ == "__main__":
    main()
