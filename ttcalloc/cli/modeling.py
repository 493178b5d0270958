"""``ttcalloc solve`` and ``train``: from curves to the oracle and a policy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ttcalloc.cli.commands import (
    PIPELINE,
    Force,
    JsonFlag,
    _csv,
    _int_or_auto,
    _run_stage,
    app,
    fails_cleanly,
)


@app.command("solve", rich_help_panel=PIPELINE)
@fails_cleanly
def solve_cmd(
    curves: Annotated[Path, typer.Argument(help="curves.parquet written by `ttcalloc estimate`.")],
    budget: Annotated[
        float | None, typer.Option(help="Average cost budget B per problem (in the curves' unit).")
    ] = None,
    budgets: Annotated[
        str | None, typer.Option(help="Several budgets, comma-separated: one allocation each.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output allocation.parquet.")] = Path(
        "allocation.parquet"
    ),
    method: Annotated[
        str, typer.Option(help="exact (sorted hull slopes) or bisect (the paper's search).")
    ] = "exact",
    rounding: Annotated[
        str,
        typer.Option(help="mix (tied problems mixed: cost == B in expectation) or floor (<= B)."),
    ] = "mix",
    half: Annotated[
        str | None, typer.Option(help="Curves to optimize: fit, eval or all (default fit if any).")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="Problems: train, test or all (default train with --problems)."),
    ] = None,
    problems: Annotated[
        Path | None, typer.Option(help="problems.parquet, to select a split.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for tie order and mixed rounding.")] = 0,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """The exact budgeted oracle: best action per problem with mean cost <= B."""
    from ttcalloc.cli.summaries import print_solve
    from ttcalloc.common.console import emit_json
    from ttcalloc.common.errors import InputError
    from ttcalloc.stages.solve import SolveOptions, solve_allocation

    if (budget is None) == (budgets is None):
        raise InputError("give exactly one of --budget B or --budgets B1,B2,...")
    values = (budget,) if budget is not None else _csv(budgets or "", "--budgets", float)
    options = SolveOptions(
        budgets=values, method=method, rounding=rounding, half=half, split=split, seed=seed
    )
    result = _run_stage(
        "solve",
        out,
        options,
        {"curves": curves, "problems": problems},
        force,
        as_json,
        lambda: solve_allocation(
            curves, out, options, problems, "--budget" if budget is not None else "--budgets"
        ),
    )
    if result is None:
        return
    print_solve(result)
    if as_json:
        emit_json(result.to_dict())


@app.command("train", rich_help_panel=PIPELINE)
@fails_cleanly
def train_cmd(
    allocation: Annotated[
        Path,
        typer.Argument(
            help="allocation.parquet from `ttcalloc solve`; --learner stop: that or "
            "curves.parquet; --learner cascade: curves.parquet (from `ttcalloc estimate` in "
            "dollars; no solve)."
        ),
    ],
    problems: Annotated[
        Path, typer.Option(help="problems.parquet (questions, metadata, split).")
    ] = Path("problems.parquet"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Output policy folder.")] = Path(
        "policy"
    ),
    curves: Annotated[
        Path | None, typer.Option(help="curves.parquet (default: the one the allocation used).")
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            help="Which budget of the allocation (needed if several); stop, cascade: the budget "
            "to calibrate to (cascade: dollars per question)."
        ),
    ] = None,
    budgets: Annotated[
        str | None,
        typer.Option(
            help="stop, cascade: several budgets, comma-separated: the gain model is fit once and "
            "one policy folder per budget is written under --out (OUT/b2, OUT/b4, ...; one "
            "budget alone: its policy in --out itself)."
        ),
    ] = None,
    learner: Annotated[
        str,
        typer.Option(
            help="stop (adaptive: decides after each sample whether to draw more, from replays "
            "of the recorded samples), cascade (several models: stop, draw again or escalate), "
            "imitate (classify the oracle action from the question) "
            "or plugin (predict p(a) from the question)."
        ),
    ] = "stop",
    weight: Annotated[
        str, typer.Option(help="none, or gap: weight problems by their gap.")
    ] = "none",
    features: Annotated[
        str | None,
        typer.Option(
            help="Question feature groups, comma-separated: text, numbers, symbols, meta "
            "(default: all for imitate/plugin; none for stop, whose state is the samples')."
        ),
    ] = None,
    folds: Annotated[int, typer.Option(help="Folds for out-of-fold calibration.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of folds and XGBoost.")] = 0,
    n_estimators: Annotated[
        int | None, typer.Option(help="Boosting rounds (default: 200; stop: 150).")
    ] = None,
    max_depth: Annotated[int, typer.Option(help="Tree depth.")] = 4,
    samples: Annotated[
        Path | None,
        typer.Option(help="stop: samples.parquet (default: the samples the curves came from)."),
    ] = None,
    orders: Annotated[
        int | None,
        typer.Option(
            help="stop, cascade: random orders each train problem is replayed in (default: "
            "stop 60, cascade 30)."
        ),
    ] = None,
    fit_orders: Annotated[
        int | None,
        typer.Option(
            help="stop, cascade: of those orders, how many make training rows (default: stop "
            "30, cascade 10)."
        ),
    ] = None,
    cap: Annotated[
        int | None,
        typer.Option(
            help="stop, cascade: most samples the policy draws per question (cascade: of each "
            "model) (default: stop: the fit-half samples every train problem has; cascade: per "
            "budget, 16 or the fit half, the larger only if clearly better out of fold)."
        ),
    ] = None,
    signals: Annotated[
        str,
        typer.Option(
            help="stop: per-sample signals (lengths, log-probs) in the state: auto (kept when "
            "they gain out of fold), all, or none."
        ),
    ] = "auto",
    margin: Annotated[
        float | None,
        typer.Option(
            help="stop: the prices meet the budget with this many standard errors of the train "
            "cost to spare (default: 1 with a verifier, --strategy pass, whose cost is "
            "heavy-tailed; 0 for majority vote)."
        ),
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            help="cascade: the models in cascade order, comma-separated (default: every model "
            "of the curves, cheapest per sample first)."
        ),
    ] = None,
    calibrate_on: Annotated[
        str,
        typer.Option(
            help="cascade: predict the train replays the price is calibrated on with the "
            "deployed (averaged) model, or each problem's out-of-fold model (oof)."
        ),
    ] = "oof",
    rule: Annotated[
        str | None,
        typer.Option(
            help="cascade: the gains weighed against the price: guard (the best single "
            "model's uniform allocation, unless the learned gains are clearly better out of "
            "fold), learned (alone), auto (as guard, and the MoT rule where it is clearly "
            "better than the learned gains out of fold), mot (the MoT rule: k samples of a "
            "cheap model, then the strongest when their leader's share is low, the price "
            "setting the threshold) or "
            "single (the best single model) (default: guard)."
        ),
    ] = None,
    escalate_after: Annotated[
        str | None,
        typer.Option(
            help="cascade: samples of the current model the learned gains draw before they may "
            "escalate to a later one: a number, or auto (a gain model for 3 and one for 1; per "
            "budget, 3 unless 1 is clearly better out of fold) (default: auto)."
        ),
    ] = None,
    prompt_kinds: Annotated[
        bool | None,
        typer.Option(
            "--prompt-kinds/--no-prompt-kinds",
            help="cascade: the state also says whether the answers of text (chain-of-thought) "
            "and program (program-of-thought) prompts agree (default: when the train samples "
            "were drawn with prompts of both kinds).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """Learn a policy on the train split; calibrate it to the budget out of fold.

    `cascade` learns, over several models priced in dollars, when to stop, draw again or
    escalate to a stronger model (from replays of every model's samples).

    `stop` (the default) learns when to stop sampling from replays of the recorded samples
    (the gain from drawing more, against its cost); `imitate` and `plugin` pick one action per
    question from its text, as in the paper.
    """
    from ttcalloc.cli.summaries import print_train
    from ttcalloc.common.console import emit_json
    from ttcalloc.common.errors import InputError
    from ttcalloc.stages.train import TrainOptions, TrainResult, train_policy

    default_groups = "" if learner == "stop" else "text,numbers,symbols,meta"
    group_names = tuple(
        f.strip()
        for f in (default_groups if features is None else features).split(",")
        if f.strip()
    )
    options: Any
    run: Callable[[], list[TrainResult]]
    inputs = {"allocation": allocation, "problems": problems, "curves": curves}
    policy_files = ["policy.json"]
    if rule is not None and learner != "cascade":
        raise InputError(f"--rule is for --learner cascade, not {learner}")
    if escalate_after is not None and learner != "cascade":
        raise InputError(f"--escalate-after is for --learner cascade, not {learner}")
    if prompt_kinds is not None and learner != "cascade":
        raise InputError(f"--prompt-kinds is for --learner cascade, not {learner}")
    if learner == "stop":
        from ttcalloc.stages.train_stop import StopTrainOptions, budget_folder, train_adaptive

        options = StopTrainOptions(
            budget=budget,
            budgets=_csv(budgets, "--budgets", float) if budgets is not None else (),
            cap=cap,
            features=group_names,
            folds=folds,
            seed=seed,
            **({} if orders is None else {"orders": orders}),
            **({} if fit_orders is None else {"fit_orders": fit_orders}),
            signals=signals,
            margin=margin,
            max_depth=max_depth,
            samples=samples,
            **({} if n_estimators is None else {"n_estimators": n_estimators}),
        )
        inputs["samples"] = samples
        if options.budgets:
            policy_files = [str(budget_folder(Path(), b) / "policy.json") for b in options.budgets]

        def run() -> list[TrainResult]:
            done = train_adaptive(allocation, problems, out, options, curves)
            return [TrainResult(Path(m.pop("out")), m) for m in done]

    elif learner == "cascade":
        from ttcalloc.stages.train_cascade import (
            CascadeTrainOptions,
            cascade_folder,
            train_cascade,
        )

        if budget is None and budgets is None:
            raise InputError("--learner cascade: give --budget B or --budgets B1,B2,... (dollars)")
        options = CascadeTrainOptions(
            budgets=_csv(budgets, "--budgets", float)
            if budgets is not None
            else ((budget,) if budget is not None else ()),
            models=tuple(m.strip() for m in models.split(",") if m.strip()) if models else (),
            features=group_names if features is not None else CascadeTrainOptions().features,
            folds=folds,
            seed=seed,
            samples=samples,
            max_depth=max_depth,
            calibrate_on=calibrate_on,
            rule=CascadeTrainOptions.rule if rule is None else rule,
            escalate_after=_int_or_auto(escalate_after, "--escalate-after"),
            prompt_kinds=prompt_kinds,
            **({} if orders is None else {"orders": orders}),
            **({} if fit_orders is None else {"fit_orders": fit_orders}),
            **({} if cap is None else {"cap": cap}),
            **({} if n_estimators is None else {"n_estimators": n_estimators}),
        )
        inputs["samples"] = samples
        if len(options.budgets) > 1:
            policy_files = [str(cascade_folder(Path(), b) / "policy.json") for b in options.budgets]

        def run() -> list[TrainResult]:
            flag = "--budgets" if budgets is not None else "--budget"
            done = train_cascade(allocation, problems, out, options, flag)
            return [TrainResult(Path(m.pop("out")), m) for m in done]

    else:
        if models is not None:
            raise InputError(f"--models is for --learner cascade, not {learner}")
        for flag, given, which in [
            ("--budgets", budgets, "stop and cascade"),
            ("--cap", cap, "stop and cascade"),
            ("--margin", margin, "stop"),
        ]:
            if given is not None:
                raise InputError(f"{flag} is for --learner {which}; {learner} trains one budget")
        options = TrainOptions(
            budget=budget,
            learner=learner,
            weight=weight,
            features=group_names,
            folds=folds,
            seed=seed,
            max_depth=max_depth,
            **({} if n_estimators is None else {"n_estimators": n_estimators}),
        )

        def run() -> list[TrainResult]:
            return [train_policy(allocation, problems, out, options, curves)]

    results = _run_stage("train", out, options, inputs, force, as_json, run, policy_files)
    if results is None:
        return
    for result in results:
        print_train(result)
    if as_json:
        done = [r.to_dict() for r in results]
        emit_json(done[0] if budgets is None else {"out": str(out), "policies": done})
