"""The report's content (report.json) and its files: metrics.parquet, the plot, report.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.artifacts.io import (
    atomic_folder,
    check_output,
    provenance,
    write_artifact,
    write_json_artifact,
)
from ttcalloc.artifacts.schemas import METRICS, REPORT
from ttcalloc.common.redact import redact_data
from ttcalloc.core.baselines import DESCRIPTIONS, applicable
from ttcalloc.stages.evaluate import plot as picture
from ttcalloc.stages.evaluate import render
from ttcalloc.stages.evaluate.options import EvaluateOptions, PolicySpec
from ttcalloc.stages.evaluate.score import ORACLE, ORACLE_FIT, Scored
from ttcalloc.stages.evaluate.verdicts import strongest_notes, verdicts

if TYPE_CHECKING:
    from ttcalloc.stages.evaluate.load import Loaded


PLOT = "accuracy_vs_budget.png"


def build_report(scored: Scored, loaded: Loaded, options: EvaluateOptions) -> dict[str, Any]:
    """report.json's content, without provenance and the output paths."""
    data, test, budgets = loaded.data, loaded.data.test, scored.budgets
    baselines = applicable(options.baselines, data.actions)
    report: dict[str, Any] = {
        "artifact": REPORT.name,
        "schema_version": REPORT.version,
        "budget": budgets[0] if len(budgets) == 1 else None,
        "budgets": budgets,
        "cost_unit": loaded.unit,
        "scored_on": (
            "test split, all samples (in-sample)"
            if loaded.score_half == "all"
            else f"test split, {loaded.score_half} half of the samples"
        ),
        "in_sample": loaded.in_sample,
        "problems": {"test": len(test.problem_ids), "train": len(data.train.problem_ids)},
        "actions": [
            {
                "name": a,
                "accuracy": float(test.acc[:, j].mean()),
                "cost": float(test.cost[:, j].mean()),
            }
            for j, a in enumerate(data.actions)
        ],
        "policies": scored.records,
        "descriptions": {
            **{b: DESCRIPTIONS[b] for b in baselines},
            ORACLE_FIT: "the oracle's allocation from the other half of the samples",
            ORACLE: "the oracle on the scoring curves themselves: an upper bound, not a policy",
        },
        "notes": [*loaded.notes, *verdicts(scored.records)],
        "settings": {
            "budgets": list(options.budgets),
            "matched_to": "budgets" if options.budgets else "the learned policy's realized cost",
            "baselines": list(baselines),
            "bootstrap": options.n_boot,
            "orders": options.orders,
            "seed": options.seed,
            "recalibrate": options.recalibrate,
        },
    }
    if scored.strongest is not None:  # several models: the share of the strongest's cost
        report["strongest"] = scored.strongest
        report["notes"] += strongest_notes(scored.strongest, loaded.unit)
    return report


def metrics_row(rec: dict[str, Any]) -> dict[str, Any]:
    """A report record as a metrics.parquet row (intervals split, params as JSON)."""
    out = {k: v for k, v in rec.items() if k not in ("confusion", "params")}
    acc_ci = out.pop("accuracy_ci")
    gain_ci = out.pop("gain_vs_uniform_ci")
    out["accuracy_lo"], out["accuracy_hi"] = acc_ci
    out["gain_lo"], out["gain_hi"] = gain_ci if gain_ci is not None else (None, None)
    out["params"] = json.dumps(redact_data(rec["params"]), sort_keys=True)
    return out


def write_report(
    out: Path,
    report: dict[str, Any],
    scored: Scored,
    loaded: Loaded,
    policies: list[PolicySpec],
) -> dict[str, Any]:
    """Write metrics.parquet, accuracy_vs_budget.png (when ``scored`` has frontiers), report.md
    and report.json into ``out``; return report.json's content (with provenance)."""
    import polars as pl

    report = dict(report)
    inputs = {"curves": loaded.curves_path, "problems": loaded.problems_path}
    sources = inputs | {f"policy:{s.name}@{s.path.name}": s.path / "policy.json" for s in policies}
    if loaded.samples_used:
        sources["samples"] = loaded.samples_used
    report["provenance"] = provenance(
        REPORT, "evaluate", report["settings"], sources, at=out / "report.json"
    )
    check_output(out, sources, folder=True)
    table = pl.DataFrame([metrics_row(r) for r in scored.records], infer_schema_length=None)
    report["out"] = str(out)
    report["plot"] = str(out / PLOT) if scored.frontiers is not None else None
    # written into a temporary folder renamed onto ``out`` once complete: a kill never leaves
    # new files beside an old report.json
    with atomic_folder(out, "report.json") as tmp:
        write_artifact(
            table,
            tmp / "metrics.parquet",
            METRICS,
            stage="evaluate",
            params=report["settings"],
            inputs=inputs,
            extra_meta={"cost_unit": loaded.unit},
        )
        if scored.frontiers is not None:
            picture.write_plot(tmp / PLOT, report, scored.frontiers)
        render.write_markdown(tmp / "report.md", report)
        written = write_json_artifact(tmp / "report.json", report, REPORT)
    return written
