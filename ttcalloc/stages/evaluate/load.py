"""Reading what ``evaluate`` scores: policies, dense test and train curves, questions, replays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.artifacts.frames import (
    CORRECT,
    assign_halves,
    dense_full,
    input_path,
    sample_cost,
    to_dense,
    vote_labels,
)
from ttcalloc.artifacts.io import check_known_ids, read_artifact
from ttcalloc.artifacts.schemas import CURVES, PROBLEMS, SAMPLES
from ttcalloc.common.console import warn
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.core import replays as sequential
from ttcalloc.core.baselines import EvalData, Unavailable
from ttcalloc.core.curves import Dense
from ttcalloc.learn.policy import Policy
from ttcalloc.stages.evaluate.options import EvaluateOptions, PolicySpec

if TYPE_CHECKING:
    import polars as pl


def load_policies(specs: list[PolicySpec]) -> dict[str, dict[float, Policy]]:
    """The policies by reported name, then by the budget each folder was trained at."""
    groups: dict[str, dict[float, Policy]] = {}
    for spec in specs:
        policy = Policy.load(spec.path)
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


def load_inputs(
    curves_path: Path, problems_path: Path, samples_path: Path | None, options: EvaluateOptions
) -> Loaded:
    """Dense train and test curves over common actions, questions, and sample replays."""
    import polars as pl

    curves_art = read_artifact(curves_path, CURVES)
    curves = curves_art.df
    problems = read_artifact(problems_path, PROBLEMS).df
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
        warn(f"{int((~keep).sum())} test problems lack some action's curve; left out")
        notes.append(f"{int((~keep).sum())} test problems lacked some action's curve; left out.")
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
    samples_path = samples_path or input_path(curves_art.meta, "samples")
    replay_note = ""
    test_rep = train_rep = None
    ks = curves.filter(pl.col("strategy") == "majority")["k"].to_list()
    max_k = max(ks) if ks else 1
    wants_replays = any(b in ("esc", "adaptive") for b in options.baselines)
    if wants_replays and samples_path is not None and (explicit or Path(samples_path).exists()):
        test_rep, train_rep, replay_note = load_replays(
            Path(samples_path),
            problems,
            Path(problems_path),
            curves_art.meta,
            (score_half, fit_half),
            (test.problem_ids, train.problem_ids),
            options.orders,
            options.seed,
        )
    elif wants_replays:
        replay_note = f"the curves' samples file {samples_path} is gone (pass --samples)"
    if replay_note:
        warn(replay_note)
        notes.append(f"Early-stopping baselines left out: {replay_note}.")
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
    )


def _subset(dense: Dense, keep: np.ndarray) -> Dense:
    ids = [p for p, k in zip(dense.problem_ids, keep, strict=True) if k]
    return Dense(ids, dense.actions, dense.acc[keep], dense.cost[keep])


def load_replays(
    samples_path: Path,
    problems: pl.DataFrame,
    problems_path: Path,
    curves_meta: dict[str, Any],
    halves: tuple[str, str],
    ids: tuple[list[str], list[str]],
    orders: int,
    seed: int,
) -> tuple[sequential.Replays | None, sequential.Replays | None, str]:
    """Replays of the test problems' scoring-half samples and the train problems' fit-half ones.

    The halves are recovered with the holdout and seed ``estimate`` used (from the curves'
    provenance).  Returns (test, train, note); a note explains why replays are unavailable.
    """
    import polars as pl

    params = curves_meta.get("params", {})
    models = params.get("models") or []
    strategies = params.get("strategies") or ["majority"]
    if "majority" not in strategies:
        return None, None, "the curves have no majority-vote actions"
    samples = read_artifact(samples_path, SAMPLES).df
    samples = samples.filter(pl.col("correct").is_not_null() & pl.col("error").is_null())
    if models:
        samples = samples.filter(pl.col("model").is_in(models))
    if samples["model"].n_unique() != 1:
        return None, None, "early stopping is simulated for one model; the samples have several"
    check_known_ids(samples, problems, samples_path, problems_path, "not the curves' samples?")
    # cluster wrong answers as estimate did: by the problems' graders only if it had them
    samples = vote_labels(samples, problems if input_path(curves_meta, "problems") else None)
    samples = assign_halves(samples, float(params.get("holdout", 0.0)), int(params.get("seed", 0)))
    try:
        samples = _sample_costs(
            samples, str(curves_meta.get("cost_unit", "samples")), bool(params.get("prompt_once"))
        )
    except Unavailable as exc:
        return None, None, str(exc)
    samples = samples.with_columns(
        pl.when(pl.col("vote") == CORRECT)
        .then(pl.lit(0, dtype=pl.Int64))
        .when(pl.col("vote").is_null())
        .then(pl.lit(sequential.ABSTAIN, dtype=pl.Int64))
        .otherwise(pl.col("vote").rank("dense").over("problem_id").cast(pl.Int64))
        .alias("_id")
    )
    score_half, fit_half = halves
    test = _replays(samples.filter(pl.col("half") == score_half), ids[0], orders, seed)
    train = _replays(samples.filter(pl.col("half") == fit_half), ids[1], orders, seed + 1)
    if test is None or train is None:
        return None, None, f"{samples_path}: some evaluated problems have no samples"
    return test, train, ""


def _sample_costs(samples: pl.DataFrame, unit: str, prompt_once: bool) -> pl.DataFrame:
    """Add ``_cost`` (per sample, in the curves' unit) and ``_fixed`` (once per problem)."""
    each, once = sample_cost(unit, prompt_once)
    per, fixed = each, once.mean().over("problem_id")
    out = samples.with_columns(per.alias("_cost"), fixed.alias("_fixed"))
    if out["_cost"].null_count():
        raise Unavailable(f"cost unit {unit}: some samples lack the counts it needs")
    return out


def _replays(
    samples: pl.DataFrame, ids: list[str], orders: int, seed: int
) -> sequential.Replays | None:
    """The listed problems' samples replayed in ``orders`` seeded orders (None: one has none)."""
    import polars as pl

    part = samples.filter(pl.col("problem_id").is_in(ids)).sort("problem_id", "sample_idx")
    grouped = part.group_by("problem_id", maintain_order=True).agg("_id", "_cost", "_fixed")
    by_id = {r[0]: r for r in grouped.iter_rows()}
    if set(by_id) != set(ids):
        return None
    rows = [by_id[p] for p in ids]
    return sequential.replay(
        [r[1] for r in rows],
        [r[2] for r in rows],
        orders=orders,
        seed=seed,
        fixed=[r[3][0] for r in rows],
    )
