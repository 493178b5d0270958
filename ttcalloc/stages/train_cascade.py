"""``ttcalloc train --learner cascade``: a learned cascade over several models in dollars.

Load: dollar curves of several models (``estimate --price ...``), the problems' train split and
the samples behind the curves, each model's fit half replayed in random orders.  Compute: the
fold models of the gain of each option (stop, draw again, escalate to a later model), fit once;
for each budget one price calibrated on the train replays, and the baselines tuned on the same
train replays at that budget: the MoT threshold rule and the best single model.  Write: one
policy folder per budget (UBJ models + policy.json), atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ttcalloc.artifacts.answering import answering
from ttcalloc.artifacts.cascade_replays import load_model_replays, prices_of
from ttcalloc.artifacts.io import check_output, provenance, read_artifact, recorded_input
from ttcalloc.artifacts.schemas import CURVES, POLICY, PROBLEMS, require_labels
from ttcalloc.artifacts.trained_on import train_questions_record
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.common.progress import Steps
from ttcalloc.common.settings import fit_threads
from ttcalloc.core import cascade as cc
from ttcalloc.core import cascade_baselines as cb
from ttcalloc.core.cascade_pacing import pace_ratio
from ttcalloc.core.cascade_setup import (
    cap_choices,
    cheapest_path,
    model_order,
    pick_caps,
    unit_costs,
)
from ttcalloc.core.prompt_kinds import all_have_both
from ttcalloc.core.replays import Replays
from ttcalloc.learn import features as feats
from ttcalloc.learn.cascade import (
    CascadePolicy,
    Gains,
    Prepared,
    calibrated_outcome,
    fit_cascade,
    predict,
    prepare,
)
from ttcalloc.learn.cascade_choice import (
    ALTERNATIVES,
    ESCALATE_AFTER,
    RULES,
    choose_escalation,
    choose_rule,
)
from ttcalloc.learn.learners import xgboost_version
from ttcalloc.learn.stopping import GainModel, fitting

DEFAULT_FEATURES = ("text", "numbers", "symbols")


@dataclass(frozen=True)
class CascadeTrainOptions:
    """Models, budgets, caps, features, cross-fitting, replays and the gain model."""

    budgets: tuple[float, ...] = ()
    models: tuple[str, ...] = ()  # in cascade order; default: cheapest per sample first
    # most samples of any one model per question (lowered to the fit half); None: per budget,
    # DEFAULT_CAP or the fit half, whichever is clearly better out of fold (:func:`pick_caps`)
    cap: int | None = None
    features: tuple[str, ...] = DEFAULT_FEATURES
    folds: int = 5
    seed: int = 0
    orders: int = 30  # replay orders per train problem for calibration
    fit_orders: int = 10  # of which the first few make training rows
    n_estimators: int = 150
    max_depth: int = 4
    learning_rate: float = 0.08
    samples: Path | None = None
    # the train replays the price is calibrated on are predicted by: the deployed (averaged)
    # model ("deployed"), or each problem's out-of-fold booster ("oof")
    calibrate_on: str = "oof"
    # the gains (:data:`ALTERNATIVES`, :func:`_choose`): "guard", the learned gains unless the
    # best single model (its uniform allocation written as gains) is clearly better out of
    # fold; "learned" alone; "auto", the learned gains unless the MoT rule or the best single
    # model is clearly better (not the default: see docs/cascades.md); "mot" or "single", that
    # rule alone (``core.cascade_rule``)
    rule: str = "guard"
    # samples of the current model before the learned gains may escalate; None: per budget,
    # each of ESCALATE_AFTER, the first unless another is clearly better out of fold
    # (:func:`choose_escalation`)
    escalate_after: int | None = None
    # the state says if text and program answers agree (None: when the samples have both kinds)
    prompt_kinds: bool | None = None

    def check(self, flag: str | None = None) -> None:
        """``flag``: the option the budgets were given with, named in the errors (None:
        ``--budgets`` for several, else ``--budget``)."""
        flag = flag or budgets_flag(self.budgets)
        if self.calibrate_on not in ("deployed", "oof"):
            raise InputError(f"--calibrate-on {self.calibrate_on!r}: expected deployed or oof")
        if self.rule not in RULES:
            raise InputError(f"--rule {self.rule!r}: expected one of {', '.join(RULES)}")
        if not self.budgets:
            raise InputError("give --budget B or --budgets B1,B2,... (dollars per question)")
        for b in self.budgets:
            if not (np.isfinite(b) and b > 0):
                raise InputError(f"{flag} {b:g}: must be a positive number of dollars")
        if len(set(self.budgets)) != len(self.budgets):
            raise InputError("--budgets: a budget is repeated")
        if self.cap is not None and self.cap < 1:
            raise InputError(f"--cap {self.cap}: must be at least 1")
        if self.escalate_after is not None and self.escalate_after < 1:
            raise InputError(f"--escalate-after {self.escalate_after}: must be at least 1")
        if self.folds < 2:
            raise InputError(f"--folds {self.folds}: need at least 2")
        if self.fit_orders < 1 or self.orders < 1:
            raise InputError("--orders and --fit-orders must be at least 1")
        if len(set(self.models)) != len(self.models):
            raise InputError(f"--models {','.join(self.models)}: a model is repeated")
        feats.select(self.features)


def budgets_flag(budgets: tuple[float, ...]) -> str:
    """The budgets' option when the caller does not say: ``--budgets`` for several."""
    return "--budgets" if len(budgets) > 1 else "--budget"


def cascade_folder(out: Path, budget: float) -> Path:
    """Where ``--budgets`` puts one budget's policy: ``OUT/b<budget>``."""
    return Path(out) / f"b{budget:g}"


def train_cascade(
    curves_path: Path,
    problems_path: Path,
    out: Path,
    options: CascadeTrainOptions,
    flag: str | None = None,
) -> list[dict[str, Any]]:
    """Train a cascade on the train split's replays and save one policy per budget.

    Args:
        curves_path: dollar curves of several models (``estimate --price ...``).
        problems_path: problems (questions, split).
        out: the policy folder; with several budgets, one folder per budget under it
            (:func:`cascade_folder`).
        options: budgets, models (order), cap, features, folds, replays.
        flag: the option the budgets were given with (``--budget`` or ``--budgets``), named
            in the errors about them (None: ``--budgets`` for several, else ``--budget``).

    Returns:
        Per budget: the policy folder and train metrics (expected dollars, in-sample accuracy,
        escalation shares, the tuned MoT rule and best single model).
    """
    import polars as pl

    flag = flag or budgets_flag(options.budgets)
    options.check(flag)
    curves_art = read_artifact(curves_path, CURVES)
    unit = curves_art.meta.get("cost_unit")
    if unit != "usd":
        raise InputError(
            f"{curves_path}: costs are in {unit}, not dollars; a cascade needs dollar curves: "
            "run `ttcalloc estimate --price MODEL=IN,OUT ...` (or --prices FILE)"
        )
    curves = curves_art.df
    problems = read_artifact(problems_path, PROBLEMS).df
    require_labels(problems, problems_path, "train")
    models_all = sorted(set(curves["model"].to_list())) if "model" in curves.columns else []
    if len(models_all) < 2:
        raise DataError(
            f"{curves_path}: samples of {len(models_all)} model(s); a cascade needs at least 2 "
            "(--learner stop learns when to stop for one model)"
        )
    for m in options.models:
        if m not in models_all:
            raise InputError(f"--models {m!r}: not in {curves_path} ({', '.join(models_all)})")
    models = list(options.models) if options.models else models_all
    if len(models) < 2:
        raise InputError("--models: a cascade needs at least 2 models")
    halves = set(curves["half"].to_list())
    fit_half = "fit" if "fit" in halves else "all"
    train_ids = sorted(
        set(problems.filter(pl.col("split") == "train")["problem_id"].to_list())
        & set(curves.filter(pl.col("half") == fit_half)["problem_id"].to_list())
    )
    if len(train_ids) < 2 * options.folds:
        raise DataError(f"{curves_path}: only {len(train_ids)} training problems; need more")
    samples_path = options.samples or recorded_input(
        curves_art.meta, "samples", Path(curves_path), "--samples"
    )
    if samples_path is None or not Path(samples_path).exists():
        raise InputError(
            f"{curves_path}: its samples are not found ({samples_path}); pass --samples"
        )
    inputs = {"curves": Path(curves_path), "problems": problems_path, "samples": Path(samples_path)}
    check_output(out, inputs, folder=True)
    prices = prices_of(curves_art.meta, str(curves_path))
    reps = load_model_replays(
        Path(samples_path),
        problems,
        problems_path,
        curves_art.meta,
        models,
        train_ids,
        fit_half,
        options.seed + 1,
        options.orders,
        prices,
    )
    units = unit_costs(reps)
    kinds = _use_kinds(reps, options.prompt_kinds)
    order = model_order(models, units, options.models)
    models = [models[i] for i in order]
    reps = [reps[i] for i in order]
    units = [units[i] for i in order]
    cheapest, first = cheapest_path(reps, units)
    if options.rule not in ("mot", "single") and cheapest > min(options.budgets) * (1 + 1e-12):
        raise InputError(  # before any fit: the calibration would say so only after it
            f"{flag} {min(options.budgets):g}: below the cost of the cheapest path "
            f"({cheapest:.4g}: one sample of {models[first]} on the train questions)"
        )
    prob = problems.filter(pl.col("problem_id").is_in(train_ids)).sort("problem_id")
    setup = fitting(options, prob, train_ids)
    # per cap, one gain model for each escalate-after weighed (its first: the default)
    after = (options.escalate_after,) if options.escalate_after else ESCALATE_AFTER
    grid = [] if options.rule in ("mot", "single") else cap_choices(reps, options.cap)
    chosen = []  # every budget is calibrated before any folder is written
    with Steps("training the cascade", len(grid) * len(after) + len(options.budgets)) as track:
        fits = [[_fit(reps, units, caps, setup, options, m, kinds, track) for m in after]
                for caps in grid]  # fmt: skip
        for budget in options.budgets:
            track.begin(f"choosing and calibrating at ${budget:g}")
            try:
                chosen.append(_choose(reps, units, fits, setup.fold, budget, options, models))
            except cc.CascadeBudgetError as exc:
                raise InputError(f"{flag} {budget:g}: {exc}") from exc
            track.advance(1, f"${budget:g} calibrated")
    results = []
    for budget, got in zip(options.budgets, chosen, strict=True):
        metrics = {
            "budget": budget,
            "learner": "cascade",
            "models": models,
            "caps": list(got.ladder.caps),
            "cap_choice": got.cap_choice,
            "escalate_after": got.ladder.escalate_after,
            "escalate_choice": got.escalate_choice,
            "prompt_kinds": got.ladder.kinds,
            "rule_choice": got.rule_choice,
            "unit_cost_usd": units,
            "train_problems": len(train_ids),
            "training_rows": got.rows,
            "train_expected_cost": float(got.cost.mean()),
            "train_accuracy": float(got.accuracy.mean()),
            "mean_samples": {m: float(got.drawn[:, i].mean()) for i, m in enumerate(models)},
            "reached": {m: got.reached[i] for i, m in enumerate(models)},
            "mot": cb.tune_mot(reps, budget),
            "single": {m: s for m, s in zip(models, cb.tune_single(reps, budget), strict=True)},
            "scored_on": fit_half,
            # scored with the predictions the price was calibrated on, or (a rule) at the
            # setting chosen on these same replays
            "in_sample": options.calibrate_on == "deployed" or not isinstance(got.model, GainModel),
        }
        learned = isinstance(got.model, GainModel)
        folder = cascade_folder(out, budget) if len(options.budgets) > 1 else Path(out)
        policy = CascadePolicy(
            models,
            got.ladder,
            units,
            [f.name for f in setup.features] if learned else [],
            setup.subjects if learned else None,
            got.model,
            got.calibration,
            {},
            got.pace_ratio,
        )
        params = {k: str(v) if isinstance(v, Path) else v for k, v in options.__dict__.items()}
        prov = provenance(POLICY, "train", params, inputs, at=folder / "policy.json")
        prov |= {"xgboost_version": xgboost_version(), **train_questions_record(prob["question"])}
        meta = {
            "cost_unit": "usd",
            "budget": budget,
            "prices": prices.to_json(),
            "metrics": metrics,
            "provenance": prov,
            **answering(prob["grader"].to_list(), Path(samples_path), ["majority"]),
        }
        policy.save(folder, meta)
        results.append({"out": folder, **metrics})
    return results


@dataclass(frozen=True)
class _Fit:
    """One cap's ladder, gain model and training rows, and the train replays predicted out of
    fold (``oof``: the caps are chosen on these) and as the price is calibrated (``prep``: the
    same unless ``--calibrate-on deployed``)."""

    ladder: cc.Ladder
    model: GainModel
    rows: int
    oof: Prepared
    prep: Prepared


def _fit(
    reps: list[Replays],
    units: list[float],
    caps: tuple[int, ...],
    setup: Any,
    options: CascadeTrainOptions,
    escalate_after: int,
    kinds: bool = False,
    track: Steps | None = None,
) -> _Fit:
    """Fit the gain model at these caps and escalate-after and predict the train replays (out
    of fold unless ``--calibrate-on deployed``); ``track`` shows the step."""
    step = f"gain model, cap {max(caps)}, escalating after {escalate_after}"
    if track is not None:
        track.begin(f"fitting the {step}")
    ladder = cc.Ladder(caps, escalate_after=escalate_after, kinds=kinds)
    prep = prepare(reps, setup.qx, ladder, units)
    model, rows = fit_cascade(prep, ladder, setup.fold, setup.options, fit_threads())
    oof = predict(model, prep, ladder, fit_threads(), setup.fold)
    deployed = options.calibrate_on == "deployed"
    calibrated = predict(model, prep, ladder, fit_threads()) if deployed else oof
    if track is not None:
        track.advance(1, f"fitted the {step}")
    return _Fit(ladder, model, rows, oof, calibrated)


def _use_kinds(reps: Sequence[Replays], given: bool | None) -> bool:
    """``--prompt-kinds`` as given, else whether every model's train samples have both kinds."""
    if given and not all_have_both(reps):
        raise InputError(
            "--prompt-kinds: not every model's train samples were drawn with prompts of both "
            "kinds (text and program; `sample --prompt-variant`, `import --program-variants`)"
        )
    return all_have_both(reps) if given is None else given


def _paced(
    ladder: cc.Ladder, prep: Prepared, cal: cc.Calibration
) -> tuple[list[float], tuple[float, ...]]:
    """At the calibrated prices on ``prep``'s predictions: the share of questions (and orders)
    that drew at least one sample of each model, and ``run``'s pace ratio
    (:func:`ttcalloc.core.cascade_pacing.pace_ratio`)."""
    assert prep.gains is not None
    priced = cc.priced_paths(
        prep.replays, ladder, prep.gains, prep.extra, prep.usable, cal, trace=True
    )
    share = sum(w * (p.drawn > 0).mean(axis=(0, 1)) for p, w in priced)
    return [float(s) for s in share], pace_ratio(cal, priced)


@dataclass(frozen=True)
class _Chosen:
    """At one budget: the gains kept (a fit's gain model, or the MoT rule), their ladder and
    calibrated prices, the per-problem train accuracy, dollars and samples of each model
    there, the share of questions reaching each model, and how the choice was made."""

    ladder: cc.Ladder
    model: Gains
    calibration: cc.Calibration
    accuracy: NDArray[np.float64]
    cost: NDArray[np.float64]
    drawn: NDArray[np.float64]
    reached: list[float]
    rows: int
    cap_choice: dict[str, Any] | None
    rule_choice: dict[str, Any] | None
    escalate_choice: dict[str, Any] | None = None
    pace_ratio: tuple[float, ...] = ()  # run's pacing: dollars spent per dollar aimed


def _choose(
    reps: list[Replays],
    units: list[float],
    fits: Sequence[Sequence[_Fit]],
    fold: NDArray[np.int64],
    budget: float,
    options: CascadeTrainOptions,
    models: Sequence[str],
) -> _Chosen:
    """The cap (:func:`pick_caps`) of the learned gains and when they may escalate
    (:func:`choose_escalation`); then the rules ``options.rule`` weighs against them
    (:data:`ALTERNATIVES`), the best of which replaces them only where it is clearly better out
    of fold (the one-standard-error rule); ``mot`` and ``single`` take the rule."""
    how, cap = options.rule, options.cap
    learned: _Chosen | None = None
    learned_oof: NDArray[np.float64] | None = None  # its per-problem out-of-fold accuracy
    if fits:
        oof = [calibrated_outcome(row[0].ladder, row[0].oof, budget) for row in fits]
        chosen = pick_caps([o[1] for o in oof])
        row = fits[chosen]
        which, at, esc = choose_escalation([(f.ladder, f.oof) for f in row], budget, oof[chosen])
        fit = row[which]
        ladder, prep = fit.ladder, fit.prep
        cal, acc, cost, drawn = (
            at if fit.prep is fit.oof else calibrated_outcome(ladder, prep, budget)
        )
        caps = None
        if len(fits) > 1:
            caps = {
                "caps": [list(r[0].ladder.caps) for r in fits],
                "oof_accuracy": [float(o[1].mean()) for o in oof],
                "chosen": chosen,
                "rule": "the fit half only if clearly better out of fold (one standard error)",
            }
        reached, pace = _paced(ladder, prep, cal)
        learned_oof = at[1]
        learned = _Chosen(
            ladder, fit.model, cal, acc, cost, drawn, reached, fit.rows, caps, None, esc, pace
        )
    if not ALTERNATIVES[how]:
        assert learned is not None
        return learned
    pick, rule, info = choose_rule(reps, units, budget, fold, how, learned_oof, models, cap)
    if pick is None:
        assert learned is not None
        return replace(learned, rule_choice=info)
    assert rule is not None
    reach = [float(r) for r in np.minimum(rule.drawn, 1.0).mean(axis=0)]
    lad = rule.rule.ladder(len(reps))
    prep = predict(rule.rule, prepare(reps, None, lad, units, rule.rule), lad)
    return _Chosen(
        lad,
        rule.rule,
        rule.calibration,
        rule.accuracy,
        rule.cost,
        rule.drawn,
        reach,
        0,
        None if learned is None else learned.cap_choice,
        info,
        None if learned is None else learned.escalate_choice,
        _paced(lad, prep, rule.calibration)[1],
    )
