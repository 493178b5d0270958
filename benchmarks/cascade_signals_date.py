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
- ``L2``, ``L4`` (added 2026-12-05): a cross-model signal, ``m`` llama-2-13b samples drawn
  before the gpt-3.5-turbo ones (does llama's leader agree with gpt-3.5-turbo's, the share of
  llama's samples on its leaders and on its other answers, llama's top share, distinct answers,
  no answers), once with their dollars counted (``paid``, $0.00015 each) and once ``free`` (what
  the information is worth); the answer stays gpt-3.5-turbo's vote.
- Fixed dollars: at $0.004 and $0.006 the test half escalates the top-scored share of its rows
  that the budget pays for (``k`` chosen on the train half out of fold), and the accuracy of two
  signal sets is compared per question (paired bootstrap over test questions).
- ``--in-turn``: the samples take the four prompt variants in turn (a random rotation, each
  variant's samples in random order), as ``run`` and the replays draw them; without it, any
  order of the 80 (the figures before 2026-12-05).

    .venv/bin/python benchmarks/cascade_signals_date.py [--seeds 0,1,2] [--in-turn] [--sets all]

Flat dollars per sample ($0.0197, $0.00035, $0.00015); no pickle; about 5 minutes for 3 seeds
on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import re
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import xgboost as xgb
from cascade_date import SHARED, sh

P4, P35, P13 = 0.0197, 0.00035, 0.00015
MS = (2, 4)  # llama-2-13b samples drawn before the gpt-3.5-turbo ones (signal L)
BUDGETS = (0.004, 0.006)
BOOT = 2000
KS = range(3, 9)
ORDERS = 50
V = ["share", "second", "distinct", "none", "leaders"]
C = ["chars_mean", "chars_std", "chars_range"]
Q = ["q_len", "q_numbers", "q_sentences"]
P = ["families_agree", "program_share", "lead_chain", "lead_program"]
LF = ["agree", "support", "other", "top", "distinct", "none"]


def L(m: int) -> list[str]:
    """Signal L with ``m`` llama-2-13b samples: does llama's leader agree with gpt-3.5's, the
    share of llama's samples on gpt-3.5's leaders / on gpt-3.5's other answers, llama's top
    share, distinct answers and no answers."""
    return [f"l{m}_{f}" for f in LF]


SETS = {"V": V, "V+C": V + C, "V+Q": V + Q, "V+P": V + P, "V+C+Q": V + C + Q, "V+C+P": V + C + P}
for _m in MS:
    SETS[f"V+L{_m}"] = V + L(_m)
    SETS[f"V+P+L{_m}"] = V + P + L(_m)
COLS = ["pid", "k", "credit", "gpt4", *V, *C, *Q, *P, *(f for m in MS for f in L(m))]


def _llama_of(name: str) -> int:
    """The number of llama samples a set's signals take (0: none)."""
    got = re.search(r"L(\d+)", name)
    return int(got.group(1)) if got else 0


def _in_turn(rng: np.random.Generator, own: list[np.ndarray], n: int) -> np.ndarray:
    """The first ``n`` draws taking the variants in turn: a random rotation of the variants,
    each variant's samples in random order (as ``run`` and the replays draw them)."""
    rot = rng.permutation(len(own))
    perms = [o[rng.permutation(o.size)] for o in own]
    return np.array([perms[rot[i % len(own)]][i // len(own)] for i in range(n)])


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


def rows(in_turn: bool = False) -> np.ndarray:
    """One row per (question, order, k): :data:`COLS`.  ``in_turn``: the gpt-3.5-turbo (and
    llama) samples take the prompt variants in turn, else any order of the 80."""
    d = pl.read_parquet(SHARED / "date_3models_mot_samples.parquet").sort(
        "problem_id", "model", "prompt_variant", "sample_idx"
    )
    out = []
    for (pid,), sub in d.group_by(["problem_id"], maintain_order=True):
        cheap = sub.filter(pl.col("model") == "gpt-3.5-turbo")
        answers = cheap["pred_answer"].to_list()
        cv = cheap["prompt_variant"].to_numpy()
        own = [np.flatnonzero(cv == u) for u in sorted(set(cv))]
        llama = sub.filter(pl.col("model") == "llama-2-13b")
        l_ans = llama["pred_answer"].to_list()
        lv = llama["prompt_variant"].to_numpy()
        l_own = [np.flatnonzero(lv == u) for u in sorted(set(lv))]
        l_rng = np.random.default_rng([8, int(pid)])
        right = {a for a, c in zip(answers, cheap["correct"].to_list(), strict=True) if c and a}
        program = [v.startswith("pot") for v in cheap["prompt_variant"].to_list()]
        chars = cheap["gen_chars"].fill_null(0).to_numpy().astype(float)
        gpt4 = float(sub.filter(pl.col("model") == "gpt-4")["correct"].mean())
        q = str(sub["question"][0])
        qf = [len(q), len(re.findall(r"\d+", q)), q.count(".") + q.count("?")]
        rng = np.random.default_rng([7, int(pid)])
        for _ in range(ORDERS):
            if in_turn:
                order = _in_turn(rng, own, max(KS))
                l_order = _in_turn(l_rng, l_own, max(MS))
            else:
                order = rng.permutation(len(answers))[: max(KS)]
                l_order = l_rng.permutation(len(l_ans))[: max(MS)]
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
                lfeat = []
                for m in MS:
                    la = [l_ans[i] for i in l_order[:m]]
                    ll, ltop, _, ldist = _leaders(la)
                    l_agree = (1.0 if set(ll) & set(lead) else 0.0) if ll and lead else -1.0
                    lfeat += [
                        l_agree, sum(x in lead for x in la) / m,
                        sum(x is not None and x in a and x not in lead for x in la) / m,
                        ltop / m, ldist, la.count(None),
                    ]  # fmt: skip
                out.append(
                    [pid, k, credit, gpt4, top / k, second / k, distinct, a.count(None),
                     len(lead), ch.mean(), ch.std(), np.log1p(ch.max()) - np.log1p(ch.min()),
                     *qf, agree, len(prog) / k, sup_c, sup_p, *lfeat]
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


def _weights(score: np.ndarray, frac: float) -> np.ndarray:
    """Escalation weight per row when the ``frac`` highest-scored rows escalate: 1 above the
    cut, 0 below, and the group of tied scores at the cut escalated in part (its expected
    share under random tie-breaking), so the dollars match ``frac`` exactly."""
    n = score.size
    target = min(max(frac, 0.0), 1.0) * n
    o = np.argsort(-score, kind="stable")
    s = score[o]
    ends = np.concatenate([[0], np.flatnonzero(np.diff(s)) + 1, [n]])
    w = np.zeros(n)
    for a, b in itertools.pairwise(ends):
        if b <= target:
            w[o[a:b]] = 1.0
        else:
            if a < target:
                w[o[a:b]] = (target - a) / (b - a)
            break
    return w


def seed_table(
    data: np.ndarray, test_ids: set[int], seed: int, sets: dict[str, list[str] | None]
) -> tuple[dict, dict]:
    """Per signal set and pricing of the llama samples (``paid``, ``free``), on the test half:
    the hindsight share, the train-tuned share, whether the train-tuned rule reached gpt-4's
    accuracy there; and per fixed budget, the test accuracy per test question (mean over its
    orders) with ``k`` chosen on the train half's out-of-fold scores and the top-scored share
    of the test rows escalated that the budget pays for."""
    col = {c: i for i, c in enumerate(COLS)}
    test = np.isin(data[:, col["pid"]], list(test_ids))
    test_pids = np.array(sorted(test_ids))
    out: dict = {}
    fixed: dict = {}
    for name, feats in sets.items():
        m = _llama_of(name)
        pricings = ("paid", "free") if m else ("paid",)
        best_h = dict.fromkeys(pricings, np.inf)
        tuned = {p: (np.inf, np.nan, False) for p in pricings}
        pick = {(p, b): (-np.inf, None) for p in pricings for b in BUDGETS}
        for k in KS:
            at = data[:, col["k"]] == k
            tr, te = data[at & ~test], data[at & test]
            cr, g4 = te[:, col["credit"]], te[:, col["gpt4"]]
            cr_tr, g4_tr = tr[:, col["credit"]], tr[:, col["gpt4"]]
            ytr = (g4_tr - cr_tr + 1) / 2
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
            f_tr = _reach(s_oof, cr_tr, g4_tr, g4_tr.mean())
            for p in pricings:
                cheap = k * P35 + (m * P13 if p == "paid" else 0.0)
                base = cheap / P4
                if hit is not None:
                    best_h[p] = min(best_h[p], base + hit / len(te))
                # deployable: k and threshold where the train half's out-of-fold scores reach
                if f_tr is not None and base + f_tr / len(tr) < tuned[p][0]:
                    esc = s_te >= _threshold(s_oof, f_tr)
                    acc = float(np.where(esc, g4, cr).mean())
                    tuned[p] = (
                        base + f_tr / len(tr), base + float(esc.mean()),
                        acc >= g4.mean() - 1e-12,
                    )  # fmt: skip
                for b in BUDGETS:
                    frac = (b - cheap) / P4
                    if frac < 0:
                        continue
                    w_tr = _weights(s_oof, frac)
                    acc_tr = float((cr_tr + w_tr * (g4_tr - cr_tr)).mean())
                    if acc_tr > pick[(p, b)][0]:
                        w = _weights(s_te, frac)
                        row = cr + w * (g4 - cr)
                        idx = np.searchsorted(test_pids, te[:, col["pid"]])
                        perq = np.bincount(idx, row, test_pids.size) / np.bincount(
                            idx, minlength=test_pids.size
                        )
                        pick[(p, b)] = (acc_tr, (k, perq))
        for p in pricings:
            out[(name, p)] = (best_h[p], tuned[p][1], tuned[p][2])
            for b in BUDGETS:
                fixed[(name, p, b)] = pick[(p, b)][1]
    return out, fixed


def _boot(d: np.ndarray, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng([99, seed])
    means = d[rng.integers(0, d.size, (BOOT, d.size))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


DEFAULT_SETS = "vote share only,V,V+P,V+L2,V+P+L2,V+L4,V+P+L4"
PAIRS = [("V+P", "V+P+L2"), ("V+P", "V+P+L4"), ("V", "V+L2"), ("V", "V+L4")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--in-turn",
        action="store_true",
        help="samples take the prompt variants in turn (a random rotation per order)",
    )
    ap.add_argument("--sets", default=DEFAULT_SETS, help="comma-separated, or 'all'")
    args = ap.parse_args()
    every = {"vote share only": None, **SETS}
    names = list(every) if args.sets == "all" else args.sets.split(",")
    sets = {n: every[n] for n in names}
    data = rows(args.in_turn)
    seeds = [int(s) for s in args.seeds.split(",")]
    tables, fixed = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            p = Path(tmp) / f"p{seed}.parquet"
            sh("data", "jsonl", "--source", SHARED / "date_problems.jsonl", "--test-frac", "0.5",
               "--seed", seed, "--out", p)  # fmt: skip
            test = pl.read_parquet(p).filter(pl.col("split") == "test")["problem_id"]
            tables[seed], fixed[seed] = seed_table(
                data, {int(x) for x in test.to_list()}, seed, sets
            )
    print(f"variants {'in turn' if args.in_turn else 'in any order'}; "
          f"share of gpt-4's one-sample dollars to reach its accuracy")  # fmt: skip
    print("| signals | llama | " + " | ".join(f"seed {s}: hindsight, train-tuned" for s in seeds)
          + " | mean hindsight | mean train-tuned |")  # fmt: skip
    print("|---|---|" + "---|" * (len(seeds) + 2))
    for key in tables[seeds[0]]:
        name, pricing = key
        cells, hs, ts = [], [], []
        for s in seeds:
            h, t, reached = tables[s][key]
            hs.append(h)
            ts.append(t)
            hind = f"{h:.1%}" if np.isfinite(h) else "not reached"
            tuned = f"{t:.1%}" if np.isfinite(t) else "not reached on train"
            cells.append(
                f"{hind}, {tuned}" + ("" if reached or not np.isfinite(t) else " (below gpt-4)")
            )
        llama = pricing if _llama_of(name) else "-"
        print(f"| {name} | {llama} | " + " | ".join(cells)
              + f" | {np.mean(hs):.1%} | {np.mean(ts):.1%} |", flush=True)  # fmt: skip
    print()
    print("test accuracy at fixed dollars (k chosen on train out-of-fold; top share escalated)")
    print("| budget | A | B | llama | " + " | ".join(
        f"seed {s}: A, B (k), B-A [95% CI]" for s in seeds) + " | mean B-A |")  # fmt: skip
    print("|---|---|---|---|" + "---|" * (len(seeds) + 1))
    for b in BUDGETS:
        for a_name, b_name in PAIRS:
            if a_name not in sets or b_name not in sets:
                continue
            for pricing in ("paid", "free"):
                cells, ds = [], []
                for s in seeds:
                    ka, qa = fixed[s][(a_name, "paid", b)]
                    kb, qb = fixed[s][(b_name, pricing, b)]
                    d = qb - qa
                    lo, hi = _boot(d, s)
                    ds.append(d.mean())
                    cells.append(
                        f"{qa.mean():.1%} (k={ka}), {qb.mean():.1%} (k={kb}), "
                        f"{d.mean() * 100:+.2f} [{lo * 100:+.2f}, {hi * 100:+.2f}]"
                    )
                print(f"| ${b:g} | {a_name} | {b_name} | {pricing} | " + " | ".join(cells)
                      + f" | {np.mean(ds) * 100:+.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
