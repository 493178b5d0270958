"""Multi-model sets the cascade was not built on, made from SVAMP's real Codex samples, and
`run` with the learned cascade on them: paced to the budget against the calibrated prices.

The shared data has one three-model set (Date); these stand in for the sets a cascade is judged
on unseen, where the weak model is much weaker.  From ``svamp_codex_pot_30samples.parquet``
(30 real samples a question):

- ``strong``: samples 0-9 as they are ($10 in / $30 out per million tokens);
- ``weak``: other samples with a share of their answers replaced by wrong numbers ($0.3 / $1);
- ``mid`` (set C): samples 10-19 with 30% replaced ($1.5 / $5);

each with 600 prompt tokens and output tokens from the sample's characters (3.5-4.5 a token).

- ``A``: strong + weak (samples 10-29, 70% replaced by a random wrong number: votes split);
- ``B``: strong + weak (70% replaced by one wrong number per question: the weak model is
  consistently wrong, so its votes agree on the wrong answer);
- ``C``: strong + mid + weak (samples 20-29, 75% replaced, one wrong number per question).

For each set and split seed (test share 0.5): ``import``, ``estimate`` in dollars, ``train
--learner cascade`` at the budgets, then ``run`` on the test questions with every model served by
``replay:`` of its samples, paced (the default) and with ``--no-pace``.

    .venv/bin/python benchmarks/svamp_models.py [--sets A,B,C] [--seeds 0,1,2]
        [--budgets 0.001,0.0035,0.007] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from cascade_date import SHARED, sh

SOURCE = SHARED / "svamp_codex_pot_30samples.parquet"
PRICES = {
    "strong": {"input": 10, "output": 30, "prompt_tokens": 600, "source": "made up: large"},
    "mid": {"input": 1.5, "output": 5, "prompt_tokens": 600, "source": "made up: medium"},
    "weak": {"input": 0.3, "output": 1, "prompt_tokens": 600, "source": "made up: small"},
}


def _tokens(df: pl.DataFrame, rng: np.random.Generator, chars: float) -> pl.Series:
    gen = np.maximum(10, df["gen_chars"].to_numpy() * chars * rng.uniform(0.8, 1.3, df.height))
    return pl.Series("tokens", np.maximum(3, np.round(gen / rng.uniform(3.5, 4.5, df.height))))


def weakened(df: pl.DataFrame, share: float, same: bool, seed: int, model: str) -> pl.DataFrame:
    """``df``'s samples with ``share`` of their answers replaced by a wrong number (gold + a
    nonzero integer in [-20, 20]): one per question (``same``) or one per sample; a weak model
    writes 30% more characters."""
    rng = np.random.default_rng(seed)
    gold = df["gold_answer"].cast(pl.Float64).to_numpy()
    pids = df["problem_id"].to_list()
    per_q = {q: int(rng.integers(1, 21)) * int(rng.choice([-1, 1])) for q in sorted(set(pids))}
    offset = (
        np.array([per_q[q] for q in pids])
        if same
        else rng.integers(1, 21, df.height) * rng.choice([-1, 1], df.height)
    )
    hit = rng.random(df.height) < share
    pred = df["pred_answer"].cast(pl.Float64).to_numpy()
    return df.with_columns(
        pl.Series("pred_answer", np.where(hit, gold + offset, pred)).fill_nan(None),
        pl.Series("correct", np.where(hit, False, df["correct"].to_numpy())),
        _tokens(df, rng, 1.3),
        pl.lit(model).alias("model"),
    )


def build(name: str, out: Path) -> Path:
    """Set ``name`` (A, B or C) as a samples file in ``out``."""
    src = pl.read_parquet(SOURCE)
    first = src.filter(pl.col("sample_idx") < 10)
    strong = first.with_columns(
        _tokens(first, np.random.default_rng(1), 1.0), pl.lit("strong").alias("model")
    )
    rest = src.filter(pl.col("sample_idx") >= 10)
    if name == "A":
        parts = [strong, weakened(rest, 0.7, False, 2, "weak")]
    elif name == "B":
        parts = [strong, weakened(rest, 0.7, True, 3, "weak")]
    elif name == "C":
        mid = rest.filter(pl.col("sample_idx") < 20)
        parts = [
            strong,
            weakened(mid, 0.3, False, 4, "mid"),
            weakened(rest.filter(pl.col("sample_idx") >= 20), 0.75, True, 5, "weak"),
        ]
    else:
        raise SystemExit(f"--sets: unknown set {name!r} (A, B or C)")
    df = pl.concat(parts).with_columns(
        (pl.col("sample_idx").rank("ordinal").over(["problem_id", "model"]) - 1).cast(pl.Int64)
    )
    path = out / f"svamp_{name}.parquet"
    cols = ["problem_id", "question", "gold_answer", "model", "sample_idx", "pred_answer"]
    df.select(*cols, "correct", "tokens").sort("problem_id", "model", "sample_idx").write_parquet(
        path
    )
    return path


def prepare(work: Path, samples: Path, seed: int, prices: Path) -> None:
    """Problems (test share 0.5), samples and dollar curves of one split seed in ``work``."""
    sh("data", "jsonl", "--source", SHARED / "svamp_problems.jsonl", "--test-frac", "0.5",
       "--seed", seed, "--out", work / "problems.parquet")  # fmt: skip
    sh("import", samples, "--problems", work / "problems.parquet",
       "--completion-tokens-field", "tokens", "--out", work / "samples.parquet")  # fmt: skip
    sh("estimate", work / "samples.parquet", "--problems", work / "problems.parquet",
       "--prices", prices, "--out", work / "curves.parquet")  # fmt: skip


def run_one(
    work: Path, policy: Path, budget: str, models: list[str], pace: str
) -> tuple[float, float]:
    """Accuracy and mean dollars per question of ``run`` on the test questions' replays."""
    out = work / f"answers-{budget}{pace}.parquet"
    flags = [f"--model={m}=replay:{work / 'samples.parquet'}" for m in models]
    sh("run", policy, work / "problems.parquet", "--split", "test",
       "--budget", budget, *flags, "--out", out, "--no-progress", "--force", pace)  # fmt: skip
    df = pl.read_parquet(out)
    return float(df["correct"].cast(pl.Float64).mean()), float(df["cost_usd"].mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="A,B,C")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budgets", default="0.001,0.0035,0.007")
    ap.add_argument("--work", type=Path, help="keep the folders here (default: a temp dir)")
    a = ap.parse_args()
    if not SOURCE.exists():
        raise SystemExit(f"the shared SVAMP samples are not at {SOURCE}")
    with tempfile.TemporaryDirectory() as tmp:
        root = a.work or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        prices = root / "prices.json"
        prices.write_text(json.dumps(PRICES, indent=1))
        print("| set | seed | budget | paced: accuracy | paced: cost / budget "
              "| `--no-pace`: accuracy | `--no-pace`: cost / budget |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for name in a.sets.split(","):
            samples = build(name, root)
            models = sorted(set(pl.read_parquet(samples)["model"].to_list()))
            for seed in [int(s) for s in a.seeds.split(",")]:
                work = root / f"{name}_s{seed}"
                work.mkdir(exist_ok=True)
                prepare(work, samples, seed, prices)
                sh("train", work / "curves.parquet", "--problems", work / "problems.parquet",
                   "--learner", "cascade", "--budgets", a.budgets, "--seed", seed,
                   "--out", work / "pol", "--force")  # fmt: skip
                budgets = a.budgets.split(",")
                for b in budgets:  # train's folders: one per budget under --out, or --out
                    pol = work / "pol" / f"b{float(b):g}" if len(budgets) > 1 else work / "pol"
                    acc, cost = run_one(work, pol, b, models, "--pace")
                    acc_n, cost_n = run_one(work, pol, b, models, "--no-pace")
                    print(f"| {name} | {seed} | ${b} | {acc:.4f} | {cost / float(b):.3f} | "
                          f"{acc_n:.4f} | {cost_n / float(b):.3f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
