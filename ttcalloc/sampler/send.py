"""One request sent with retries: what the sampler's workers and ``ttcalloc serve`` both do.

A request is sent within the rate limits and retried on 429/5xx/timeouts (the server's
Retry-After, else exponential backoff); it ends with a choice or an error per sample.
"""

from __future__ import annotations

import asyncio
import random

from ttcalloc.backends import Backend, Choice, Request, RequestError, RetryableError
from ttcalloc.common.redact import redact_echo
from ttcalloc.sampler.limits import RateLimiter
from ttcalloc.sampler.options import SampleOptions
from ttcalloc.sampler.result import Stats


async def send(
    backend: Backend,
    request: Request,
    options: SampleOptions,
    limiter: RateLimiter,
    stats: Stats,
) -> tuple[list[Choice | None], list[str | None]]:
    """Send one request, retrying 429/5xx/timeouts: per sample, a choice or an error
    (:class:`~ttcalloc.backends.FatalError` propagates)."""
    est_tokens = (
        sum(len(m["content"]) for m in request.messages) / 4 + options.max_tokens * request.n
    )
    choices: list[Choice | None] = [None] * request.n
    errors: list[str | None] = [None] * request.n
    for attempt in range(options.retries + 1):
        await limiter.acquire(est_tokens)
        try:
            stats.requests += 1
            got = await backend.complete(request)
        except RetryableError as exc:
            if attempt == options.retries:
                errors = [redact_echo(str(exc))[:500]] * request.n
                break
            stats.retries += 1
            await asyncio.sleep(backoff(exc, attempt, options.backoff_base))
            continue
        except RequestError as exc:
            errors = [redact_echo(str(exc))[:500]] * request.n
            break
        choices = list(got[: request.n]) + [None] * max(0, request.n - len(got))
        errors = [
            None if c is not None else f"server returned {len(got)} of {request.n} choices"
            for c in choices
        ]
        break
    return choices, errors


def backoff(exc: RetryableError, attempt: int, base: float) -> float:
    """Seconds to wait before retry ``attempt + 1``: the server's Retry-After, else exponential."""
    delay = exc.retry_after if exc.retry_after is not None else base * 2**attempt
    return min(delay, 120.0) * random.uniform(0.8, 1.2)
