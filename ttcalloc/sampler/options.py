"""What ``ttcalloc sample`` takes: its options, and what follows from them alone.

Shards, per-sample seeds, the settings passed to the backend, the settings recorded in every
part, and the worst-case dollar cost of one sample used by ``--max-cost``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ttcalloc.backends import SamplingParams, backend_prefix, known_price
from ttcalloc.common.errors import InputError
from ttcalloc.common.hashing import seeded_int
from ttcalloc.common.redact import keep_url_secrets
from ttcalloc.text.variants import PromptVariant, check_names

# generation settings that must match between runs writing into one folder
CONSISTENT = ("temperature", "max_tokens", "prompt", "system", "prompt_variants")
CLIENTS = ("auto", "litellm")
VARIANTS_LABEL = "variants"  # the prompt label of samples drawn with --prompt-variant


@dataclass(frozen=True)
class SampleOptions:
    """Everything ``ttcalloc sample`` takes besides its input and output paths."""

    model: str
    n: int = 16
    temperature: float = 0.7
    max_tokens: int = 512
    prompt: str | None = None
    system: str | None = None
    seed: int = 0
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    timeout: float = 120.0
    retries: int = 4
    backoff_base: float = 1.0
    max_cost: float | None = None
    limit: int | None = None
    shard: tuple[int, int] | None = None
    requests_per_batch: int = 0  # choices per request; 0: the backend's own (per_request)
    api_base: str | None = None
    extra_api_bases: tuple[str, ...] = ()  # more replicas of the model (--api-base repeated)
    client: str = "auto"  # auto: the lean HTTP client where it applies; litellm: never it
    price_in: float | None = None
    price_out: float | None = None
    logprobs: bool = True
    flush_every: int = 5000
    flush_seconds: float = 5.0
    progress: bool = True
    max_failures: int = 10  # consecutive failed requests before the run stops
    threads: int | None = None  # CPU threads of a local/ model (None: the backend's default)
    # --prompt-variant: named prompts taken in a seeded rotation (empty: the one prompt)
    prompt_variants: tuple[PromptVariant, ...] = ()

    def check_several_models(self) -> None:
        """With several models each needs its own price: one line for ``--price-in``/``-out``."""
        for flag, v in {"--price-in": self.price_in, "--price-out": self.price_out}.items():
            if v is not None:
                raise InputError(
                    f"{flag} {v:g}: with several models give each its price, --price NAME=IN,OUT"
                )

    def check(self) -> None:
        if self.prompt_variants:
            if self.prompt is not None:
                raise InputError(
                    f"--prompt {self.prompt}: not with --prompt-variant (each variant names its "
                    "own prompt)"
                )
            check_names(self.prompt_variants, "--prompt-variant")
        positive = {
            "--n": self.n,
            "--concurrency": self.concurrency,
            "--max-tokens": self.max_tokens,
            "--flush-every": self.flush_every,
            "--max-failures": self.max_failures,
        }
        for flag, value in positive.items():
            if value < 1:
                raise InputError(f"{flag} {value}: must be at least 1")
        if self.requests_per_batch < 0:
            raise InputError(f"--requests-per-batch {self.requests_per_batch}: must be >= 0")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads {self.threads}: must be at least 1")
        if self.retries < 0:
            raise InputError(f"--retries {self.retries}: must be >= 0")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise InputError(f"--timeout {self.timeout}: must be positive")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise InputError(f"--temperature {self.temperature}: must be a number >= 0")
        for flag, v in {"--rpm": self.rpm, "--tpm": self.tpm, "--max-cost": self.max_cost}.items():
            if v is not None and not (math.isfinite(v) and v > 0):
                raise InputError(f"{flag} {v}: must be a positive number")
        for flag, v in {"--price-in": self.price_in, "--price-out": self.price_out}.items():
            if v is not None and not (math.isfinite(v) and v >= 0):
                raise InputError(f"{flag} {v}: must be a number >= 0")
        if self.max_cost is not None and not priced(self):
            raise InputError(
                f"--max-cost: no price is known for {self.model} (not in litellm's price map, "
                "and no cost is reported without one), so the cap could not be counted; give "
                "--price-in and --price-out (dollars per million prompt and completion tokens)"
            )
        if self.client not in CLIENTS:
            raise InputError(f"--client {self.client!r}: expected one of {', '.join(CLIENTS)}")
        if self.extra_api_bases and (
            self.client == "litellm" or not self.model.startswith(("openai/", "hosted_vllm/"))
        ):
            raise InputError(
                f"--api-base given {1 + len(self.extra_api_bases)} times: several endpoints "
                "need an openai/ or hosted_vllm/ model on the lean client (not --client litellm)"
            )
        if self.shard is not None:
            i, k = self.shard
            if not (k >= 1 and 0 <= i < k):
                raise InputError(f"--shard {i}/{k}: expected i/n with 0 <= i < n")


def priced(options: SampleOptions) -> bool:
    """Whether a price is known to count ``--max-cost`` with: ``--price-in/--price-out``, or
    litellm's price map for a litellm model (other backends report no cost of their own)."""
    if options.price_in is not None or options.price_out is not None:
        return True
    return backend_prefix(options.model) == "litellm" and known_price(options.model)


def per_request(options: SampleOptions, max_n: int, shares_prompt: bool) -> int:
    """Choices per request: ``--requests-per-batch``, or when it is 0 (the default) as many as
    the backend takes (``max_n``) where its engine shares the prompt among them (the lean
    client: vLLM and SGLang pay the prompt once), else one; never more than ``max_n``."""
    wanted = options.requests_per_batch or (max_n if shares_prompt else 1)
    return max(1, min(wanted, max_n))


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, k = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    return i, k


def in_shard(problem_id: str, shard: tuple[int, int]) -> bool:
    return seeded_int("shard", problem_id) % shard[1] == shard[0]


def request_seed(seed: int, problem_id: str, model: str) -> int:
    """Base seed of a problem; sample ``i`` uses ``base + i`` so seeds never collide.

    Servers such as llama.cpp give choice ``j`` of a request the seed ``seed + j``: a request for
    samples ``i..i+m-1`` is sent with ``base + i``, so every sample keeps its own seed.
    """
    return seeded_int("seed", seed, problem_id, model, nbytes=4) % (2**31 - 2**20)


def part_params(
    options: SampleOptions, prompt_label: str, template: str | None = None
) -> dict[str, Any]:
    """The settings recorded in every part's provenance (``CONSISTENT`` ones are checked).

    A file prompt's text is kept too (``prompt_template``), so a policy trained on these
    samples can ask new questions alike without the file; with prompt variants the prompt is
    ``variants`` and ``prompt_variants`` lists them by name (:meth:`PromptVariant.as_json`).
    """
    params = {
        "model": options.model,
        "n": options.n,
        "temperature": options.temperature,
        "max_tokens": options.max_tokens,
        "prompt": prompt_label,
        "system": options.system,
        "seed": options.seed,
        "requests_per_batch": options.requests_per_batch,
        "api_base": options.api_base,
        "price_in": options.price_in,
        "price_out": options.price_out,
        "logprobs": options.logprobs,
    }
    if options.extra_api_bases:  # several replicas: all of them (credentials masked on write)
        params["api_bases"] = [options.api_base, *options.extra_api_bases]
    if template is not None and prompt_label.startswith("file:"):
        params["prompt_template"] = template
    if options.prompt_variants:  # by name (the rotation does not depend on the order given);
        params["prompt"] = VARIANTS_LABEL  # checked on a rerun as the prompt is
        ordered = sorted(options.prompt_variants, key=lambda v: v.name)
        params["prompt_variants"] = [v.as_json() for v in ordered]
    return params


REPLAYED = "replay serves the recorded samples, drawn with their own settings:"
NOT_SENT = "replay serves the recorded samples, drawn with their own prompts:"


def unused_on_replay(options: SampleOptions) -> list[str]:
    """One warning line per sampling flag given another value than its default that a replay
    does not act on (``--temperature``, ``--max-tokens``, ``--system``): the recorded samples
    are served as they were drawn."""
    lines = []
    if options.temperature != SampleOptions.temperature:
        lines.append(
            f"--temperature {options.temperature:g}: {REPLAYED} the temperature given is not used"
        )
    if options.max_tokens != SampleOptions.max_tokens:
        lines.append(
            f"--max-tokens {options.max_tokens}: {REPLAYED} the recorded completions are not "
            "cut to it"
        )
    if options.system is not None:
        lines.append(f"--system: {REPLAYED} the system prompt given is not used")
    return lines


def prompts_unused_on_replay(options: SampleOptions) -> list[str]:
    """``sample`` on a replay: one warning line for ``--prompt`` or ``--prompt-variant`` given,
    whose prompts are not sent (a variant's name still picks its recorded samples); ``run``
    says the same as it settles its prompt (:mod:`ttcalloc.stages.run.asking`)."""
    if options.prompt is not None:
        return [f"--prompt {options.prompt}: {NOT_SENT} the prompt given is not used"]
    if options.prompt_variants:
        names = ", ".join(v.name for v in options.prompt_variants)
        return [f"--prompt-variant {names}: {NOT_SENT} the prompts given are not used"]
    return []


def sampling_params(options: SampleOptions) -> SamplingParams:
    """What the backend is opened with (the credentials of ``--api-base`` are remembered, to
    be masked wherever a server echoes them)."""
    for base in (options.api_base, *options.extra_api_bases):
        keep_url_secrets(base)
    extra: dict[str, Any] = {}
    if options.model.startswith("local/"):
        # the server decodes up to n_parallel requests in one batch, on one pool of threads
        extra = {"n_parallel": min(options.concurrency, 4), "n_threads": options.threads}
    return SamplingParams(
        temperature=options.temperature,
        max_tokens=options.max_tokens,
        timeout=options.timeout,
        api_base=options.api_base,
        extra_api_bases=options.extra_api_bases,
        client=options.client,
        price_in=options.price_in,
        price_out=options.price_out,
        logprobs=options.logprobs,
        seed=options.seed,
        extra=extra,
    )


def worst_cost(
    options: SampleOptions, prompt_tokens: int, n: int, prices: tuple[float, float] | None
) -> float | None:
    """Upper bound on the dollars of a request for ``n`` samples of a prompt of
    ``prompt_tokens`` tokens: the prompt paid ``n`` times, ``max_tokens`` per completion.

    ``prices`` (dollars per million prompt and completion tokens) apply unless ``--price-in``
    or ``--price-out`` is given; None when no price is known.
    """
    if options.price_in is not None or options.price_out is not None:
        prices = (options.price_in or 0.0, options.price_out or 0.0)
    if prices is None:
        return None
    return n * (prompt_tokens * prices[0] + options.max_tokens * prices[1]) / 1e6
