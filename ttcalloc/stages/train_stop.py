"""``ttcalloc train --learner stop``: a learned stopping rule (Solve-then-Learn for when to stop).

Load: the curves (from the allocation's provenance, or given directly), the problems' train
split and the samples behind the curves, replayed in random orders (fit half).  Compute: the
fold models of the gain from drawing more (once: the gain does not depend on the budget), and
for each budget the price calibrated out of fold so the expected cost meets it (two
neighbouring prices mixed where the cost jumps).  Write: one policy folder per budget, each the
averaged fold models (UBJ) and policy.json, written to a temporary folder and renamed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ttcalloc.artifacts.answering import answering
from ttcalloc.artifacts.frames import to_dense
from ttcalloc.artifacts.io import (
    check_output,
    parquet_files,
    provenance,
    read_artifact,
    read_meta,
    recorded_input,
    same_unit,
)
from ttcalloc.artifacts.sample_replays import ReplayGroup, load_sample_replays
from ttcalloc.artifacts.schemas import ALLOCATION, CURVES, POLICY, PROBLEMS, require_labels
from ttcalloc.artifacts.trained_on import train_questions_record
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.common.settings import fit_threads
from ttcalloc.core import stopping
from ttcalloc.core.mixes import uniform_at_budget
from ttcalloc.core.replays import Replays
from ttcalloc.learn import features as feats
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.learners import xgboost_version
from ttcalloc.learn.stopping import (
    NoTrainingStates,
    SignalChoice,
    StopFit,
    StopOptions,
    calibrated,
    choose_signals,
    default_margin,
    fit_gains,
    fitting,
)

if TYPE_CHECKING:
    from ttcalloc.artifacts.sample_replays import SampleReplays


SIGNAL_MODES = ("auto", "all", "none")


@dataclass(frozen=True)
class StopTrainOptions:
    """Budgets, cap, features, cross-fitting, replays and the gain model's parameters."""

    budget: float | None = None
    budgets: tuple[float, ...] = ()  # several budgets: one policy folder each, one model fit
    cap: int | None = None  # most samples per question (default: every train problem's fit half)
    features: tuple[str, ...] = ()  # question feature groups; the state alone did as well
    folds: int = 5
    seed: int = 0
    orders: int = 60  # replay orders per train problem for calibration
    fit_orders: int = 30  # of which the first few make training rows
    n_estimators: int = 150
    max_depth: int = 4
    learning_rate: float = 0.08
    samples: Path | None = None  # default: the samples the curves were estimated from
    signals: str = "auto"  # per-sample signals in the state: auto (chosen out of fold), all, none
    # prices meet the budget with this many standard errors of the train cost to spare
    # (None: 1 with a verifier, whose cost is heavy-tailed; 0 for majority vote)
    margin: float | None = None

    def check(self) -> None:
        if self.folds < 2:
            raise InputError(f"--folds {self.folds}: need at least 2 for out-of-fold calibration")
        if self.orders < 1:
            raise InputError(f"--orders {self.orders}: must be at least 1")
        if self.fit_orders < 1:
            raise InputError(f"--fit-orders {self.fit_orders}: must be at least 1")
        if self.budget is not None and self.budgets:
            raise InputError("give --budget B or --budgets B1,B2,..., not both")
        for flag, value in [("--budget", self.budget), *(("--budgets", b) for b in self.budgets)]:
            if value is not None and not (np.isfinite(value) and value > 0):
                raise InputError(f"{flag} {value}: must be a positive number")
        if len(set(self.budgets)) != len(self.budgets):
            raise InputError(f"--budgets {','.join(f'{b:g}' for b in self.budgets)}: repeated")
        if self.cap is not None and self.cap < 1:
            raise InputError(f"--cap {self.cap}: must be at least 1")
        if self.margin is not None and not (np.isfinite(self.margin) and self.margin >= 0):
            raise InputError(f"--margin {self.margin}: must be a number >= 0")
        if self.signals not in SIGNAL_MODES:
            raise InputError(f"--signals {self.signals}: expected one of {', '.join(SIGNAL_MODES)}")
        feats.select(self.features)


def budget_folder(out: Path, budget: float) -> Path:
    """Where ``--budgets`` puts the policy of one budget: ``OUT/b<budget>`` (``OUT/b1.5``)."""
    return Path(out) / f"b{budget:g}"


def _curves_path(source: Path, curves_path: Path | None) -> tuple[Path, list[float]]:
    """The curves to train on, and the budgets of the allocation when one is given."""
    meta = read_meta(source)
    if meta.get("artifact") == CURVES.name:
        return source, []
    alloc = read_artifact(source, ALLOCATION)
    budgets = sorted(set(alloc.df["budget"].to_list()))
    if curves_path is None:
        curves_path = recorded_input(alloc.meta, "curves", source, "--curves")
        if curves_path is None:
            raise InputError(f"{source}: its curves are not found: pass --curves")
    same_unit(alloc.meta, read_meta(parquet_files(Path(curves_path))[0]), source, curves_path)
    return curves_path, budgets


def _budgets(options: StopTrainOptions, allocated: list[float]) -> list[float]:
    """The budgets to calibrate: ``--budgets``, ``--budget``, or the allocation's only one."""
    if options.budgets:
        return list(options.budgets)
    if options.budget is not None:
        return [options.budget]
    if len(allocated) != 1:
        raise InputError(
            "give --budget (the mean cost per problem the policy should spend), or --budgets "
            "B1,B2,... for one policy per budget"
        )
    return [allocated[0]]


def _grid(
    options: StopTrainOptions, ks: Sequence[int], available: int, strategy: str
) -> tuple[stopping.Grid, str]:
    """The stopping grid and, in words, where its cap came from."""
    if options.cap is None:
        cap, source = available, "the fit-half samples of every train problem"
    elif options.cap > available:
        raise InputError(
            f"--cap {options.cap}: the train problems' fit half has only {available} samples "
            f"of some problem; give at most {available}"
        )
    else:
        cap, source = options.cap, "--cap"
    checkpoints = tuple(sorted({k for k in ks if k <= cap} | {cap}))
    return stopping.Grid(cap=cap, checkpoints=checkpoints, strategy=strategy), source


def price_margin(options: StopTrainOptions, grid: stopping.Grid) -> float:
    """Standard errors of the train cost the prices keep to spare: ``--margin``, else
    :func:`default_margin` (1 with a verifier, 0 for majority vote)."""
    return default_margin(grid.strategy) if options.margin is None else options.margin


def train_adaptive(
    source: Path,
    problems_path: Path,
    out: Path,
    options: StopTrainOptions | None = None,
    curves_path: Path | None = None,
) -> list[dict[str, Any]]:
    """Train a stopping rule on the train split's replays and save one policy per budget.

    The gain model is fit once (and the per-sample signals chosen once, on the out-of-fold
    accuracy averaged over the budgets); each budget gets its own calibrated prices.

    Args:
        source: an allocation (its curves are used) or a curves artifact.
        problems_path: problems (questions, metadata, split).
        out: the policy folder (policy.json and the gain models in UBJ format); with
            ``options.budgets``, a folder holding one policy folder per budget
            (:func:`budget_folder`: ``out/b2``, ``out/b4``, ...).
        options: budget(s) (required unless the allocation has one), cap, features, folds,
            replays.
        curves_path: curves (default: the allocation's).

    Returns:
        Per budget, in the order given: the policy folder (``out``) and out-of-fold metrics:
        expected cost, accuracy, and uniform at the same cost.
    """
    import polars as pl

    options = options or StopTrainOptions()
    options.check()
    curves_path, allocated = _curves_path(Path(source), curves_path)
    budgets = _budgets(options, allocated)
    curves_art = read_artifact(curves_path, CURVES)
    curves = curves_art.df
    problems = read_artifact(problems_path, PROBLEMS).df
    require_labels(problems, problems_path, "train")
    halves = set(curves["half"].to_list())
    fit_half = "fit" if "fit" in halves else "all"
    fit_curves = curves.filter(pl.col("half") == fit_half)
    train_ids = sorted(
        set(problems.filter(pl.col("split") == "train")["problem_id"].to_list())
        & set(fit_curves["problem_id"].to_list())
    )
    if len(train_ids) < 2 * options.folds:
        raise DataError(f"{curves_path}: only {len(train_ids)} training problems; need more")
    samples_path = options.samples or recorded_input(
        curves_art.meta, "samples", Path(curves_path), "--samples"
    )
    if samples_path is None or not Path(samples_path).exists():
        raise InputError(
            f"{curves_path}: its samples are not found ({samples_path}); pass --samples "
            "(or --learner imitate, which needs none)"
        )
    inputs = {
        "source": Path(source),
        "problems": problems_path,
        "curves": curves_path,
        "samples": Path(samples_path),
    }
    check_output(out, inputs, folder=True)
    if options.budgets and (Path(out) / "policy.json").exists():
        raise InputError(
            f"--out {out}: a policy is there; --budgets writes one policy folder per budget "
            "under --out: choose another path"
        )
    loaded = load_sample_replays(
        Path(samples_path),
        problems,
        Path(problems_path),
        curves_art.meta,
        [ReplayGroup(train_ids, fit_half, options.seed + 1)],
        options.orders,
    )
    if loaded.replays is None:
        raise DataError(
            f"cannot replay the samples: {loaded.note} "
            "(--learner imitate or plugin choose one action per question without replays)"
        )
    replays = loaded.replays[0]
    ks = sorted(set(fit_curves["k"].to_list()))
    grid, cap_source = _grid(options, ks, int(replays.n.min()), loaded.strategy)
    prob = problems.filter(pl.col("problem_id").is_in(train_ids)).sort("problem_id")
    setup = fitting(options, prob, train_ids)
    try:
        fits, values, signal_choice = _fit(
            loaded, replays, setup.qx, grid, budgets, setup.fold, setup.options, options
        )
    except NoTrainingStates as exc:
        raise DataError(f"{samples_path}: {exc} (--learner imitate needs only the curves)") from exc
    dense = to_dense(fit_curves.filter(pl.col("problem_id").is_in(train_ids)))
    results = []
    for budget, fit in zip(budgets, fits, strict=True):
        uniform = uniform_at_budget(dense.acc, dense.cost, fit.oof_cost)
        metrics = {
            "budget": budget,
            "learner": "stop",
            "train_problems": len(train_ids),
            "training_rows": fit.rows,
            "cap": grid.cap,
            "cap_source": cap_source,
            "strategy": grid.strategy,
            "oof_expected_cost": fit.oof_cost,
            "price_margin_se": price_margin(options, grid),
            "train_cost_se": fit.cost_se,
            "train_expected_cost": fit.calibration.cost,
            "oof_cost_over_budget": fit.oof_cost / budget,
            "oof_accuracy": fit.oof_accuracy,
            "uniform_accuracy_same_cost": uniform.accuracy if uniform else None,
            "gain_vs_uniform": fit.oof_accuracy - uniform.accuracy if uniform else None,
            "scored_on": fit_half,
            "in_sample": False,
            "sample_values": values,
            "sample_values_available": loaded.sample_values,
            "sample_values_oof_gain": None if signal_choice is None else signal_choice.gain,
            "sample_values_oof_se": None if signal_choice is None else signal_choice.se,
        }
        folder = budget_folder(out, budget) if options.budgets else Path(out)
        policy = AdaptivePolicy(
            grid=grid,
            feature_names=[f.name for f in setup.features],
            subjects=setup.subjects,
            sample_values=values,
            model=fit.model,
            calibration=fit.calibration,
            info={},
        )
        params = {k: str(v) if isinstance(v, Path) else v for k, v in options.__dict__.items()}
        prov = provenance(POLICY, "train", params, inputs, at=folder / "policy.json")
        prov |= {"xgboost_version": xgboost_version(), **train_questions_record(prob["question"])}
        unit = curves_art.meta.get("cost_unit", "unknown")
        meta = {
            "cost_unit": unit,
            "budget": budget,
            "metrics": metrics,
            "provenance": prov,
            **answering(prob["grader"].to_list(), Path(samples_path), [grid.strategy]),
        }
        policy.save(folder, meta)
        results.append({"out": folder, **metrics})
    return results


def _fit(
    loaded: SampleReplays,
    replays: Replays,
    question: NDArray[np.float64] | None,
    grid: stopping.Grid,
    budgets: list[float],
    fold: NDArray[np.int64],
    stop_opts: StopOptions,
    options: StopTrainOptions,
) -> tuple[list[StopFit], list[str], SignalChoice | None]:
    """The gain model(s) fit once and calibrated at every budget; the per-sample signals kept
    (``--signals auto``: only if they gain out of fold, averaged over the budgets)."""
    values = loaded.sample_values if options.signals != "none" else []
    state_only = replace(replays, extra=None)
    cases = [(replays if values else state_only, question)]
    if values and options.signals == "auto":
        cases.append((state_only, question))
    gains = fit_gains(cases, grid, fold, stop_opts, fit_threads())
    flag = "--budgets" if options.budgets else "--budget"
    per_case: list[list[StopFit]] = [[] for _ in cases]
    for budget in budgets:
        try:
            for fits, gain, case in zip(per_case, gains, cases, strict=True):
                fits.append(calibrated(gain, case[0], grid, budget, price_margin(options, grid)))
        except stopping.BudgetError as exc:
            raise InputError(f"{flag} {budget:g}: {exc}") from exc
    if len(per_case) == 1:
        return per_case[0], values, None
    choice = choose_signals(per_case[0], per_case[1])
    return (per_case[0], values, choice) if choice.use else (per_case[1], [], choice)
