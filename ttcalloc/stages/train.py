"""``ttcalloc train``: learn the oracle's allocation from cheap features, calibrated to the budget.

Out-of-fold predictions (k-fold over the training problems) calibrate the cost multiplier mu so
that the policy's expected cost on problems it was not trained on meets the budget; in-sample
predictions are overconfident and would miss it.  The deployed model is the k fold models
themselves, each new problem scored by one of them (chosen by a hash of its features), exactly
as each training problem was scored out of fold; a model refit on every problem, or the mean of
the fold models, has scores of another spread than the ones mu was calibrated on.  The scores
are shrunk towards uniform allocation by a weight chosen on the out-of-fold gains over uniform
(``ttcalloc.core.shrinkage``): when the features carry no signal the policy falls back to
uniform's two actions instead of spending worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ttcalloc.artifacts.answering import answering, curves_samples
from ttcalloc.artifacts.frames import to_dense
from ttcalloc.artifacts.io import (
    atomic_folder,
    check_known_ids,
    check_output,
    provenance,
    read_artifact,
    recorded_input,
    same_unit,
    write_json_artifact,
)
from ttcalloc.artifacts.schemas import ALLOCATION, CURVES, POLICY, PROBLEMS, require_labels
from ttcalloc.artifacts.trained_on import train_questions_record
from ttcalloc.common.console import warn
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.common.hashing import seeded_folds
from ttcalloc.common.wording import signed
from ttcalloc.core.mixes import uniform_at_budget
from ttcalloc.core.shrinkage import WEIGHTS, choose_weight, shrink
from ttcalloc.learn import features as feats
from ttcalloc.learn.learners import (
    LEARNERS,
    FoldEnsemble,
    LearnerOptions,
    Model,
    TrainData,
    boosters_of,
    feature_names_stored,
    row_draws,
    xgboost_version,
)
from ttcalloc.learn.policy import calibrate, decide


@dataclass(frozen=True)
class TrainOptions:
    """Learner, budget, features and cross-fitting."""

    budget: float | None = None
    learner: str = "imitate"
    weight: str = "none"
    features: tuple[str, ...] = feats.DEFAULT_GROUPS
    folds: int = 5
    seed: int = 0
    n_estimators: int = 200
    max_depth: int = 4
    learning_rate: float = 0.05

    def check(self) -> None:
        if self.learner not in LEARNERS:
            raise InputError(f"--learner {self.learner!r}: expected one of {', '.join(LEARNERS)}")
        if self.weight not in ("none", "gap"):
            raise InputError(f"--weight {self.weight!r}: expected none or gap")
        if self.folds < 2:
            raise InputError(f"--folds {self.folds}: need at least 2 for out-of-fold calibration")
        feats.select(self.features)


@dataclass(frozen=True)
class TrainResult:
    out: Path
    metrics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), **self.metrics}


def train_policy(
    allocation_path: Path,
    problems_path: Path,
    out: Path,
    options: TrainOptions | None = None,
    curves_path: Path | None = None,
) -> TrainResult:
    """Train a policy on the train-split problems of an allocation and save it to ``out``.

    Args:
        allocation_path: allocation from ``ttcalloc solve`` (the oracle's labels).
        problems_path: problems (questions, metadata, split).
        out: policy folder (policy.json and the XGBoost model in UBJ format).
        options: learner, budget (needed when the allocation has several), features, folds.
        curves_path: curves (default: the curves the allocation was solved from).

    Returns:
        A :class:`TrainResult` with out-of-fold metrics: imitation accuracy, expected cost, and
        accuracy against uniform allocation at the same cost.
    """
    import polars as pl

    options = options or TrainOptions()
    options.check()
    alloc_art = read_artifact(allocation_path, ALLOCATION)
    alloc = alloc_art.df
    budgets = sorted(set(alloc["budget"].to_list()))
    budget = options.budget
    if budget is None:
        if len(budgets) > 1:
            raise InputError(f"{allocation_path} has budgets {budgets}: choose one with --budget")
        budget = budgets[0]
    elif budget not in budgets:
        raise InputError(f"--budget {budget:g}: not in {allocation_path} (budgets: {budgets})")
    alloc = alloc.filter(pl.col("budget") == budget)
    if curves_path is None:
        curves_path = recorded_input(alloc_art.meta, "curves", allocation_path, "--curves")
        if curves_path is None:
            raise InputError(f"{allocation_path}: its curves are not found: pass --curves")
    inputs = {"allocation": allocation_path, "problems": problems_path, "curves": curves_path}
    check_output(out, inputs, folder=True)
    curves_art = read_artifact(curves_path, CURVES)
    same_unit(alloc_art.meta, curves_art.meta, Path(allocation_path), Path(curves_path))
    problems = read_artifact(problems_path, PROBLEMS).df
    require_labels(problems, problems_path, "train")
    check_known_ids(
        alloc,
        problems,
        Path(allocation_path),
        Path(problems_path),
        "allocation and problems do not match",
    )
    train_ids = set(problems.filter(pl.col("split") == "train")["problem_id"].to_list())
    n_before = alloc.height
    alloc = alloc.filter(pl.col("problem_id").is_in(list(train_ids)))
    if alloc.height < n_before:
        _solved_over_test(
            alloc_art.meta, n_before - alloc.height, allocation_path, problems_path, curves_path
        )
    if alloc.height < 2 * options.folds:
        raise DataError(f"{allocation_path}: only {alloc.height} training problems; need more")
    alloc = alloc.sort("problem_id")
    ids = alloc["problem_id"].to_list()

    curves = curves_art.df
    halves = set(curves["half"].to_list())
    fit_half = "fit" if "fit" in halves else "all"
    score_half = "eval" if "eval" in halves else "all"
    fit = to_dense(curves.filter((pl.col("half") == fit_half) & pl.col("problem_id").is_in(ids)))
    score = to_dense(
        curves.filter((pl.col("half") == score_half) & pl.col("problem_id").is_in(ids))
    )
    if fit.problem_ids != ids or score.actions != fit.actions:
        raise DataError(f"{curves_path}: curves do not cover every allocated problem and action")
    actions = fit.actions
    label = np.array([actions.index(a) for a in alloc["action"].to_list()])
    mean_costs = np.nanmean(fit.cost, axis=0)

    # features: drop metadata the problems do not have
    prob = problems.filter(pl.col("problem_id").is_in(ids)).sort("problem_id")
    chosen, subjects, metas = feats.for_problems(options.features, prob)
    x = feats.matrix(chosen, prob["question"].to_list(), metas, subjects)
    data = TrainData(
        x=x, label=label, acc=fit.acc, gap=alloc["gap"].to_numpy(), n_actions=len(actions)
    )
    lopts = LearnerOptions(
        n_estimators=options.n_estimators,
        max_depth=options.max_depth,
        learning_rate=options.learning_rate,
        weight=options.weight,
        seed=options.seed,
    )
    fit_fn = LEARNERS[options.learner]

    # out-of-fold scores for calibration and honest metrics; the fold models are the deployed model
    fold = np.array(seeded_folds(ids, options.folds, options.seed), dtype=np.int64)
    oof = np.empty((len(ids), len(actions)))
    members: list[Model] = []
    for k in range(options.folds):
        tr, te = fold != k, fold == k
        sub = TrainData(x[tr], label[tr], fit.acc[tr], data.gap[tr], len(actions))
        members.append(fit_fn(sub, lopts))
        oof[te] = members[-1].scores(x[te])
    avail = ~np.isnan(fit.cost)
    cost_matrix = np.where(avail, fit.cost, np.inf)
    target = np.nanmean(fit.acc, axis=0)  # the mean curve: uniform allocation's scores
    rows = np.arange(len(ids))
    draws = row_draws(x)  # what decides at weight 0 (uniform itself) instead of the learner

    def oof_policy(weight: float) -> tuple[float, np.ndarray, np.ndarray]:
        """mu, choices and per-problem gains over uniform of the scores shrunk by ``weight``."""
        masked = np.where(avail, shrink(oof, target, weight, draws), -np.inf)
        mu_w = calibrate(masked, mean_costs, cost_matrix, budget)
        choice_w = decide(masked, mean_costs, mu_w)
        uni = uniform_at_budget(score.acc, score.cost, float(fit.cost[rows, choice_w].mean()))
        acc_i = score.acc[rows, choice_w]
        return mu_w, choice_w, acc_i - uni.per_problem(score.acc) if uni else acc_i

    tried = [oof_policy(w) for w in WEIGHTS]
    pick = choose_weight(np.stack([t[2] for t in tried]))
    weight = WEIGHTS[pick]
    mu, choice, _ = tried[pick]
    oof_masked = np.where(avail, oof, -np.inf)
    oof_cost = float(fit.cost[rows, choice].mean())
    oof_acc = float(score.acc[rows, choice].mean())
    uniform = uniform_at_budget(score.acc, score.cost, oof_cost)
    oracle_acc = float(score.acc[rows, label].mean())
    unshrunk_gain = float(tried[-1][2].mean())
    shrinkage = {
        "weight": None if np.isinf(weight) else weight,  # None: unshrunk (an infinite weight)
        "target": [float(t) for t in target],
        "fallback": pick == 0,
        "weights": [None if np.isinf(w) else w for w in WEIGHTS],
        "oof_gain_by_weight": [float(t[2].mean()) for t in tried],
    }
    metrics = {
        "budget": budget,
        "learner": options.learner,
        "weight": options.weight,
        "train_problems": len(ids),
        "oof_imitation_accuracy": float((choice == label).mean()),
        "oof_classifier_accuracy": float((oof_masked.argmax(axis=1) == label).mean()),
        "oof_expected_cost": oof_cost,
        "oof_cost_over_budget": oof_cost / budget if budget else None,
        "oof_accuracy": oof_acc,
        "uniform_accuracy_same_cost": uniform.accuracy if uniform else None,
        "gain_vs_uniform": oof_acc - uniform.accuracy if uniform else None,
        "oracle_accuracy": oracle_acc,
        "scored_on": score_half,
        "in_sample": score_half == "all",
        "action_share": {a: float((choice == j).mean()) for j, a in enumerate(actions)},
        "shrink_weight": shrinkage["weight"],
        "shrink_fallback": shrinkage["fallback"],
        "unshrunk_gain_vs_uniform": unshrunk_gain,
        "deployed_model": f"{options.folds} fold models, one per problem by a hash of its features",
    }
    if shrinkage["fallback"]:
        warn(
            fallback_warning(budget, unshrunk_gain, oof_acc - uniform.accuracy if uniform else None)
        )
    if score_half == "all":
        warn(
            "curves are in-sample: the policy's accuracy is scored on the samples that labelled it"
        )

    out = Path(out)
    with atomic_folder(out, "policy.json") as tmp:
        ensemble = FoldEnsemble(members)
        columns = [f.name for f in chosen] + (["subject"] if subjects is not None else [])
        with feature_names_stored(boosters_of(ensemble), columns):
            fold_files = ensemble.save_folds(tmp)
        policy = {
            "artifact": POLICY.name,
            "schema_version": POLICY.version,
            "learner": options.learner,
            "actions": [
                {"name": a, "cost": float(c)} for a, c in zip(actions, mean_costs, strict=True)
            ],
            "cost_unit": curves_art.meta.get("cost_unit", "unknown"),
            "features": [f.name for f in chosen],
            "feature_docs": {f.name: f.doc for f in chosen},
            "subjects": subjects,
            "mu": mu,
            "budget": budget,
            "model_files": [f for files in fold_files for f in files],
            "model_folds": fold_files,
            "model_combine": "route",
            "shrinkage": shrinkage,
            **answering(
                prob["grader"].to_list(),
                curves_samples(curves_art.meta, Path(curves_path)),
                curves.filter(pl.col("problem_id").is_in(ids))["strategy"].unique().to_list(),
            ),
            "metrics": metrics,
            "provenance": provenance(
                POLICY,
                "train",
                dict(options.__dict__),
                {"allocation": allocation_path, "problems": problems_path, "curves": curves_path},
                at=out / "policy.json",
            )
            | {"xgboost_version": xgboost_version()}
            | train_questions_record(prob["question"].to_list()),
        }
        write_json_artifact(tmp / "policy.json", policy, POLICY)
    return TrainResult(out=out, metrics=metrics)


def fallback_warning(budget: float, unshrunk_gain: float, gain: float | None) -> str:
    """What ``train`` says when the policy falls back to uniform allocation, in the terms its
    summary table and ``evaluate`` (which marks the policy "(fallback)") show the gain in."""
    shown = (
        f"; so the gain over uniform shown for it ({signed(gain)} out of fold here, and "
        "`evaluate`'s, marked (fallback)) is which problems the hash picked, not what the "
        "features know"
        if gain is not None
        else ""
    )
    return (
        f"out of fold the features do not beat uniform at budget {budget:g} by more than one "
        f"standard error (unshrunk gain: {signed(unshrunk_gain)}): the policy falls back to "
        "uniform allocation, where a hash of each question decides which questions get the "
        f"costlier of the two actions uniform mixes on the train problems{shown}"
    )


def _solved_over_test(
    meta: dict[str, Any], n: int, allocation: Path, problems: Path, curves: Path
) -> None:
    """Refuse an allocation solved over ``n`` test-split problems: its price (lambda*), hence
    every label, was set with the test problems' curves."""
    params = meta.get("params") or {}
    how = "solve without --problems?" if params.get("split") != "train" else "another split"
    budgets = ",".join(f"{b:g}" for b in params.get("budgets") or []) or "B"
    raise DataError(
        f"{allocation}: solved over {n} test-split problems of {problems} ({how}); rerun "
        f"`ttcalloc solve {curves} --problems {problems} --budgets {budgets}` so the prices are "
        "set on train problems only"
    )
