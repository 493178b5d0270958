"""The sampling flags ``sample``, ``run`` and ``serve`` share (Typer annotations)."""

from __future__ import annotations

from typing import Annotated

import typer

TemperatureOpt = Annotated[float, typer.Option(help="Sampling temperature.")]

MaxTokensOpt = Annotated[int, typer.Option(help="Maximum completion tokens.")]

PromptOpt = Annotated[
    str | None,
    typer.Option(
        help="auto (per grader), numeric, math, exact, or a template file with {question}."
    ),
]
RunPromptOpt = Annotated[
    str | None,
    typer.Option(
        help="auto (per grader), numeric, math, exact, or a template file with {question}; "
        "default: the prompt the policy's samples were drawn with (older policies: auto)."
    ),
]

PromptVariantOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="NAME=PROMPT, repeatable: draw each question's samples with several prompts in a "
        "seeded rotation (sample i of a question and model takes one of them; the samples "
        "record its name). PROMPT: auto, numeric, math, exact or a template file (text "
        "answers), program (the built-in program-of-thought prompt) or program:FILE: the "
        "model's Python program is run for its answer (in a child process; NOT a sandbox). "
        "A request holds samples of one variant: when variants alternate, one request per "
        "sample. Not with --prompt or --batch."
    ),
]
RunPromptVariantOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="NAME=PROMPT, repeatable (as for `sample`): the prompt of the policy's prompt "
        "variant NAME (default: the one its samples recorded; needed for imported ones). "
        "PROMPT: auto, numeric, math, exact, a template file, program or program:FILE."
    ),
]

SystemOpt = Annotated[str | None, typer.Option(help="System message.")]

SeedOpt = Annotated[
    int,
    typer.Option(
        help="Base seed (each sample gets its own; replay: the order each question's recorded "
        "samples are served in)."
    ),
]

ConcurrencyOpt = Annotated[int, typer.Option(help="Requests in flight.")]

RpmOpt = Annotated[
    float | None, typer.Option(help="Requests per minute: requests spaced 60/RPM s apart.")
]

TpmOpt = Annotated[float | None, typer.Option(help="Tokens per minute limit (estimated).")]

TimeoutOpt = Annotated[float, typer.Option(help="Seconds per request.")]

RetriesOpt = Annotated[int, typer.Option(help="Retries of 429/5xx/timeouts (exponential backoff).")]

MaxCostOpt = Annotated[
    float | None,
    typer.Option(
        help="Never send a request whose worst case could take the spend over this many "
        "dollars (prompt tokens counted, max-tokens completions)."
    ),
]

LimitOpt = Annotated[int | None, typer.Option(help="Only the first N problems.", min=1)]

ShardOpt = Annotated[
    str | None,
    typer.Option(help="i/n: this machine's deterministic share of problems (0 <= i < n)."),
]

RequestsPerBatchOpt = Annotated[
    int,
    typer.Option(
        help="Choices per request via the API's n parameter (prompt paid once); 0: up to 16 "
        "for hosted_vllm/ models with --api-base (vLLM, SGLang), else 1.",
        min=0,
    ),
]

ApiBaseOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="Base URL of an OpenAI-compatible server (vLLM, SGLang, llama.cpp); repeat it for "
        "replicas of one model: each request goes to the one with the fewest in flight, one "
        "that fails is rested and tried again later."
    ),
]

ClientOpt = Annotated[
    str,
    typer.Option(
        help="auto: openai/ and hosted_vllm/ models with --api-base go through the lean pooled "
        "HTTP client (litellm still prices them); litellm: every request through litellm."
    ),
]

PriceInOpt = Annotated[
    float | None, typer.Option(help="Dollars per million prompt tokens (unknown/local models).")
]

PriceOutOpt = Annotated[float | None, typer.Option(help="Dollars per million completion tokens.")]

LogprobsOpt = Annotated[
    bool,
    typer.Option(
        help="Ask for token log-probs and record each sample's mean (mean_logprob); "
        "--no-logprobs for a provider that rejects the parameter."
    ),
]

FlushEveryOpt = Annotated[
    int, typer.Option(help="Samples per Parquet part (parts are also written every 5 s).")
]

ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        help="CPU threads of a local/ model (default: $TTCALLOC_THREADS, else the physical "
        "cores but one, at least 1); other models ignore it.",
        min=1,
    ),
]

ProgressOpt = Annotated[
    bool,
    typer.Option(
        help="Show progress on stderr: a bar on a terminal, else a status line every "
        "$TTCALLOC_PROGRESS_SECONDS (10) seconds."
    ),
]

MaxFailuresOpt = Annotated[
    int,
    typer.Option(
        help="Stop (exit 1) after this many consecutive failed requests (bad request, "
        "permission, or retries exhausted)."
    ),
]

# `sample --batch`: a provider batch API (docs/batch.md)
BatchOpt = Annotated[
    bool,
    typer.Option(
        help="Through the provider's batch API (openai/, azure/): about half the price, results "
        "within 24 h; resumable (a rerun re-attaches to the submitted batches)."
    ),
]
BatchDiscountOpt = Annotated[
    float | None,
    typer.Option(
        help="--batch: batch price / normal price, for the recorded costs and --max-cost "
        "(default: litellm's batch price where it lists one, else 0.5)."
    ),
]
PollSecondsOpt = Annotated[float, typer.Option(help="--batch: seconds between status polls.")]
BatchRequestsOpt = Annotated[
    int, typer.Option(help="--batch: most requests per batch (OpenAI's limit: 50,000).")
]
