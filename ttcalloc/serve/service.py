"""The state ``ttcalloc serve`` answers with: the policy, the backend, the ledger, the windows.

The ledger is opened (checked and locked) before the server listens; :meth:`Service.opened`
opens the backend, paces from the fleet's totals read back from the ledger (so the pacing
continues where the last process left it) and, on the way out, answers what is gathered, waits
for every window in flight and closes the ledger.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

from ttcalloc.backends import Backend
from ttcalloc.common.console import warn
from ttcalloc.sampler.options import sampling_params
from ttcalloc.sampler.result import Stats
from ttcalloc.serve.answering import Answerer
from ttcalloc.serve.ledger import FleetLedger
from ttcalloc.serve.metrics import Metrics
from ttcalloc.serve.options import ServeOptions
from ttcalloc.serve.pacer import FleetPacer
from ttcalloc.serve.served import ServedPolicy
from ttcalloc.serve.windows import Windows
from ttcalloc.stages.run.models import open_for


class Service:
    """One served policy on its model (or models), with its fleet budget."""

    def __init__(self, served: ServedPolicy, options: ServeOptions, ledger: FleetLedger) -> None:
        """``ledger``: opened before the server listens (closed when the service is)."""
        self.served, self.options, self.ledger = served, options, ledger
        self.name = options.name
        self.metrics = Metrics(options.budget, served.unit)
        self._windows: Windows | None = None
        self._answerer: Answerer | None = None
        self.cancelled = 0  # windows still running when the server stopped
        self.stopped_unanswered = 0  # requests answered 503 when the server stopped

    @property
    def windows(self) -> Windows:
        assert self._windows is not None, "the service is not open"
        return self._windows

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[None]:
        so = self.options.sample
        ledger = self.ledger
        try:
            async with self.backend() as backend:
                if backend.simulated:
                    warn(f"{so.model} is the SIMULATED backend: answers are synthetic")
                self._answerer = Answerer(self.served, backend, so, self.options.upstream)
                pacer = FleetPacer(self.options.budget, self.served.floor, ledger.totals())
                self._windows = Windows(
                    self._answerer, pacer, ledger, self.metrics, self.options.window,
                    self.options.window_ms / 1000.0, self.options.max_queue,
                )  # fmt: skip
                try:
                    yield
                finally:
                    self.cancelled = await self._windows.drain(self.options.shutdown_grace)
        finally:
            ledger.close()

    def backend(self) -> contextlib.AbstractAsyncContextManager[Backend]:
        """The backend of ``--model SPEC``, or one per model of the plan behind one (a sample
        with no dollar cost is charged its tokens at its model's price)."""
        so = self.options.sample
        return open_for(so.model, sampling_params(so), self.served.plan, dollars=True)

    def authorized(self, header: str | None) -> bool:
        """Whether the Authorization header carries the API key (always, without one)."""
        key = self.options.api_key
        if key is None:
            return True
        given = (header or "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), key.encode())

    def health(self) -> dict[str, Any]:
        fleet = self.ledger.totals()
        unwritten = self._windows.unwritten if self._windows is not None else 0
        return {
            "status": "ok" if not unwritten else "ledger unwritable",
            "unwritten_windows": unwritten,
            "policy": self.served.kind,
            "model": self.options.sample.model,
            "budget": self.options.budget,
            "cost_unit": self.served.unit,
            "ledger_requests": fleet.requests,
            "mean_cost": fleet.mean_cost,
            "last_price": self.ledger.last_price(),
        }

    def metrics_text(self) -> str:
        stats = self._answerer.stats if self._answerer is not None else Stats()
        in_flight = self._windows.admitted if self._windows is not None else 0
        return self.metrics.text(self.ledger.totals(), self.ledger.totals(None), stats, in_flight)

    def describe(self) -> str:
        o = self.options
        key = "an API key" if o.api_key else "no API key"
        return (
            f"{self.served.kind} policy {self.served.path} on {o.sample.model} at "
            f"{o.budget:g} {self.served.unit} per request, http://{o.host}:{o.port}/v1 "
            f"({key}; ledger in {o.ledger_dir()})"
        )
