"""``evaluate`` for cascade policies: scored on replays of the test problems' eval half.

Each cascade (one name, one folder per budget) is scored against what its training tuned on the
train replays at the same budget (so no test problem informs a baseline): the MoT threshold rule,
each single model's uniform allocation, and the best single model (chosen on train).  Gains come
with paired bootstrap intervals over the test problems.  The strongest model is the one with the
best one-sample accuracy on the test problems; for each method, the report gives the share of
that model's one-sample dollars at which the method reaches its accuracy (interpolated between
the budgets evaluated; "not reached" otherwise).
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
    atomic_path,
    provenance,
    read_artifact,
    write_json_artifact,
)
from ttcalloc.artifacts.schemas import CURVES, PROBLEMS, REPORT, require_labels
from ttcalloc.common.console import warn
from ttcalloc.common.errors import InputError
from ttcalloc.core import cascade_baselines as cb
from ttcalloc.core.metrics import bootstrap_means, interval
from ttcalloc.core.replays import Replays
from ttcalloc.learn.cascade import CascadePolicy

OVER_BUDGET = 0.05  # a cascade this far off its budget (either way) gets a note


def budget_notes(name: str, rows: list[dict[str, Any]], recalibrated: bool) -> list[str]:
    """One note naming the budgets where the cascade's realized dollars on these questions are
    more than :data:`OVER_BUDGET` above or below the budget (at the prices calibrated on train:
    the methods are then compared at different dollars); none with ``recalibrated``."""
    if recalibrated:
        return []
    off = [
        f"{abs(r['cost_over_budget'] - 1):.0%} {'over' if r['cost_over_budget'] > 1 else 'under'}"
        f" at ${r['budget']:g} (${r['cost']:.3g} per question)"
        for r in rows
        if r["method"] == "cascade" and abs(r["cost_over_budget"] - 1) > OVER_BUDGET
    ]
    if not off:
        return []
    return [
        f"{name} spent {', '.join(off)} at the prices calibrated on train, so the methods there "
        "spent different dollars: `evaluate --recalibrate` compares them at the budget on these "
        "questions (no labels); `run` re-prices each round to the budget."
    ]


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


def reach_share(points: list[tuple[float, float]], target: float, ref_cost: float) -> float | None:
    """Smallest dollars at which the (cost, accuracy) points, joined by straight lines in cost
    order, reach ``target``, as a share of ``ref_cost``; None when they never do."""
    pts = sorted(points)
    for i, (c, a) in enumerate(pts):
        if a >= target:
            if i == 0:
                return c / ref_cost
            c0, a0 = pts[i - 1]
            t = (target - a0) / (a - a0) if a > a0 else 1.0
            return (c0 + t * (c - c0)) / ref_cost
    return None


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
    md = ["# Cascade evaluation", ""]
    md.append(
        f"Scored on the {len(test_ids)} test problems' {half}-half samples, {orders} replay "
        "orders each; baselines tuned on the train replays at each budget (by `train`)"
        + (
            "; every method recalibrated to meet each budget on the test dollars (no labels)."
            if recalibrate
            else "."
        )
    )
    for name, members in groups.items():
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
        curves_by: dict[str, list[tuple[float, float]]] = {}
        for budget in sorted(members):
            pol = members[budget]
            at = budget if recalibrate else None
            acc, cost, drawn = pol.outcome(reps, [questions[p] for p in test_ids], budget=at)
            m = pol.info["metrics"]
            methods: dict[str, Scored] = {"cascade": Scored(acc, cost)}
            if m.get("mot"):
                methods["MoT rule (tuned on train)"] = _mixed_mot(reps, m["mot"], at)
            singles = {k: v for k, v in m.get("single", {}).items() if v}
            for model, tuned in singles.items():
                methods[f"{model} only"] = _mixed_single(reps[models.index(model)], tuned, at)
            if (best := cb.best_tuned(singles)) is not None:
                methods["best single model (chosen on train)"] = methods[f"{best} only"]
            names = list(methods)
            values = np.stack([methods[n].acc for n in names], axis=1)
            draws = bootstrap_means(values, n_boot, seed)
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
                if n == "cascade":
                    row["gains"] = pol.gains_label()
                    row["mean_samples"] = {
                        mm: float(drawn[:, j].mean()) for j, mm in enumerate(models)
                    }
                rows.append(row)
                curves_by.setdefault(n, []).append(
                    (float(methods[n].cost.mean()), float(methods[n].acc.mean()))
                )
        reach = {n: reach_share(pts, ref_acc, ref_cost) for n, pts in curves_by.items()}
        notes = budget_notes(name, rows, recalibrate)
        for note in notes:
            warn(note)
        notes = [*(leaks or {}).get(name, []), *notes]  # warned by the caller
        policies_out[name] = {
            "models": models,
            "strongest": {"model": models[strong], "accuracy": ref_acc, "cost": ref_cost},
            "rows": rows,
            "reach_share": reach,
            "notes": notes,
        }
        md += _markdown(name, models, strong, ref_acc, ref_cost, rows, reach)
        if notes:
            md += ["", "Notes:", "", *(f"- {n}" for n in notes)]
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


def plot_dollars(policies: dict[str, Any], path: Path) -> None:
    """accuracy_vs_dollars.png: each method's test accuracy against its dollars per question
    (one line through the budgets), and the strongest model's one-sample point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(policies), figsize=(6.5 * len(policies), 4.5), squeeze=False)
    for ax, (name, pol) in zip(axes[0], policies.items(), strict=True):
        by: dict[str, list[tuple[float, float]]] = {}
        for r in pol["rows"]:
            if r["method"] == "best single model (chosen on train)":
                continue  # drawn as its model's own line
            by.setdefault(r["method"], []).append((r["cost"], r["accuracy"]))
        for method, pts in by.items():
            pts.sort()
            bold = method == "cascade"
            ax.plot(
                [c for c, _ in pts],
                [a for _, a in pts],
                marker="o",
                lw=2.2 if bold else 1.2,
                label=method,
                color="tab:blue" if bold else None,
            )
        s = pol["strongest"]
        ax.axhline(s["accuracy"], color="black", ls=":", lw=1)
        ax.plot([s["cost"]], [s["accuracy"]], "k*", ms=12, label=f"{s['model']}, one sample")
        ax.set_xscale("log")
        ax.set_xlabel("dollars per question (test)")
        ax.set_ylabel("accuracy (test)")
        ax.set_title(f"{name}: {' -> '.join(pol['models'])}", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _markdown(
    name: str,
    models: list[str],
    strong: int,
    ref_acc: float,
    ref_cost: float,
    rows: list[dict[str, Any]],
    reach: dict[str, float | None],
) -> list[str]:
    out = ["", f"## {name}: {' -> '.join(models)}", ""]
    out.append(
        f"Strongest model: {models[strong]}, one sample: accuracy {ref_acc:.4f} at "
        f"${ref_cost:.5f} per question."
    )
    out += [
        "",
        "| budget | method | accuracy [95%] | $ / question | cost / budget "
        "| cascade - this [95%] |",
    ]
    out.append("|---|---|---|---|---|---|")
    for r in rows:
        g = r["cascade_minus_this"]
        gain = "" if g is None else f"{g['diff']:+.4f} [{g['lo']:+.4f}, {g['hi']:+.4f}]"
        flag = " (over budget)" if r["cost_over_budget"] > 1 + OVER_BUDGET else ""
        out.append(
            f"| ${r['budget']:.5g} | {method_label(r)} | {r['accuracy']:.4f} "
            f"[{r['accuracy_lo']:.4f}, {r['accuracy_hi']:.4f}] | ${r['cost']:.5f} "
            f"| {r['cost_over_budget']:.3f}{flag} "
            f"| {gain} |"
        )
    out += [
        "",
        f"Share of {models[strong]}'s one-sample dollars at which each reaches its accuracy:",
        "",
    ]
    for n, s in reach.items():
        out.append(f"- {n}: {'not reached at the budgets evaluated' if s is None else f'{s:.0%}'}")
    return out


def method_label(row: dict[str, Any]) -> str:
    """A report row's method, with the cascade's gains where they are the MoT rule."""
    gains = row.get("gains")
    return row["method"] if gains in (None, "learned") else f"{row['method']} ({gains})"
