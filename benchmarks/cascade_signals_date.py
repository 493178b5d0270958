"""Which label-free signals could let a cascade reach gpt-4's accuracy for less on Date?

Issue 22 asks a cascade to reach gpt-4's one-sample accuracy at <= 30% of gpt-4's dollars on
each test half; the learned cascade gets 28%, 36%, 29% (docs/cascades.md).  This asks how far
a *detector* of "escalating helps" gets with each set of signals, in a simplified cascade: ``k``
gpt-3.5-turbo samples (k = 3..8), then one gpt-4 sample where the detector's score is highest.

- Per question, 50 seeded orders of its 80 gpt-3.5-turbo samples; the first ``k`` of an order
  make one row.  Credit of the majority: the share of tied leaders that are a correct answer,
  0 when every sample gave none; gpt-4's credit: the mean correctness of its 12 samples.
- Signals of a row: ``V`` the vote (leader's and runner-up's share, distinct answers, no
  answers, tied leaders: what the cascade's state holds); ``C`` the completions' lengths (mean,
  std, log range of ``gen_chars``); ``Q`` the question's length, numbers and sentences; ``P``
  the prompt family (MoT's "mixture of thought": do the leaders of the chain-of-thought and the
  program-of-thought samples agree, the program share, the leader's support in each family).
- Detector: XGBoost (``reg:logistic``) on the train half's rows, label ``(gpt-4 credit -
  majority credit + 1) / 2`` (what escalating gains), scored on the test half's rows.
- Share: ``k`` cheap samples' dollars plus the escalated fraction of a gpt-4 sample, over one
  gpt-4 sample; the smallest at which the test half's accuracy reaches gpt-4's (the best ``k``,
  the threshold set on the test half itself: hindsight, as `cascade_hindsight_date.py`), and
  with ``k`` and the threshold chosen on the train half's out-of-fold scores (deployable).

    .venv/bin/python benchmarks/cascade_signals_date.py [--seeds 0,1,2]

Flat dollars per sample ($0.0197, $0.00035); no pickle; about a minute a seed on 2 cores.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import xgboost as xgb
from cascade_date import SHARED, sh

P4, P35 = 0.0197, 0.00035
KS = range(3, 9)
ORDERS = 50
V = ["share", "second", "distinct", "none", "leaders"]
C = ["chars_mean", "chars_std", "chars_range"]
Q = ["q_len", "q_numbers", "q_sentences"]
P = ["families_agree", "program_share", "lead_chain", "lead_program"]
SETS = {"V": V, "V+C": V + C, "V+Q": V + Q, "V+P": V + P, "V+C+Q": V + C + Q, "V+C+P": V + C + P}
COLS = ["pid", "k", "credit", "gpt4", *V, *C, *Q, *P]


def _leaders(answers: list[str | None]) -> tuple[list[str], int, int, int]:
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return [], 0, 0, 0
    ranked = votes.most_common()
    top = ranked[0][1]
    return (
        [a for a, n in ranked if n == top],
        top,
        ranked[1][1] if len(ranked) > 1 else 0,
        len(ranked),
    )


def rows() -> np.ndarray:
    """One row per (question, order, k): :data:`COLS`."""
    d = pl.read_parquet(SHARED / "date_3models_mot_samples.parquet").sort(
        "problem_id", "model", "prompt_variant", "sample_idx"
    )
    out = []
    for (pid,), sub in d.group_by(["problem_id"], maintain_order=True):
        cheap = sub.filter(pl.col("model") == "gpt-3.5-turbo")
        answers = cheap["pred_answer"].to_list()
        right = {a for a, c in zip(answers, cheap["correct"].to_list(), strict=True) if c and a}
        program = [v.startswith("pot") for v in cheap["prompt_variant"].to_list()]
        chars = cheap["gen_chars"].fill_null(0).to_numpy().astype(float)
        gpt4 = float(sub.filter(pl.col("model") == "gpt-4")["correct"].mean())
        q = str(sub["question"][0])
        qf = [len(q), len(re.findall(r"\d+", q)), q.count(".") + q.count("?")]
        rng = np.random.default_rng([7, int(pid)])
        for _ in range(ORDERS):
            order = rng.permutation(len(answers))[: max(KS)]
            for k in KS:
                idx = order[:k]
                a = [answers[i] for i in idx]
                lead, top, second, distinct = _leaders(a)
                credit = float(np.mean([x in right for x in lead])) if lead else 0.0
                chain = [answers[i] for i in idx if not program[i]]
                prog = [answers[i] for i in idx if program[i]]
                lc, lp = _leaders(chain)[0], _leaders(prog)[0]
                agree = (1.0 if set(lc) & set(lp) else 0.0) if lc and lp else -1.0
                sup_c = sum(x in lead for x in chain) / max(len(chain), 1) if lead else 0.0
                sup_p = sum(x in lead for x in prog) / max(len(prog), 1) if lead else 0.0
                ch = chars[idx]
                out.append(
                    [pid, k, credit, gpt4, top / k, second / k, distinct, a.count(None),
                     len(lead), ch.mean(), ch.std(), np.log1p(ch.max()) - np.log1p(ch.min()),
                     *qf, agree, len(prog) / k, sup_c, sup_p]
                )  # fmt: skip
    return np.array(out, dtype=float)


def _fit_predict(x: np.ndarray, y: np.ndarray, test: np.ndarray) -> np.ndarray:
    params = {
        "objective": "reg:logistic", "max_depth": 3, "eta": 0.05, "subsample": 0.8,
        "colsample_bytree": 0.8, "min_child_weight": 20, "lambda": 5.0, "nthread": 2,
        "verbosity": 0, "seed": 0,
    }  # fmt: skip
    booster = xgb.train(params, xgb.DMatrix(x, label=y), 250)
    return np.asarray(booster.predict(xgb.DMatrix(test)))


def _reach(score: np.ndarray, credit: np.ndarray, gpt4: np.ndarray, bar: float) -> int | None:
    """How many rows to escalate (highest scores first, whole score groups) to reach ``bar``."""
    o = np.argsort(-score, kind="stable")
    s, gain = score[o], (gpt4 - credit)[o]
    ends = np.concatenate([[0], np.flatnonzero(np.diff(s)) + 1, [s.size]])
    acc = credit.mean() + np.concatenate([[0.0], np.cumsum(gain)])[ends] / s.size
    ok = np.flatnonzero(acc >= bar - 1e-12)
    return int(ends[ok[0]]) if ok.size else None


def _threshold(score: np.ndarray, escalated: int) -> float:
    """The score at or above which the ``escalated`` highest-scored rows are (inf: none)."""
    return float("inf") if escalated == 0 else float(np.sort(score)[::-1][escalated - 1])


def seed_table(
    data: np.ndarray, test_ids: set[int], seed: int
) -> dict[str, tuple[float, float, bool]]:
    """Per signal set, on the test half: the hindsight share, the train-tuned share, and
    whether the train-tuned rule reached gpt-4's accuracy there."""
    col = {c: i for i, c in enumerate(COLS)}
    test = np.isin(data[:, col["pid"]], list(test_ids))
    out: dict[str, tuple[float, float, bool]] = {}
    for name, feats in {"vote share only": None, **SETS}.items():
        best_h, tuned = np.inf, (np.inf, np.nan, False)
        for k in KS:
            at = data[:, col["k"]] == k
            tr, te = data[at & ~test], data[at & test]
            base = k * P35 / P4
            cr, g4 = te[:, col["credit"]], te[:, col["gpt4"]]
            ytr = (tr[:, col["gpt4"]] - tr[:, col["credit"]] + 1) / 2
            if feats is None:
                s_te, s_oof = -te[:, col["share"]], -tr[:, col["share"]]
            else:
                fc = [col[f] for f in feats]
                s_te = _fit_predict(tr[:, fc], ytr, te[:, fc])
                ids = np.unique(tr[:, col["pid"]])
                fold = dict(
                    zip(ids, np.random.default_rng(seed).permutation(ids.size) % 5, strict=True)
                )
                f_of = np.array([fold[p] for p in tr[:, col["pid"]]])
                s_oof = np.zeros(len(tr))
                for f in range(5):
                    s_oof[f_of == f] = _fit_predict(
                        tr[f_of != f][:, fc], ytr[f_of != f], tr[f_of == f][:, fc]
                    )
            hit = _reach(s_te, cr, g4, g4.mean())
            if hit is not None:
                best_h = min(best_h, base + hit / len(te))
            # deployable: k and threshold where the train half's out-of-fold scores reach its bar
            cr_tr, g4_tr = tr[:, col["credit"]], tr[:, col["gpt4"]]
            f_tr = _reach(s_oof, cr_tr, g4_tr, g4_tr.mean())
            if f_tr is not None and base + f_tr / len(tr) < tuned[0]:
                esc = s_te >= _threshold(s_oof, f_tr)
                acc = float(np.where(esc, g4, cr).mean())
                tuned = (base + f_tr / len(tr), base + float(esc.mean()), acc >= g4.mean() - 1e-12)
        out[name] = (best_h, tuned[1], tuned[2])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    data = rows()
    seeds = [int(s) for s in args.seeds.split(",")]
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            p = Path(tmp) / f"p{seed}.parquet"
            sh("data", "jsonl", "--source", SHARED / "date_problems.jsonl", "--test-frac", "0.5",
               "--seed", seed, "--out", p)  # fmt: skip
            test = pl.read_parquet(p).filter(pl.col("split") == "test")["problem_id"]
            tables[seed] = seed_table(data, {int(x) for x in test.to_list()}, seed)
    print("| signals | " + " | ".join(f"seed {s}: hindsight, train-tuned" for s in seeds) + " |")
    print("|---|" + "---|" * len(seeds))
    for name in tables[seeds[0]]:
        cells = []
        for s in seeds:
            h, t, reached = tables[s][name]
            hind = f"{h:.1%}" if np.isfinite(h) else "not reached"
            tuned = f"{t:.1%}" if np.isfinite(t) else "not reached on train"
            cells.append(
                f"{hind}, {tuned}" + ("" if reached or not np.isfinite(t) else " (below gpt-4)")
            )
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
