"""``ttcalloc evaluate`` and ``allocate``: score trained policies, then apply one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttcalloc.cli.commands import PIPELINE, Force, JsonFlag, _csv, _run_stage, app, fails_cleanly


@app.command("evaluate", rich_help_panel=PIPELINE)
@fails_cleanly
def evaluate_cmd(
    policies: Annotated[
        list[str] | None,
        typer.Argument(
            help="Policy folders from `ttcalloc train`; NAME=FOLDER names one, and folders "
            "sharing a NAME are one policy trained at several budgets.",
            show_default=False,
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", help="Another policy folder (same forms; repeatable)."),
    ] = None,
    curves: Annotated[
        Path | None, typer.Option(help="curves.parquet (default: the first policy's).")
    ] = None,
    problems: Annotated[
        Path | None, typer.Option(help="problems.parquet with the split (default: the policy's).")
    ] = None,
    samples: Annotated[
        Path | None,
        typer.Option(
            help="samples.parquet for the early-stopping baselines (default: the curves')."
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output report folder.")] = Path(
        "report"
    ),
    budgets: Annotated[
        str | None,
        typer.Option(
            help="Budgets, comma-separated (default: each policy's own budget, with the "
            "baselines at the policy's realized cost)."
        ),
    ] = None,
    baselines: Annotated[
        str,
        typer.Option(
            help="Baselines, comma-separated (k-each: the action costing exactly B for every "
            "problem, e.g. maj@2 at B = 2 samples; esc and adaptive run on majority-vote "
            "curves, verify on pass@k curves; single (one row per model), best-single and "
            "random-route on curves of several models)."
        ),
    ] = "uniform,k-each,random,length,esc,adaptive,verify,single,best-single,random-route",
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 2000,
    orders: Annotated[
        int, typer.Option(help="Random sample orders replayed per problem for early stopping.")
    ] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and the replay orders.")] = 0,
    plot: Annotated[bool, typer.Option(help="Draw accuracy_vs_budget.png.")] = True,
    recalibrate: Annotated[
        bool,
        typer.Option(
            help="Recalibrate learned policies on the test questions (no labels) so their "
            "expected cost meets each budget: a static policy's mu, a stop policy's two "
            "prices on the test replays."
        ),
    ] = False,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """Score policies, baselines and the oracle on the test split at matched cost; report."""
    from ttcalloc.cli.summaries import print_report
    from ttcalloc.common.console import emit_json
    from ttcalloc.stages.evaluate import EvaluateOptions, PolicySpec, evaluate_policies

    specs = [PolicySpec.parse(p) for p in [*(policies or []), *(policy or [])]]
    options = EvaluateOptions(
        budgets=_csv(budgets, "--budgets", float) if budgets else (),
        baselines=_csv(baselines, "--baselines", str),
        n_boot=bootstrap,
        orders=orders,
        seed=seed,
        plot=plot,
        recalibrate=recalibrate,
    )
    inputs: dict[str, Path | None] = {
        f"policy {i} {s.name}": s.path / "policy.json" for i, s in enumerate(specs)
    }
    inputs |= {"curves": curves, "problems": problems, "samples": samples}
    result = _run_stage(
        "evaluate",
        out,
        options,
        inputs,
        force,
        False,
        lambda: evaluate_policies(specs, out, options, curves, problems, samples),
        "report.json",
    )
    if result is None:  # up to date: show the report that is there
        from ttcalloc.artifacts.io import read_json_artifact
        from ttcalloc.artifacts.schemas import REPORT

        report = read_json_artifact(out / "report.json", REPORT)
    else:
        report = result.report
    print_report(report)
    if as_json:
        emit_json(report)


@app.command("allocate", rich_help_panel=PIPELINE)
@fails_cleanly
def allocate_cmd(
    policy: Annotated[Path, typer.Argument(help="Policy folder from `ttcalloc train`.")],
    problems: Annotated[Path, typer.Argument(help="problems.parquet to allocate compute to.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output plan.parquet.")] = Path(
        "plan.parquet"
    ),
    budget: Annotated[
        float | None,
        typer.Option(
            help="Meet this mean budget on these problems (recalibrates mu on them, no labels "
            "needed; default: the trained mu)."
        ),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Only the problems of this split (e.g. test); default: all.")
    ] = None,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """Choose the action for each new problem with a trained policy (no model calls)."""
    from ttcalloc.common.console import emit_json, log
    from ttcalloc.stages.allocate import allocate

    inputs = {"policy": policy / "policy.json", "problems": problems}
    result = _run_stage(
        "allocate",
        out,
        {"budget": budget, "split": split},
        inputs,
        force,
        as_json,
        lambda: allocate(policy, problems, out, budget, split),
    )
    if result is None:
        return
    counts = ", ".join(f"{a} {n}" for a, n in result.actions.items())
    log(
        f"wrote [bold]{result.out}[/bold]: {result.problems} problems; expected mean cost "
        f"{result.expected_cost:.4g} {result.cost_unit} (budget {result.budget:g}"
        + (", mu recalibrated on these problems" if result.recalibrated else "")
        + f"); {counts}"
    )
    if as_json:
        emit_json(result.to_dict())
