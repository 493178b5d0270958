"""What ``ttcalloc serve`` takes: the model(s), the fleet budget, the serving limits."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from pathlib import Path

from ttcalloc.common.errors import InputError
from ttcalloc.common.settings import home_dir
from ttcalloc.sampler.options import SampleOptions
from ttcalloc.stages.run.models import PriceFlags


@dataclass(frozen=True)
class ServeOptions:
    """Everything ``ttcalloc serve`` takes besides the policy folder."""

    sample: SampleOptions  # the model, its backend's settings, retries and rate limits
    budget: float  # the fleet's mean cost per request, in the policy's cost unit
    budget_unit: str | None = None  # when given, must be the policy's cost unit
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None  # clients must send it as a bearer token (never logged)
    state_dir: Path | None = None  # the ledger's folder (default: $TTCALLOC_HOME/serve)
    name: str = "ttcalloc"  # the model name /v1/models lists and replies carry
    window: int = 32  # most requests decided together
    window_ms: float = 20.0  # longest a request waits for the others of its window
    max_queue: int = 1024  # requests waiting or in flight before 503
    upstream: int = 64  # requests in flight to the model
    request_timeout: float = 300.0  # longest a request is answered in (then 504)
    max_samples: int | None = None  # the most samples one request may draw
    max_request_budget: float | None = None  # the most a budget header may ask (default 4 B)
    max_body: int = 1 << 20  # bytes of a request body
    # on SIGTERM: seconds the requests in flight get (then 503), and as long again for their
    # windows to finish and be written to the ledger
    shutdown_grace: float = 30.0
    # several models: (NAME, SPEC) per model of the policy (``--model NAME=SPEC``); then
    # ``sample.model`` is a label naming them all; their prices (``--price``, ``--prices``)
    models: tuple[tuple[str, str], ...] = ()
    prices: PriceFlags = field(default_factory=PriceFlags)
    # prompt variants of kind program: run the model's programs (``--run-programs``; without
    # it such a policy is refused before the server starts)
    run_programs: bool = False

    def check(self) -> None:
        self.sample.check()
        if self.models:
            self.sample.check_several_models()
        if not (math.isfinite(self.budget) and self.budget > 0):
            raise InputError(f"--budget {self.budget}: must be a positive number")
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port {self.port}: expected 0 to 65535")
        positive = {"--window": self.window, "--max-queue": self.max_queue,
                    "--upstream": self.upstream, "--max-body": self.max_body}  # fmt: skip
        for flag, value in positive.items():
            if value < 1:
                raise InputError(f"{flag} {value}: must be at least 1")
        for flag, v in {"--window-ms": self.window_ms,
                        "--request-timeout": self.request_timeout,
                        "--shutdown-grace": self.shutdown_grace}.items():  # fmt: skip
            if not (math.isfinite(v) and v >= 0):
                raise InputError(f"{flag} {v}: must be a number >= 0")
        cap = self.max_request_budget
        if cap is not None and not (math.isfinite(cap) and cap >= self.budget):
            raise InputError(f"--max-request-budget {cap}: must be at least --budget")
        if self.api_key is not None and len(self.api_key) < 8:
            raise InputError("--api-key: too short (at least 8 characters)")

    def ledger_dir(self) -> Path:
        return self.state_dir if self.state_dir is not None else home_dir() / "serve"

    def request_cap(self) -> float:
        return self.max_request_budget if self.max_request_budget is not None else 4 * self.budget

    def public(self) -> bool:
        """Whether the host is reachable from other machines (a warning without --api-key)."""
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host != "localhost"
