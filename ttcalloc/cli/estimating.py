"""``ttcalloc estimate``: from samples to per-problem success curves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttcalloc.cli.commands import PIPELINE, Force, JsonFlag, _csv, _run_stage, app, fails_cleanly


@app.command("estimate", rich_help_panel=PIPELINE)
@fails_cleanly
def estimate_cmd(
    samples: Annotated[Path, typer.Argument(help="samples.parquet (file or folder of parts).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output curves.parquet.")] = Path(
        "curves.parquet"
    ),
    ks: Annotated[
        str | None,
        typer.Option(
            help="Sample counts k of the actions (default: powers of two up to half the samples "
            "of the problem with the fewest, so cross-fitting is on: 1,2,4 for 8 samples; with "
            "several models, each model's own fewest)."
        ),
    ] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(help="majority (vote) or pass (any correct); repeat for both."),
    ] = None,
    models: Annotated[
        str | None, typer.Option(help="Comma-separated models to keep (default: all).")
    ] = None,
    cost: Annotated[
        str,
        typer.Option(
            help="tokens, completion-tokens, usd, samples, or auto (usd with prices given or "
            "several models; else tokens if known, else samples)."
        ),
    ] = "auto",
    price: Annotated[
        list[str] | None,
        typer.Option(
            help="MODEL=IN,OUT: dollars per million input and output tokens (repeatable; "
            "wins over --prices; models without one: litellm's cost map). See docs/prices.md."
        ),
    ] = None,
    prices: Annotated[
        Path | None,
        typer.Option(help="JSON prices file: {model: {input, output, prompt_tokens, source}}."),
    ] = None,
    prompt_tokens: Annotated[
        list[str] | None,
        typer.Option(
            help="MODEL=N: prompt tokens to charge each sample of MODEL that records none "
            "(default: the question's characters / 4; repeatable)."
        ),
    ] = None,
    prompt_once: Annotated[
        bool, typer.Option(help="Charge prompt tokens once per k (APIs with an n parameter).")
    ] = False,
    holdout: Annotated[
        float | None,
        typer.Option(
            help="Share of each problem's samples held out for scoring (0 = in-sample; "
            "default 0.5 when every problem has >= 2 x max(k) samples)."
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of the fit/eval split of samples, and of the orders maj@k takes samples "
            "drawn with several prompt variants in (in turn, as `run` draws them)."
        ),
    ] = 0,
    problems: Annotated[
        Path | None,
        typer.Option(help="problems.parquet: cluster wrong answers with the problem's grader."),
    ] = None,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """Per-problem success and cost curves p_i(a), c_i(a) for every action (exact; maj@k of
    samples drawn with several prompt variants: a mean over seeded orders taking them in turn)."""
    from ttcalloc.cli.summaries import print_estimate
    from ttcalloc.common.console import emit_json
    from ttcalloc.stages.estimate import EstimateOptions, estimate_curves

    options = EstimateOptions(
        ks=_csv(ks, "--ks", int) if ks else (),
        strategies=tuple(strategy or ("majority",)),
        models=tuple(m.strip() for m in models.split(",")) if models else (),
        cost=cost,
        prompt_once=prompt_once,
        holdout=holdout,
        seed=seed,
        prices=tuple(price or ()),
        prices_file=prices,
        prompt_tokens=tuple(prompt_tokens or ()),
    )
    inputs = {"samples": samples, "problems": problems, "prices": prices}
    result = _run_stage(
        "estimate",
        out,
        options,
        inputs,
        force,
        as_json,
        lambda: estimate_curves(samples, out, options, problems),
    )
    if result is None:
        return
    print_estimate(result)
    if result.cost_note:
        from rich.markup import escape

        from ttcalloc.common.console import log

        log(f"dollar costs: {escape(result.cost_note)}")
    if as_json:
        emit_json(result.to_dict())
