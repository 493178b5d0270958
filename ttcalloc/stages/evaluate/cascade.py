"""``evaluate`` for cascade policies: scored on replays of the test problems' eval half.

Each cascade (one name, one folder per budget) is scored against what its training tuned on the
train replays at the same budget (so no test problem informs a baseline): the MoT threshold rule,
each single model's uniform allocation, and the best single model (chosen on train).  Gains come
with paired bootstrap intervals over the test problems.  The strongest model is the one with the
best one-sample accuracy on the test problems; for each method, the report gives the share of
that model's one-sample dollars at which the method reaches its accuracy (interpolated in
dollars between the two budgets around it, and said so; otherwise how far short it is at its
most dollars).  A baseline that spent more than 5% below a budget is marked and named in a note
(:mod:`~ttcalloc.stages.evaluate.cascade_text`): its comparison is not at matched dollars.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ttcalloc.artifacts.cascade_replays import load_model_replays, prices_of
from ttcalloc.artifacts.io import (
    atomic_folder,
    provenance,
    read_artifact,
    write_json_artifact,
)
from ttcalloc.artifacts.schemas import CURVES, PROBLEMS, REPORT, require_labels
from ttcalloc.common.console import warn
from ttcalloc.common.errors import InputError
from ttcalloc.common.progress import Steps
from ttcalloc.core import cascade_baselines as cb
from ttcalloc.core.metrics import bootstrap_means, interval
from ttcalloc.core.replays import Replays
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.stages.evaluate import cascade_text as ct
from ttcalloc.stages.evaluate.cascade_plot import BEST, plot_dollars
from ttcalloc.stages.evaluate.cascade_text import budget_notes, method_label, reach_share

__all__ = ["budget_notes", "evaluate_cascades", "method_label", "plot_dollars", "reach_share"]


@dataclass(frozen=True)
class Scored:
    """Per-problem accuracy and dollars of one method at one budget."""

    acc: NDArray[np.float64]
    cost: NDArray[np.float64]


def _mix(
    parts: list[tuple[NDArray[np.float64], NDArray[np.float64]]], w: float, budget: float | None
) -> Scored:
    """Two settings mixed with weight ``w`` on the first (the costlier on train); with
    ``budget``, the weight that meets it on these problems' dollars (no labels)."""
    (a1, c1), (a2, c2) = parts
    if budget is not None:
        m1, m2 = float(c1.mean()), float(c2.mean())
        w = 1.0 if m1 <= m2 else float(np.clip((budget - m2) / (m1 - m2), 0.0, 1.0))
    return Scored(w * a1 + (1 - w) * a2, w * c1 + (1 - w) * c2)


def _mixed_single(rep: Replays, tuned: dict[str, Any], budget: float | None) -> Scored:
    (k1, k2), w = tuned["ks"], float(tuned["weight"])
    return _mix([cb.single_model(rep, int(k1)), cb.single_model(rep, int(k2))], w, budget)


def _mixed_mot(reps: list[Replays], tuned: dict[str, Any], budget: float | None) -> Scored:
    parts = []
    for s in tuned["settings"]:
        acc, cost, _ = cb.mot_rule(
            reps[int(s["cheap"])], reps[-1], int(s["k"]), float(s["threshold"])
        )
        parts.append((acc, cost))
    return _mix(parts, float(tuned["weight"]), budget)


def evaluate_cascades(
    groups: dict[str, dict[float, CascadePolicy]],
    out: Path,
    curves_path: Path,
    problems_path: Path,
    samples_path: Path | None,
    orders: int,
    seed: int,
    n_boot: int,
    recalibrate: bool = False,
    plot: bool = True,
    leaks: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Score each cascade group on the test replays; write report.json and report.md to
    ``out`` (atomically).  Returns the report.

    With ``recalibrate``, every method meets each budget on the test problems' dollars (the
    cascade's price, and the mixing weight of the two settings the MoT rule and each single
    model were tuned to on train), so all are compared at the same dollars (a method whose
    cheapest costs more is scored there, over the budget); no labels are used.
    """
    import polars as pl

    curves_art = read_artifact(curves_path, CURVES)
    problems = read_artifact(problems_path, PROBLEMS).df
    require_labels(problems, problems_path, "evaluate")
    halves = set(curves_art.df["half"].to_list())
    half = "eval" if "eval" in halves else "all"
    test_ids = sorted(
        set(problems.filter(pl.col("split") == "test")["problem_id"].to_list())
        & set(curves_art.df["problem_id"].to_list())
    )
    if not test_ids:
        raise InputError(f"{problems_path}: no test problems in {curves_path}")
    first = next(iter(next(iter(groups.values())).values()))
    samples = samples_path or Path(first.info["provenance"]["inputs"]["samples"]["path"])
    prices = prices_of(curves_art.meta, str(curves_path))
    questions = dict(
        zip(problems["problem_id"].to_list(), problems["question"].to_list(), strict=True)
    )
    policies_out: dict[str, Any] = {}
    md: list[str] = []
    all_rows: list[dict[str, Any]] = []
    with Steps("evaluating cascades", sum(len(m) for m in groups.values())) as track:
        for name, members in groups.items():
            track.begin(f"{name}: loading the test replays")
            models = next(iter(members.values())).models
            reps = load_model_replays(
                Path(samples),
                problems,
                problems_path,
                curves_art.meta,
                models,
                test_ids,
                half,
                seed + 2,
                orders,
                prices,
            )
            one = [cb.single_model(r, 1) for r in reps]
            strong = int(np.argmax([a.mean() for a, _ in one]))
            ref_acc, ref_cost = float(one[strong][0].mean()), float(one[strong][1].mean())
            rows: list[dict[str, Any]] = []
            for budget in sorted(members):
                track.begin(f"{name} at ${budget:g}")
                at = budget if recalibrate else None
                texts = [questions[p] for p in test_ids]
                rows += _budget_rows(members[budget], reps, texts, budget, at, n_boot, seed)
                track.advance(1, f"{name} at ${budget:g} done")
            curves_by: dict[str, list[tuple[float, float]]] = {}
            for r in rows:
                curves_by.setdefault(r["method"], []).append((r["cost"], r["accuracy"]))
            reach = {n: ct.reach(pts, ref_acc) for n, pts in curves_by.items()}
            words = {n: ct.reach_text(r, ref_cost, len(test_ids)) for n, r in reach.items()}
            notes = [
                *ct.budget_notes(name, rows, recalibrate),
                *ct.short_notes(name, rows, recalibrate),
            ]
            for note in notes:
                warn(note)
            notes = [*(leaks or {}).get(name, []), *notes]  # warned by the caller
            policies_out[name] = {
                "models": models,
                "strongest": {"model": models[strong], "accuracy": ref_acc, "cost": ref_cost},
                "rows": rows,
                "reach_share": {
                    n: None if r["cost"] is None else r["cost"] / ref_cost for n, r in reach.items()
                },
                "reach": {n: {**r, "text": words[n]} for n, r in reach.items()},
                "notes": notes,
            }
            md += ct.markdown(name, models, strong, ref_acc, ref_cost, rows, words)
            if notes:
                md += ["", "Notes:", "", *(f"- {n}" for n in notes)]
            all_rows += rows
    md[:0] = [
        "# Cascade evaluation",
        "",
        ct.header(half, len(test_ids), orders, recalibrate, all_rows),
    ]
    report = {
        "artifact": REPORT.name,
        "schema_version": REPORT.version,
        "budgets": sorted({b for g in groups.values() for b in g}),
        "policies": policies_out,
        "cost_unit": "usd",
        "recalibrated": recalibrate,
        "provenance": provenance(
            REPORT,
            "evaluate",
            {"orders": orders, "seed": seed, "bootstrap": n_boot, "recalibrate": recalibrate},
            {"curves": Path(curves_path), "problems": Path(problems_path)},
            at=Path(out) / "report.json",
        ),
    }
    with atomic_folder(Path(out), "report.json") as tmp:
        written = write_json_artifact(tmp / "report.json", report, REPORT)
        (tmp / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
        if plot:
            plot_dollars(policies_out, tmp / "accuracy_vs_dollars.png")
    return written


def _budget_rows(
    pol: CascadePolicy,
    reps: list[Replays],
    texts: list[str],
    budget: float,
    at: float | None,
    n_boot: int,
    seed: int,
) -> list[dict[str, Any]]:
    """The report's rows at one budget: the cascade, then each baseline its training tuned there
    (at the mix tuned on train, or with ``at`` the one meeting it on these dollars), each with
    its accuracy interval and the cascade's paired gain over it."""
    models = pol.models
    acc, cost, drawn = pol.outcome(reps, texts, budget=at)
    m = pol.info["metrics"]
    methods: dict[str, Scored] = {"cascade": Scored(acc, cost)}
    if m.get("mot"):
        methods["MoT rule (tuned on train)"] = _mixed_mot(reps, m["mot"], at)
    singles = {k: v for k, v in m.get("single", {}).items() if v}
    for model, tuned in singles.items():
        methods[f"{model} only"] = _mixed_single(reps[models.index(model)], tuned, at)
    if (best := cb.best_tuned(singles)) is not None:
        methods[BEST] = methods[f"{best} only"]
    names = list(methods)
    values = np.stack([methods[n].acc for n in names], axis=1)
    draws = bootstrap_means(values, n_boot, seed)
    rows = []
    for i, n in enumerate(names):
        lo, hi = interval(draws[:, i])
        gain = None
        if n != "cascade":
            g_lo, g_hi = interval(draws[:, 0] - draws[:, i])
            gain = {
                "diff": float(values[:, 0].mean() - values[:, i].mean()),
                "lo": g_lo,
                "hi": g_hi,
            }
        row = {
            "method": n,
            "budget": budget,
            "accuracy": float(methods[n].acc.mean()),
            "accuracy_lo": lo,
            "accuracy_hi": hi,
            "cost": float(methods[n].cost.mean()),
            "cost_over_budget": float(methods[n].cost.mean()) / budget,
            "cascade_minus_this": gain,
        }
        if n == BEST:
            row["chosen"] = f"{best} only"
        if n == "cascade":
            row["gains"] = pol.gains_label()
            row["mean_samples"] = {mm: float(drawn[:, j].mean()) for j, mm in enumerate(models)}
        rows.append(row)
    return rows
