"""What every backend shares: a request, its choices, the errors a backend raises, the protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ttcalloc.common.redact import redact_echo


@dataclass(frozen=True)
class Request:
    """One API call: a prompt and the number of choices wanted."""

    problem_id: str
    first_idx: int  # sample index of the first choice
    n: int
    messages: list[dict[str, str]]
    seed: int
    question: str = ""
    answer: str = ""  # gold answer (used by the simulated backend only)
    model: str | None = None  # which of several models to ask (``run`` on a multi-model policy)
    variant: str | None = None  # the prompt variant its samples are drawn with (None: the one)
    variant_idx: int = 0  # how many samples of the question drew that variant before this one


@dataclass(frozen=True)
class Choice:
    """One sampled response."""

    text: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    mean_logprob: float | None = None  # mean log-prob of the completion's tokens, when returned


@dataclass(frozen=True)
class Recorded(Choice):
    """A sample served again as it was recorded (the replay backend): its answer as recorded
    (not extracted again from ``text``, which an imported sample may lack) and its length."""

    pred_answer: str | None = None
    completion_chars: int | None = None


class RetryableError(Exception):
    """A transient failure: try again after ``retry_after`` seconds (None: use backoff)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(redact_echo(message))
        self.retry_after = retry_after


class FatalError(Exception):
    """A failure no retry can fix (bad key, unknown model): stop the run."""

    def __init__(self, message: str) -> None:
        super().__init__(redact_echo(message))


class RequestError(Exception):
    """This request failed for good in this run (e.g. the prompt is too long)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact_echo(message))


@dataclass(frozen=True)
class SamplingParams:
    """Generation parameters sent with every request."""

    temperature: float = 0.7
    max_tokens: int = 512
    timeout: float = 120.0
    api_base: str | None = None
    extra_api_bases: tuple[str, ...] = ()  # more replicas of the same model (--api-base again)
    client: str = "auto"  # "litellm": never the lean HTTP client (ttcalloc.backends.openai_http)
    price_in: float | None = None  # dollars per million prompt tokens
    price_out: float | None = None  # dollars per million completion tokens
    logprobs: bool = True  # ask for token log-probs (providers that lack them drop the ask)
    seed: int = 0  # the run's --seed (requests carry their own; replay orders samples by it)
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """What the sampler needs from a backend."""

    name: str
    simulated: bool
    max_n: int  # choices per request it supports (1 = no ``n`` parameter)

    async def complete(self, request: Request) -> list[Choice]: ...
