"""``ttcalloc sample``: draw samples from an LLM into a folder of Parquet parts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttcalloc.cli.commands import PIPELINE, Force, JsonFlag, app, fails_cleanly
from ttcalloc.cli.sampling_flags import (
    ApiBaseOpt,
    BatchDiscountOpt,
    BatchOpt,
    BatchRequestsOpt,
    ClientOpt,
    ConcurrencyOpt,
    FlushEveryOpt,
    LimitOpt,
    LogprobsOpt,
    MaxCostOpt,
    MaxFailuresOpt,
    MaxTokensOpt,
    PollSecondsOpt,
    PriceInOpt,
    PriceOutOpt,
    ProgressOpt,
    PromptOpt,
    PromptVariantOpt,
    RequestsPerBatchOpt,
    RetriesOpt,
    RpmOpt,
    RunPromptOpt,
    RunPromptVariantOpt,
    SeedOpt,
    ShardOpt,
    SystemOpt,
    TemperatureOpt,
    ThreadsOpt,
    TimeoutOpt,
    TpmOpt,
)


@app.command("sample", rich_help_panel=PIPELINE)
@fails_cleanly
def sample_cmd(
    problems: Annotated[Path, typer.Argument(help="problems.parquet written by `ttcalloc data`.")],
    model: Annotated[
        str,
        typer.Option(
            help="litellm model (openai/gpt-4o-mini, hosted_vllm/..., ollama/...), "
            "local/smollm2 (real local model, offline), sim/weak|medium|strong (simulated), or "
            "replay:SAMPLES (a samples file or folder served again, one recorded sample per "
            "request, in an order seeded by --seed)."
        ),
    ],
    n: Annotated[
        int, typer.Option(help="Samples per problem (a rerun adds only what is missing).")
    ] = 16,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder of Parquet parts.")
    ] = Path("samples.parquet"),
    batch: BatchOpt = False,
    batch_discount: BatchDiscountOpt = None,
    poll_seconds: PollSecondsOpt = 30.0,
    batch_requests: BatchRequestsOpt = 50_000,
    temperature: TemperatureOpt = 0.7,
    max_tokens: MaxTokensOpt = 512,
    prompt: PromptOpt = None,
    prompt_variant: PromptVariantOpt = None,
    system: SystemOpt = None,
    seed: SeedOpt = 0,
    concurrency: ConcurrencyOpt = 8,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    timeout: TimeoutOpt = 120.0,
    retries: RetriesOpt = 4,
    max_cost: MaxCostOpt = None,
    limit: LimitOpt = None,
    shard: ShardOpt = None,
    requests_per_batch: RequestsPerBatchOpt = 0,
    api_base: ApiBaseOpt = None,
    client: ClientOpt = "auto",
    price_in: PriceInOpt = None,
    price_out: PriceOutOpt = None,
    logprobs: LogprobsOpt = True,
    flush_every: FlushEveryOpt = 5000,
    max_failures: MaxFailuresOpt = 10,
    threads: ThreadsOpt = None,
    progress: ProgressOpt = True,
    as_json: JsonFlag = False,
) -> None:
    """Sample n responses per problem from an LLM: resumable, concurrent, graded."""
    from ttcalloc.common.console import emit_json, log
    from ttcalloc.stages.sample import SampleOptions, describe, parse_shard, sample_problems
    from ttcalloc.text.variants import parse_variant

    options = SampleOptions(
        model=model,
        n=n,
        temperature=temperature,
        max_tokens=max_tokens,
        prompt=prompt,
        prompt_variants=tuple(parse_variant(v) for v in prompt_variant or ()),
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
        api_base=api_base[0] if api_base else None,
        extra_api_bases=tuple(api_base[1:]) if api_base else (),
        client=client,
        price_in=price_in,
        price_out=price_out,
        logprobs=logprobs,
        progress=progress,
        flush_every=flush_every,
        max_failures=max_failures,
        threads=threads,
    )
    if batch:
        from ttcalloc.stages.sample import BatchOptions, sample_in_batches

        batching = BatchOptions(batch_discount, poll_seconds, batch_requests)
        result = sample_in_batches(problems, out, options, batching)
    else:
        result = sample_problems(problems, out, options)
    log(describe(result))
    if result.errors:
        log(
            f"{result.errors} samples failed and were recorded; "
            "rerun the same command to retry them"
        )
    if as_json:
        emit_json(result.to_dict())


@app.command("run", rich_help_panel=PIPELINE)
@fails_cleanly
def run_cmd(
    policy: Annotated[
        Path, typer.Argument(help="Policy folder from `ttcalloc train` (any learner).")
    ],
    questions: Annotated[
        Path,
        typer.Argument(
            help="Questions: a problems.parquet, or a JSONL/JSON/CSV/Parquet file (ids and gold "
            "answers optional)."
        ),
    ],
    model: Annotated[
        list[str],
        typer.Option(
            help="Model, as for `sample` (litellm, local/..., sim/..., or replay:SAMPLES to "
            "serve recorded samples again). A policy over several models (actions MODEL:maj@k) "
            "takes NAME=SPEC for each of its models, repeated (replay:PATH of a file of several "
            "models serves NAME's samples)."
        ),
    ],
    budget: Annotated[
        float,
        typer.Option(help="Mean cost per question, in the policy's cost unit (e.g. samples)."),
    ],
    price: Annotated[
        list[str] | None,
        typer.Option(
            help="MODEL=IN,OUT: a model's dollars per million input and output tokens "
            "(repeatable); a sample its backend reports no cost for is charged its tokens at "
            "it. Default: the prices the policy's curves recorded, else litellm's cost map."
        ),
    ] = None,
    prices: Annotated[
        Path | None,
        typer.Option(
            help="JSON prices file ({MODEL: {input, output}}, dollars per million tokens); "
            "--price wins."
        ),
    ] = None,
    prompt_tokens: Annotated[
        list[str] | None,
        typer.Option(help="MODEL=N: prompt tokens to assume where a sample records none."),
    ] = None,
    budget_unit: Annotated[
        str | None,
        typer.Option(
            help="The unit --budget is in (samples, tokens, completion-tokens, usd): refused "
            "unless it is the policy's; confirms a budget that looks given in another unit "
            "(refused without it): in tokens or dollars, below a tenth or above ten times the "
            "one the policy was trained at; in samples, above ten times its most per question."
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output answers.parquet.")] = Path(
        "answers.parquet"
    ),
    samples_out: Annotated[
        Path | None,
        typer.Option(
            help="Folder the samples are kept in (resumable; default <out>-samples.parquet)."
        ),
    ] = None,
    hard_budget: Annotated[
        bool,
        typer.Option(
            help="Never let the answers' samples cost more than budget x questions in total "
            "(each sample reserved at its worst case; every question keeps at least the "
            "cheapest action, one sample for an adaptive policy)."
        ),
    ] = False,
    pace: Annotated[
        bool,
        typer.Option(
            help="Cascades: re-price each round after the first so that the mean dollars per "
            "question meet the budget on these questions; --no-pace: each question at its "
            "calibrated price, the rule evaluate scores (docs/cascades.md compares them)."
        ),
    ] = True,
    compare: Annotated[
        str | None,
        typer.Option(
            help="uniform: also answer by uniform allocation at the realized cost from the same "
            "samples (drawing what it lacks) and compare accuracies (needs gold answers)."
        ),
    ] = None,
    question_field: Annotated[str, typer.Option(help="Field with the question.")] = "question",
    id_field: Annotated[
        str | None, typer.Option(help="Field with the id (default: problem_id or id, else row).")
    ] = None,
    answer_field: Annotated[
        str | None, typer.Option(help="Field with the gold answer, if any (default: answer).")
    ] = None,
    grader: Annotated[
        str | None,
        typer.Option(
            help="numeric, math, exact, or auto (from the gold answers); default: the grader "
            "the policy was trained with (older policies: auto)."
        ),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Only this split of a problems table (e.g. test).")
    ] = None,
    temperature: TemperatureOpt = 0.7,
    max_tokens: MaxTokensOpt = 512,
    prompt: RunPromptOpt = None,
    prompt_variant: RunPromptVariantOpt = None,
    system: SystemOpt = None,
    seed: SeedOpt = 0,
    concurrency: ConcurrencyOpt = 8,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    timeout: TimeoutOpt = 120.0,
    retries: RetriesOpt = 4,
    max_cost: MaxCostOpt = None,
    limit: LimitOpt = None,
    requests_per_batch: RequestsPerBatchOpt = 0,
    api_base: ApiBaseOpt = None,
    client: ClientOpt = "auto",
    price_in: PriceInOpt = None,
    price_out: PriceOutOpt = None,
    logprobs: LogprobsOpt = True,
    flush_every: FlushEveryOpt = 5000,
    max_failures: MaxFailuresOpt = 10,
    threads: ThreadsOpt = None,
    progress: ProgressOpt = True,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """Answer new questions on a model under a budget with a trained policy: resumable."""
    from ttcalloc.common.console import emit_json, log, warn
    from ttcalloc.stages.run import RunOptions, describe, run_policy, up_to_date
    from ttcalloc.stages.run.asking import parse_given
    from ttcalloc.stages.run.models import split_model_flags
    from ttcalloc.stages.run.units import drift_warning
    from ttcalloc.stages.sample import SampleOptions

    label, models = split_model_flags(model)
    sample = SampleOptions(
        model=label,
        temperature=temperature,
        max_tokens=max_tokens,
        prompt=prompt,
        prompt_variants=parse_given(list(prompt_variant or ()), policy),
        system=system,
        seed=seed,
        concurrency=concurrency,
        rpm=rpm,
        tpm=tpm,
        timeout=timeout,
        retries=retries,
        max_cost=max_cost,
        limit=limit,
        requests_per_batch=requests_per_batch,
        api_base=api_base[0] if api_base else None,
        extra_api_bases=tuple(api_base[1:]) if api_base else (),
        client=client,
        price_in=price_in,
        price_out=price_out,
        logprobs=logprobs,
        progress=progress,
        flush_every=flush_every,
        max_failures=max_failures,
        threads=threads,
    )
    options = RunOptions(
        sample=sample,
        budget=budget,
        budget_unit=budget_unit,
        hard_budget=hard_budget,
        pace=pace,
        compare=compare,
        samples_out=samples_out,
        question_field=question_field,
        id_field=id_field,
        answer_field=answer_field,
        grader=grader,
        split=split,
        seed=seed,
        models=models,
        prices=tuple(price or ()),
        prices_file=prices,
        prompt_tokens=tuple(prompt_tokens or ()),
    )
    if not force and up_to_date(policy, questions, out, options):
        log(
            f"{out} is up to date (same policy, questions, samples and options; the run that "
            "wrote it finished): run skipped, nothing drawn; --force reruns it"
        )
        if as_json:
            emit_json({"skipped": True, "out": str(out)})
        return
    result = run_policy(policy, questions, out, options)
    log(describe(result))
    drift = drift_warning(
        result.mean_cost, result.budget, result.cost_unit, result.stopped,
        paced=pace or result.policy != "cascade",  # --no-pace is a cascade's (stop: paced)
    )  # fmt: skip
    if drift is not None:
        warn(drift)
    if as_json:
        emit_json(result.to_dict())
    if result.stopped:  # what arrived is written, but the run did not do what it was asked
        raise typer.Exit(1)
