"""``ttcalloc serve``: an OpenAI-compatible endpoint answering with a trained policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttcalloc.cli.commands import app, fails_cleanly
from ttcalloc.cli.sampling_flags import (
    ApiBaseOpt,
    MaxTokensOpt,
    PriceInOpt,
    PriceOutOpt,
    RetriesOpt,
    RpmOpt,
    RunPromptVariantOpt,
    SeedOpt,
    TemperatureOpt,
    TimeoutOpt,
    TpmOpt,
)


@app.command("serve", rich_help_panel="Tools")
@fails_cleanly
def serve_cmd(
    policy: Annotated[
        Path,
        typer.Argument(
            help="Policy folder from `ttcalloc train` (static, adaptive stop, or cascade)."
        ),
    ],
    model: Annotated[
        list[str],
        typer.Option(
            help="Model, as for `run` (litellm, local/..., sim/..., replay:PATH). A policy over "
            "several models (actions MODEL:maj@k, cascades) takes NAME=SPEC for each of its "
            "models, repeated."
        ),
    ],
    budget: Annotated[
        float,
        typer.Option(
            help="The fleet's mean cost per request, in the policy's cost unit (held across "
            "requests and restarts)."
        ),
    ],
    budget_unit: Annotated[
        str | None,
        typer.Option(
            help="The unit --budget is in (samples, tokens, completion-tokens, usd): refused "
            "unless it is the policy's; confirms a budget that looks given in another unit, "
            "as for `run`."
        ),
    ] = None,
    price: Annotated[
        list[str] | None,
        typer.Option(
            help="Several models: MODEL=IN,OUT, a model's dollars per million input and output "
            "tokens (repeatable), as for `run`. Default: the prices the policy's curves "
            "recorded, else litellm's cost map."
        ),
    ] = None,
    prices: Annotated[
        Path | None,
        typer.Option(help="Several models: JSON prices file, as for `run`; --price wins."),
    ] = None,
    prompt_tokens: Annotated[
        list[str] | None,
        typer.Option(help="MODEL=N: prompt tokens to assume where a sample records none."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="TTCALLOC_SERVE_API_KEY",
            help="Key clients must send (Authorization: Bearer KEY); env TTCALLOC_SERVE_API_KEY.",
            show_envvar=False,
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of the fleet ledger (default: $TTCALLOC_HOME/serve)."),
    ] = None,
    name: Annotated[str, typer.Option(help="Model name /v1/models lists.")] = "ttcalloc",
    window: Annotated[int, typer.Option(help="Most requests decided together.")] = 32,
    window_ms: Annotated[
        float, typer.Option(help="Longest a request waits for the others of its window (ms).")
    ] = 20.0,
    max_queue: Annotated[
        int, typer.Option(help="Requests waiting or in flight before 503 (Retry-After).")
    ] = 1024,
    upstream: Annotated[int, typer.Option(help="Requests in flight to the model.")] = 64,
    request_timeout: Annotated[
        float, typer.Option(help="Seconds a request may take before 504 (0: no limit).")
    ] = 300.0,
    max_samples: Annotated[
        int | None,
        typer.Option(help="The most samples one request may draw (default: the policy's most)."),
    ] = None,
    max_request_budget: Annotated[
        float | None,
        typer.Option(
            help="The most a request's X-Ttcalloc-Budget header may ask (default: 4 x --budget)."
        ),
    ] = None,
    max_body: Annotated[
        int, typer.Option(help="The most bytes of a request body (413).")
    ] = 1048576,
    shutdown_grace: Annotated[
        float,
        typer.Option(
            help="On SIGTERM: seconds requests in flight get (then 503), and as long again for "
            "their windows to reach the ledger."
        ),
    ] = 30.0,
    run_programs: Annotated[
        bool,
        typer.Option(
            "--run-programs",
            help="Serve a policy with prompt variants of kind program: the Python programs the "
            "model writes for the questions requests send are executed on this machine (child "
            "processes with time and memory limits; NOT a sandbox). Without it such a policy is "
            "refused.",
        ),
    ] = False,
    temperature: TemperatureOpt = 0.7,
    max_tokens: MaxTokensOpt = 512,
    prompt_variant: RunPromptVariantOpt = None,
    seed: SeedOpt = 0,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    timeout: TimeoutOpt = 120.0,
    retries: RetriesOpt = 4,
    api_base: ApiBaseOpt = None,
    price_in: PriceInOpt = None,
    price_out: PriceOutOpt = None,
) -> None:
    """Serve a policy as an OpenAI-compatible endpoint holding a fleet budget (until SIGTERM)."""
    from ttcalloc.sampler.options import SampleOptions
    from ttcalloc.serve import ServeOptions, serve
    from ttcalloc.stages.run.asking import parse_given
    from ttcalloc.stages.run.models import PriceFlags, split_model_flags

    label, models = split_model_flags(model)
    sample = SampleOptions(
        model=label, temperature=temperature, max_tokens=max_tokens, seed=seed, rpm=rpm,
        tpm=tpm, timeout=timeout, retries=retries, api_base=api_base[0] if api_base else None,
        extra_api_bases=tuple(api_base[1:]) if api_base else (), price_in=price_in,
        price_out=price_out, progress=False,
        prompt_variants=parse_given(list(prompt_variant or ()), policy),
    )  # fmt: skip
    serve(
        policy,
        ServeOptions(
            sample=sample, budget=budget, budget_unit=budget_unit, host=host, port=port,
            api_key=api_key, state_dir=state_dir, name=name, window=window, window_ms=window_ms,
            max_queue=max_queue, upstream=upstream, request_timeout=request_timeout,
            max_samples=max_samples, max_request_budget=max_request_budget, max_body=max_body,
            shutdown_grace=shutdown_grace, run_programs=run_programs,
            models=models,
            prices=PriceFlags(tuple(price or ()), prices, tuple(prompt_tokens or ())),
        ),
    )  # fmt: skip
