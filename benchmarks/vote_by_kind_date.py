"""How much a vote that weighs each prompt variant by its train accuracy would add, on Date.

Not a ttcalloc feature: a measurement for the next step (docs/cascades.md, "Which votes
answer").  Per split seed (``data jsonl --test-frac 0.5 --seed S``, the split the cascade
benchmark uses), each model's samples are drawn taking the four prompt variants in turn (as
``run`` draws them; 200 seeded orders per question), and the first ``k`` are combined by

- ``plain``: the majority vote (ties split), what every ttcalloc policy answers with;
- ``tie-break``: the majority vote, ties broken towards the answer with the most votes from the
  variants that were more accurate on the train questions (then split);
- ``weighted``: each sample's vote weighs the accuracy of its model and variant on the train
  questions (at least 0.05; ties split).

Scored on the test questions (all their samples: this is about the vote, not the halves).

    .venv/bin/python benchmarks/vote_by_kind_date.py [--seeds 0,1,2] [--orders 200]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
KS = (1, 2, 3, 4, 5, 6, 8)


def split_of(seed: int) -> dict[int, str]:
    """The problems' split as ``data jsonl --test-frac 0.5 --seed S`` makes it."""
    import tempfile

    from common import ttcalloc_at

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "p.parquet"
        ttcalloc_at(ROOT, ["data", "jsonl", "--source", DATA / "date_problems.jsonl",
                           "--test-frac", "0.5", "--seed", seed, "--out", out])  # fmt: skip
        df = pl.read_parquet(out)
    return {int(p): s for p, s in df.select("problem_id", "split").iter_rows()}


def credit(draws: list[tuple[str, str | None, bool]], weight: dict[str, float], how: str) -> float:
    """Credit of the answer the vote ``how`` gives (ties split); ``draws``: (variant, answer,
    correct) in order."""
    votes: Counter[str] = Counter()
    good: set[str] = set()
    for v, a, c in draws:
        if a is None:
            continue
        votes[a] += weight[v] if how == "weighted" else 1.0
        if c:
            good.add(a)
    if not votes:
        return 0.0
    top = max(votes.values())
    lead = [a for a in votes if abs(votes[a] - top) < 1e-9]
    if how == "tie-break" and len(lead) > 1:
        bar = sum(weight.values()) / len(weight)
        strong = Counter(a for v, a, _ in draws if a in lead and weight[v] > bar)
        best = max(strong.get(a, 0) for a in lead)
        lead = [a for a in lead if strong.get(a, 0) == best]
    return sum(a in good for a in lead) / len(lead)


def one_seed(df: pl.DataFrame, seed: int, orders: int) -> dict[str, dict[str, list[float]]]:
    split = split_of(seed)
    df = df.with_columns(pl.col("problem_id").replace_strict(split).alias("split"))
    out: dict[str, dict[str, list[float]]] = {}
    for model in sorted(df["model"].unique()):
        mine = df.filter(pl.col("model") == model)
        acc = (
            mine.filter(pl.col("split") == "train")
            .group_by("prompt_variant")
            .agg(pl.col("correct").mean())
        )
        weight = {v: max(float(a), 0.05) for v, a in acc.iter_rows()}
        by: dict[int, dict[str, list[tuple[str | None, bool]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        test = mine.filter(pl.col("split") == "test")
        for pid, v, a, c in test.select(
            "problem_id", "prompt_variant", "pred_answer", "correct"
        ).iter_rows():
            by[pid][v].append((a, bool(c)))
        rng = np.random.default_rng(seed)
        res = {h: [0.0] * len(KS) for h in ("plain", "tie-break", "weighted")}
        names = sorted(weight)
        for pid in sorted(by):
            pools = by[pid]
            for _ in range(orders):
                rot = [names[i] for i in rng.permutation(len(names))]
                perm = {v: rng.permutation(len(pools[v])) for v in names}
                seq = []
                for rank in range(max(len(p) for p in pools.values())):
                    for v in rot:
                        if rank < len(pools[v]):
                            a, c = pools[v][perm[v][rank]]
                            seq.append((v, a, c))
                for j, k in enumerate(KS):
                    for h in res:
                        res[h][j] += credit(seq[:k], weight, h)
        n = len(by) * orders
        out[model] = {h: [x / n for x in v] for h, v in res.items()}
        out[model]["weights"] = [round(weight[v], 3) for v in names]  # type: ignore[assignment]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--orders", type=int, default=200)
    args = ap.parse_args()
    df = pl.read_parquet(DATA / "date_3models_mot_samples.parquet")
    print(f"| seed | model | vote | {' | '.join(f'maj@{k}' for k in KS)} |")
    print("|---|---|---|" + "---|" * len(KS))
    for seed in map(int, args.seeds.split(",")):
        got = one_seed(df, seed, args.orders)
        for model, rows in got.items():
            for how in ("plain", "tie-break", "weighted"):
                vals = " | ".join(f"{x:.4f}" for x in rows[how])
                print(f"| {seed} | {model} | {how} | {vals} |", flush=True)
            print(f"<!-- seed {seed} {model} weights {json.dumps(rows['weights'])} -->")


if __name__ == "__main__":
    main()
