"""The ``evaluate`` stage: load the inputs, score on them in memory, write the report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttcalloc.artifacts.io import (
    check_output,
    read_artifact,
    read_json_artifact,
    recorded_input,
    same_unit,
)
from ttcalloc.artifacts.schemas import POLICY, PROBLEMS, require_labels
from ttcalloc.artifacts.trained_on import trained_on_test
from ttcalloc.common.console import warn
from ttcalloc.common.errors import InputError
from ttcalloc.core.baselines import NAMES
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.stages.evaluate.cascade import evaluate_cascades
from ttcalloc.stages.evaluate.load import load_inputs, load_policies
from ttcalloc.stages.evaluate.options import EvaluateOptions, PolicySpec
from ttcalloc.stages.evaluate.records import build_report, write_report
from ttcalloc.stages.evaluate.score import score_policies


@dataclass(frozen=True)
class EvaluateResult:
    out: Path
    report: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.report


def evaluate_policies(
    policies: list[PolicySpec],
    out: Path,
    options: EvaluateOptions | None = None,
    curves_path: Path | None = None,
    problems_path: Path | None = None,
    samples_path: Path | None = None,
) -> EvaluateResult:
    """Score learned policies, baselines and the oracle on the test split; write the report.

    Args:
        policies: policy folders from ``ttcalloc train`` (may be empty with ``budgets``); folders
            given the same name form one policy evaluated at the budgets it was trained for.
        out: report folder: metrics.parquet, report.json, report.md, accuracy_vs_budget.png.
        options: budgets, baselines, bootstrap resamples, replay orders, seed, plot.
        curves_path: curves (default: the curves the first policy was trained with).
        problems_path: problems with the split (default: the first policy's).
        samples_path: samples for the early-stopping baselines (default: the curves' samples
            when that file exists; without samples those baselines are left out).

    Returns:
        An :class:`EvaluateResult` holding the report (the content of report.json).
    """
    options = options or EvaluateOptions()
    options.check()
    loaded_groups = load_policies(policies)
    if policies:
        first = next(iter(loaded_groups[policies[0].name].values()))
        prov = first.info.get("provenance", {})
        where = policies[0].path / "policy.json"
        curves_path = curves_path or recorded_input(prov, "curves", where, "--curves")
        problems_path = problems_path or recorded_input(prov, "problems", where, "--problems")
    if curves_path is None or problems_path is None:
        raise InputError("give --curves and --problems (or a policy that names them)")
    if not loaded_groups and not options.budgets:
        raise InputError("no budget to evaluate at: give a policy folder or --budgets")

    given: dict[str, Path | None] = {f"policy {s.name}": s.path for s in policies}
    given |= {"curves": curves_path, "problems": problems_path, "samples": samples_path}
    check_output(out, given, folder=True)
    leaks = _trained_on_test(policies, Path(problems_path))
    cascades = {
        name: {b: m for b, m in g.items() if isinstance(m, CascadePolicy)}
        for name, g in loaded_groups.items()
    }
    groups = {
        name: {b: m for b, m in g.items() if not isinstance(m, CascadePolicy)}
        for name, g in loaded_groups.items()
    }
    if any(cascades.values()):
        if any(groups.values()):
            raise InputError(
                "evaluate cascade policies on their own (they are scored on several models' "
                "replays, against the baselines their training tuned)"
            )
        if options.budgets:
            raise InputError(
                "--budgets: a cascade policy is scored at the budget it was trained at; "
                "train one per budget (train --learner cascade --budgets ...) and name them "
                "NAME=FOLDER"
            )
        if set(options.baselines) != set(NAMES):
            raise InputError(
                "--baselines: a cascade policy is scored against its own baselines (the tuned "
                "MoT rule and each single model at its budget), not these"
            )
        report = evaluate_cascades(
            cascades,
            Path(out),
            Path(curves_path),
            Path(problems_path),
            samples_path,
            options.orders,
            options.seed,
            options.n_boot,
            options.recalibrate,
            options.plot,
            leaks,
        )
        return EvaluateResult(out=Path(out), report=report)
    adaptive = any(isinstance(m, AdaptivePolicy) for g in groups.values() for m in g.values())
    loaded = load_inputs(Path(curves_path), Path(problems_path), samples_path, options, adaptive)
    loaded.notes[:0] = [n for notes in leaks.values() for n in notes]
    for spec in policies:
        for member in groups[spec.name].values():
            unit = {"cost_unit": loaded.unit}
            same_unit(member.info, unit, spec.path / "policy.json", Path(curves_path))
    scored = score_policies(loaded, groups, options)
    report = build_report(scored, loaded, options)
    out = Path(out)
    return EvaluateResult(out=out, report=write_report(out, report, scored, loaded, policies))


def _trained_on_test(specs: list[PolicySpec], problems_path: Path) -> dict[str, list[str]]:
    """Warn of every policy folder trained on some of the test questions of ``problems_path``
    (or whose training questions are unknown, trained with another file); the report notes."""
    problems = read_artifact(problems_path, PROBLEMS).df
    require_labels(problems, problems_path, "evaluate")
    test = problems.filter(problems["split"] == "test")["question"].to_list()
    notes: dict[str, list[str]] = {}
    for spec in specs:
        info = read_json_artifact(spec.path / "policy.json", POLICY)
        for text, note in trained_on_test(
            {spec.name: (spec.path, info)}, test, problems_path
        ).values():
            mine = notes.setdefault(spec.name, [])
            if note not in mine:  # one folder named twice: one note
                warn(text)
                mine.append(note)
    return notes
