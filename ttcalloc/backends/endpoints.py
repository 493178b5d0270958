"""Several base URLs of one OpenAI-compatible model (vLLM or SGLang replicas), balanced by load.

Each request goes to the endpoint with the fewest requests in flight among those not resting
(ties: the one listed first).  An endpoint that fails (connection refused, 5xx, timeout) is
rested: it gets no request for ``rest_s`` seconds, doubled after each further failure (at most
``max_rest_s``), and is tried again once its rest is over; its first answer ends the rest.
When every endpoint rests, the one whose rest ends first is used anyway (the sampler's own
retries and backoff then pace the attempts).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ttcalloc.common.redact import redact


@dataclass
class Endpoint:
    """One base URL and what it did in this run."""

    base: str
    in_flight: int = 0
    answered: int = 0  # requests it answered (any HTTP answer that is not a 5xx)
    failed: int = 0  # requests that failed on it (connection, timeout, 5xx)
    rests: int = 0  # times it was rested
    resting_until: float = 0.0
    streak: int = 0  # consecutive failures

    def label(self) -> str:
        """The base URL with its credentials masked (for logs and summaries)."""
        return redact(self.base)


class Endpoints:
    """The endpoints of one model; :meth:`pick` one per attempt, then :meth:`done` it."""

    def __init__(self, bases: Sequence[str], rest_s: float = 2.0, max_rest_s: float = 60.0) -> None:
        if not bases:
            raise ValueError("no endpoint")
        self.all = [Endpoint(b) for b in bases]
        self.rest_s, self.max_rest_s = rest_s, max_rest_s

    def pick(self, avoid: Endpoint | None = None) -> Endpoint:
        """The endpoint for the next attempt (``avoid``: one that just refused a connection,
        unless it is the only one)."""
        now = time.monotonic()
        awake = [e for e in self.all if e.resting_until <= now and e is not avoid]
        if awake:
            chosen = min(awake, key=lambda e: e.in_flight)
        else:
            others = [e for e in self.all if e is not avoid] or self.all
            chosen = min(others, key=lambda e: e.resting_until)
        chosen.in_flight += 1
        return chosen

    def done(self, endpoint: Endpoint, ok: bool) -> None:
        """The attempt on ``endpoint`` ended: answered (``ok``), or failed (rest it)."""
        endpoint.in_flight -= 1
        if ok:
            endpoint.answered += 1
            endpoint.streak = 0
            endpoint.resting_until = 0.0
            return
        endpoint.failed += 1
        endpoint.streak += 1
        if len(self.all) > 1:  # one endpoint alone: the sampler's backoff paces the retries
            rest = min(self.max_rest_s, self.rest_s * 2 ** (endpoint.streak - 1))
            endpoint.resting_until = time.monotonic() + rest
            endpoint.rests += 1

    def summary(self) -> list[dict[str, Any]]:
        """Per endpoint (credentials masked): requests answered, failed, times rested."""
        return [
            {"api_base": e.label(), "answered": e.answered, "failed": e.failed, "rested": e.rests}
            for e in self.all
        ]

    def describe(self) -> str:
        """One line: how many requests each endpoint answered, and which were rested."""
        parts = []
        for e in self.all:
            text = f"{e.label()} answered {e.answered}"
            if e.rests:
                text += f" (failed {e.failed}, rested {e.rests} times)"
            parts.append(text)
        return "endpoints: " + "; ".join(parts)
