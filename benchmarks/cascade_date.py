"""The learned cascade on the shared Date set, over several split seeds, through the CLI.

For each split seed: ``data`` (test share 0.5), ``import``, ``estimate --prices
examples/date_prices.json``, ``train --learner cascade --budgets ...``, ``evaluate``.  Prints one
markdown table: per seed and budget, the cascade, the tuned MoT rule, the best single model
(chosen on train), their test accuracy and dollars, and the paired gain with its 95% interval;
then the share of gpt-4's one-sample dollars at which each reaches gpt-4's one-sample accuracy.

    .venv/bin/python benchmarks/cascade_date.py [--seeds 0,1,2] [--budgets 0.002,0.004,0.006]
        [--recalibrate] [--extra "TRAIN FLAGS"] [--drop MODEL] [--weaken MODEL=SHARE]
        [--same-wrong]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TT = str(Path(sys.executable).parent / "ttcalloc")


def sh(*args: object) -> None:
    res = subprocess.run([TT, *map(str, args)], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"ttcalloc {' '.join(map(str, args))} failed:\n{res.stderr[-2000:]}")


def one_seed(
    tmp: Path, seed: int, budgets: str, extra: list[str], recal: bool, samples: Path
) -> dict:
    train_seed(tmp, seed, budgets, extra, samples)
    folders = [f"cascade={f}" for f in sorted((tmp / "pol").iterdir())]
    for f in sorted((tmp / "pol").iterdir()):
        m = json.loads((f / "policy.json").read_text())["metrics"]
        choice = m.get("cap_choice")
        how = (
            ""
            if choice is None
            else " (out-of-fold accuracy "
            + ", ".join(
                f"caps {c}: {a:.4f}"
                for c, a in zip(choice["caps"], choice["oof_accuracy"], strict=True)
            )
            + ")"
        )
        esc = m.get("escalate_choice")
        if esc:
            accs = ", ".join(
                f"{c}: {a:.4f}" for c, a in zip(esc["candidates"], esc["oof_accuracy"], strict=True)
            )
            how += f"; escalate after {esc['chosen']} (out-of-fold: {accs})"
        rule = m.get("rule_choice")
        if rule:
            acc, labels = rule["oof_accuracy"], rule["labels"]
            parts = ", ".join(f"{labels.get(k, k)} {a}" for k, a in acc.items())
            how += f"; gains {labels.get(rule['chosen'], 'learned')} (out-of-fold: {parts})"
        print(f"seed {seed}, ${m['budget']:g}: caps {m['caps']}{how}", file=sys.stderr)
    sh(
        "evaluate",
        *folders,
        "--out",
        tmp / "rep",
        "--seed",
        seed,
        *(["--recalibrate"] if recal else []),
    )
    return json.loads((tmp / "rep" / "report.json").read_text())


def train_seed(tmp: Path, seed: int, budgets: str, extra: list[str], samples: Path) -> None:
    """:func:`prepare_seed` and ``train --learner cascade`` into ``tmp/pol``."""
    prepare_seed(tmp, seed, samples)
    sh(
        "train",
        tmp / "curves.parquet",
        "--learner",
        "cascade",
        "--problems",
        tmp / "problems.parquet",
        "--budgets",
        budgets,
        "--seed",
        seed,
        "--out",
        tmp / "pol",
        *extra,
    )


def prepare_seed(tmp: Path, seed: int, samples: Path) -> None:
    """``data`` (test share 0.5), ``import`` and ``estimate`` in dollars into ``tmp``:
    problems.parquet, samples.parquet, curves.parquet."""
    sh(
        "data",
        "jsonl",
        "--source",
        SHARED / "date_problems.jsonl",
        "--test-frac",
        "0.5",
        "--seed",
        seed,
        "--out",
        tmp / "problems.parquet",
    )
    sh(
        "import",
        samples,
        "--problems",
        tmp / "problems.parquet",
        "--out",
        tmp / "samples.parquet",
    )
    sh(
        "estimate",
        tmp / "samples.parquet",
        "--problems",
        tmp / "problems.parquet",
        "--prices",
        ROOT / "examples" / "date_prices.json",
        "--out",
        tmp / "curves.parquet",
    )


def weakened(src: Path, model: str, share: float, dest: Path, same: bool = False) -> Path:
    """A copy of ``src`` where ``share`` of ``model``'s answers are random wrong dates (seeded):
    a much weaker model on the same questions.  With ``same``, every replaced answer to a
    question is one wrong date (a model consistently wrong, whose vote does not recover)."""
    import numpy as np
    import polars as pl

    df = pl.read_parquet(src)
    rng = np.random.default_rng(0)
    hit = (df["model"] == model).to_numpy() & (rng.random(df.height) < share)

    def date() -> str:
        return f"{rng.integers(1, 13):02d}/{rng.integers(1, 29):02d}/{rng.integers(1900, 2030):04d}"

    if same:
        per_question = {pid: date() for pid in df["problem_id"].unique().sort().to_list()}
        wrong = np.array([per_question[pid] for pid in df["problem_id"].to_list()])
    else:
        wrong = np.array([date() for _ in range(df.height)])
    out = df.with_columns(
        pl.Series("pred_answer", np.where(hit, wrong, df["pred_answer"].to_numpy())),
        pl.Series("correct", np.where(hit, False, df["correct"].to_numpy())),
    )
    out.write_parquet(dest)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budgets", default="0.002,0.004,0.006")
    ap.add_argument("--extra", default="", help="more train flags, space-separated")
    ap.add_argument("--recalibrate", action="store_true", help="evaluate --recalibrate")
    ap.add_argument(
        "--samples",
        default=str(SHARED / "date_3models_mot_samples.parquet"),
        help="another samples file of the Date questions",
    )
    ap.add_argument(
        "--weaken",
        default="",
        help="MODEL=SHARE: replace that share of MODEL's answers by random wrong dates",
    )
    ap.add_argument(
        "--same-wrong",
        action="store_true",
        help="with --weaken: one wrong date per question (a consistently wrong model)",
    )
    ap.add_argument(
        "--drop",
        default="",
        help="MODEL[,MODEL]: leave these models' samples out (e.g. a two-model cascade)",
    )
    a = ap.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"the shared data is not at {SHARED}")
    rows, reach = [], []
    samples = Path(a.samples)
    keep_dir = tempfile.TemporaryDirectory()
    if a.drop:
        import polars as pl

        dropped = Path(keep_dir.name) / "kept.parquet"
        gone = [m.strip() for m in a.drop.split(",")]
        pl.read_parquet(samples).filter(~pl.col("model").is_in(gone)).write_parquet(dropped)
        samples = dropped
    if a.weaken:
        model, _, share = a.weaken.rpartition("=")
        samples = weakened(
            samples, model, float(share), Path(keep_dir.name) / "weak.parquet", a.same_wrong
        )
    for seed in [int(s) for s in a.seeds.split(",")]:
        with tempfile.TemporaryDirectory() as d:
            rep = one_seed(Path(d), seed, a.budgets, a.extra.split(), a.recalibrate, samples)
        pol = rep["policies"]["cascade"]
        strong = pol["strongest"]
        for r in pol["rows"]:
            rows.append((seed, r))
        reach.append((seed, strong, pol["reach_share"]))
        print(f"seed {seed} done", file=sys.stderr)
    keep = ("cascade", "MoT rule (tuned on train)", "best single model (chosen on train)")
    print(
        "| seed | budget | method | accuracy | $ / question | cost / budget | cascade - this [95%] |"
    )
    print("|---|---|---|---|---|---|---|")
    for seed, r in rows:
        if r["method"] not in keep:
            continue
        g = r["cascade_minus_this"]
        gain = "" if g is None else f"{g['diff']:+.4f} [{g['lo']:+.4f}, {g['hi']:+.4f}]"
        print(
            f"| {seed} | ${r['budget']:g} | {r['method']} | {r['accuracy']:.4f} | "
            f"${r['cost']:.5f} | {r['cost_over_budget']:.3f} | {gain} |"
        )
    print()
    for seed, strong, shares in reach:
        parts = ", ".join(
            f"{k}: {'not reached' if v is None else f'{v:.0%}'}"
            for k, v in shares.items()
            if k in keep
        )
        print(
            f"- seed {seed}: {strong['model']} one sample {strong['accuracy']:.4f} at "
            f"${strong['cost']:.5f}; reached at: {parts}"
        )


if __name__ == "__main__":
    main()
