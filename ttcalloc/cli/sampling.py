"""``ttcalloc sample``: draw samples from an LLM into a folder of Parquet parts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttcalloc.cli.commands import PIPELINE, JsonFlag, app, fails_cleanly


@app.command("sample", rich_help_panel=PIPELINE)
@fails_cleanly
def sample_cmd(
    problems: Annotated[Path, typer.Argument(help="problems.parquet written by `ttcalloc data`.")],
    model: Annotated[
        str,
        typer.Option(
            help="litellm model (openai/gpt-4o-mini, hosted_vllm/..., ollama/...), "
            "local/smollm2 (real local model, offline) or sim/weak|medium|strong (simulated)."
        ),
    ],
    n: Annotated[
        int, typer.Option(help="Samples per problem (a rerun adds only what is missing).")
    ] = 16,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder of Parquet parts.")
    ] = Path("samples.parquet"),
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    max_tokens: Annotated[int, typer.Option(help="Maximum completion tokens.")] = 512,
    prompt: Annotated[
        str | None,
        typer.Option(
            help="auto (per grader), numeric, math, exact, or a template file with {question}."
        ),
    ] = None,
    system: Annotated[str | None, typer.Option(help="System message.")] = None,
    seed: Annotated[int, typer.Option(help="Base seed (each sample gets its own).")] = 0,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 8,
    rpm: Annotated[float | None, typer.Option(help="Requests per minute limit.")] = None,
    tpm: Annotated[float | None, typer.Option(help="Tokens per minute limit (estimated).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 120.0,
    retries: Annotated[
        int, typer.Option(help="Retries of 429/5xx/timeouts (exponential backoff).")
    ] = 4,
    max_cost: Annotated[
        float | None,
        typer.Option(
            help="Never send a request whose worst case could take the spend over this many "
            "dollars (prompt tokens counted, max-tokens completions)."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N problems.", min=1)] = None,
    shard: Annotated[
        str | None,
        typer.Option(help="i/n: this machine's deterministic share of problems (0 <= i < n)."),
    ] = None,
    requests_per_batch: Annotated[
        int, typer.Option(help="Choices per request via the API's n parameter (prompt paid once).")
    ] = 1,
    api_base: Annotated[
        str | None, typer.Option(help="Base URL of an OpenAI-compatible server (vLLM, llama.cpp).")
    ] = None,
    price_in: Annotated[
        float | None, typer.Option(help="Dollars per million prompt tokens (unknown/local models).")
    ] = None,
    price_out: Annotated[
        float | None, typer.Option(help="Dollars per million completion tokens.")
    ] = None,
    logprobs: Annotated[
        bool,
        typer.Option(
            help="Ask for token log-probs and record each sample's mean (mean_logprob); "
            "--no-logprobs for a provider that rejects the parameter."
        ),
    ] = True,
    flush_every: Annotated[
        int, typer.Option(help="Samples per Parquet part (parts are also written every 5 s).")
    ] = 64,
    max_failures: Annotated[
        int,
        typer.Option(
            help="Stop (exit 1) after this many consecutive failed requests (bad request, "
            "permission, or retries exhausted)."
        ),
    ] = 10,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Sample n responses per problem from an LLM: resumable, concurrent, graded."""
    from ttcalloc.common.console import emit_json, log
    from ttcalloc.stages.sample import SampleOptions, describe, parse_shard, sample_problems

    options = SampleOptions(
        model=model,
        n=n,
        temperature=temperature,
        max_tokens=max_tokens,
        prompt=prompt,
        system=system,
        seed=seed,
        concurrency=concurrency,
        rpm=rpm,
        tpm=tpm,
        timeout=timeout,
        retries=retries,
        max_cost=max_cost,
        limit=limit,
        shard=parse_shard(shard) if shard else None,
        requests_per_batch=requests_per_batch,
        api_base=api_base,
        price_in=price_in,
        price_out=price_out,
        logprobs=logprobs,
        progress=progress,
        flush_every=flush_every,
        max_failures=max_failures,
    )
    result = sample_problems(problems, out, options)
    log(describe(result))
    if result.errors:
        log(
            f"{result.errors} samples failed and were recorded; "
            "rerun the same command to retry them"
        )
    if as_json:
        emit_json(result.to_dict())
