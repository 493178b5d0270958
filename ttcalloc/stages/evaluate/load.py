"""Reading what ``evaluate`` scores: policies, dense test and train curves, questions, replays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ttcalloc.artifacts.frames import dense_full, input_path, to_dense
from ttcalloc.artifacts.io import check_known_ids, read_artifact, recorded_input
from ttcalloc.artifacts.sample_replays import ReplayGroup, load_sample_replays
from ttcalloc.artifacts.schemas import CURVES, PROBLEMS, require_labels
from ttcalloc.common.console import warn
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.core.baselines import APPLIES
from ttcalloc.core.curves import Dense
from ttcalloc.core.mixes import EvalData
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.learn.policy import Policy, load_policy
from ttcalloc.stages.evaluate.options import EvaluateOptions, PolicySpec

if TYPE_CHECKING:
    import polars as pl


AnyPolicy = Policy | AdaptivePolicy
Loadable = Policy | AdaptivePolicy | CascadePolicy


def load_policies(specs: list[PolicySpec]) -> dict[str, dict[float, Loadable]]:
    """The policies by reported name, then by the budget each folder was trained at."""
    groups: dict[str, dict[float, Loadable]] = {}
    for spec in specs:
        policy = load_policy(spec.path)
        budget = float(policy.info["budget"])
        members = groups.setdefault(spec.name, {})
        if budget in members:
            raise InputError(
                f"--policy {spec.name}: two folders were trained at budget {budget:g}; "
                "give them different names (NAME=FOLDER)"
            )
        members[budget] = policy
    return groups


@dataclass(frozen=True)
class Loaded:
    """The evaluation data and what the report needs to say about it."""

    data: EvalData
    test_fit: Dense | None  # the test problems' curves from the fit half (None: in-sample)
    problems: pl.DataFrame
    unit: str
    in_sample: bool
    score_half: str
    fit_half: str
    notes: list[str]
    samples_used: Path | None
    curves_path: Path
    problems_path: Path
    sample_values: list[str]


def load_inputs(
    curves_path: Path,
    problems_path: Path,
    samples_path: Path | None,
    options: EvaluateOptions,
    adaptive: bool = False,
) -> Loaded:
    """Dense train and test curves over common actions, questions, and sample replays."""
    import polars as pl

    curves_art = read_artifact(curves_path, CURVES)
    curves = curves_art.df
    problems = read_artifact(problems_path, PROBLEMS).df
    require_labels(problems, problems_path, "evaluate")
    check_known_ids(
        curves, problems, Path(curves_path), Path(problems_path), "estimated for other problems?"
    )
    halves = set(curves["half"].to_list())
    score_half = "eval" if "eval" in halves else "all"
    fit_half = "fit" if "fit" in halves else "all"
    in_sample = score_half == "all"
    notes: list[str] = []
    if in_sample:
        warn(f"{curves_path}: curves are in-sample; the report scores on the samples it tuned on")
        notes.append(
            "Curves are in-sample (not cross-fitted): accuracies are optimistic for every policy "
            "tuned or trained on them."
        )
    unit = str(curves_art.meta.get("cost_unit", "unknown"))
    actions = to_dense(curves.filter(pl.col("half") == fit_half)).actions
    split = dict(problems.select("problem_id", "split").iter_rows())
    known = set(curves["problem_id"].to_list())
    test_ids = sorted(p for p in known if split.get(p) == "test")
    train_ids = sorted(p for p in known if split.get(p) == "train")
    test = dense_full(curves, score_half, test_ids, actions)
    test_fit = dense_full(curves, fit_half, test_ids, actions) if not in_sample else None
    train = dense_full(curves, fit_half, train_ids, actions)
    keep = ~np.isnan(test.acc).any(axis=1)
    if test_fit is not None:
        keep &= ~np.isnan(test_fit.acc).any(axis=1)
    if (~keep).any():
        gone = np.isnan(test.acc).sum(axis=0)
        if test_fit is not None:
            gone = np.maximum(gone, np.isnan(test_fit.acc).sum(axis=0))
        which = ", ".join(f"{actions[i]} on {gone[i]}" for i in np.argsort(-gone)[:3] if gone[i])
        text = f"{int((~keep).sum())} test problems lack some action's curve ({which})"
        warn(f"{text}; left out")
        notes.append(f"{text}; left out.")
    test = _subset(test, keep)
    test_fit = _subset(test_fit, keep) if test_fit is not None else None
    train = _subset(train, ~np.isnan(train.acc).any(axis=1))
    if len(test.problem_ids) < 2:
        raise DataError(
            f"{problems_path}: {len(test.problem_ids)} test problems with curves; need at least 2 "
            "(make a test split with `ttcalloc data --test-frac`)"
        )
    if len(train.problem_ids) < 2:
        raise DataError(f"{problems_path}: too few train problems with curves to tune baselines")

    q = dict(problems.select("problem_id", "question").iter_rows())
    explicit = samples_path is not None
    samples_path = samples_path or recorded_input(
        curves_art.meta, "samples", Path(curves_path), "--samples"
    )
    replay_note = ""
    test_rep = train_rep = None
    params = curves_art.meta.get("params", {})
    strategy = "majority" if "majority" in (params.get("strategies") or ["majority"]) else "pass"
    ks = curves.filter(pl.col("strategy") == strategy)["k"].to_list()
    max_k = max(ks) if ks else 1
    sample_values: list[str] = []
    wants_replays = adaptive or any(APPLIES.get(b) == strategy for b in options.baselines)
    if wants_replays and samples_path is not None and (explicit or Path(samples_path).exists()):
        loaded = load_sample_replays(
            Path(samples_path),
            problems,
            Path(problems_path),
            curves_art.meta,
            [
                ReplayGroup(test.problem_ids, score_half, options.seed),
                ReplayGroup(train.problem_ids, fit_half, options.seed + 1),
            ],
            options.orders,
        )
        replay_note, sample_values = loaded.note, loaded.sample_values
        if loaded.replays is not None:
            test_rep, train_rep = loaded.replays
    elif wants_replays:
        recorded = input_path(curves_art.meta, "samples")
        replay_note = f"the curves' samples file {recorded} is gone (pass --samples)"
    if replay_note:
        warn(replay_note)
        notes.append(f"Sequential policies and baselines left out: {replay_note}.")
    data = EvalData(
        actions=actions,
        test=test,
        train=train,
        test_questions=[q[p] for p in test.problem_ids],
        train_questions=[q[p] for p in train.problem_ids],
        test_replays=test_rep,
        train_replays=train_rep,
        replay_note=replay_note,
        max_k=max_k,
        strategy=strategy,
    )

    return Loaded(
        data=data,
        test_fit=test_fit,
        problems=problems,
        unit=unit,
        in_sample=in_sample,
        score_half=score_half,
        fit_half=fit_half,
        notes=notes,
        samples_used=Path(samples_path) if test_rep is not None and samples_path else None,
        curves_path=Path(curves_path),
        problems_path=Path(problems_path),
        sample_values=sample_values,
    )


def _subset(dense: Dense, keep: np.ndarray) -> Dense:
    ids = [p for p, k in zip(dense.problem_ids, keep, strict=True) if k]
    return Dense(ids, dense.actions, dense.acc[keep], dense.cost[keep])
