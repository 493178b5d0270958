"""What ``GET /metrics`` reports, in the Prometheus text format.

Requests by outcome, samples, spend, the realized mean cost per request against the budget
(the fleet's, from the ledger, so across restarts), latency quantiles over the last
:data:`WINDOW` requests, and the upstream's requests, retries and failed samples.
"""

from __future__ import annotations

import collections

import numpy as np

from ttcalloc.sampler.result import Stats
from ttcalloc.serve.answering import Reply
from ttcalloc.serve.ledger import Totals

WINDOW = 2048  # latencies the quantiles are taken over
QUANTILES = (0.5, 0.9, 0.99)


class Metrics:
    """Counters of this process, and the ledger's totals read when reported."""

    def __init__(self, budget: float, unit: str) -> None:
        self.budget, self.unit = budget, unit
        self.requests: collections.Counter[str] = collections.Counter()  # by HTTP status
        self.samples = 0
        self.spend = 0.0
        self.incomplete = 0  # answered with fewer samples than the policy wanted
        self.windows = 0
        self.failed_windows = 0
        self.latencies: collections.deque[float] = collections.deque(maxlen=WINDOW)

    def request(self, status: int, seconds: float | None = None) -> None:
        self.requests[str(status)] += 1
        if seconds is not None:
            self.latencies.append(seconds)

    def window(self, replies: list[Reply]) -> None:
        self.windows += 1
        for r in replies:
            self.samples += r.samples
            self.spend += r.cost
            self.incomplete += not r.complete

    def window_failed(self) -> None:
        self.failed_windows += 1

    def text(self, fleet: Totals, overall: Totals, upstream: Stats, in_flight: int) -> str:
        """The metrics page."""
        out: list[str] = []

        def metric(name: str, kind: str, help_: str, values: dict[str, float]) -> None:
            out.append(f"# HELP ttcalloc_{name} {help_}")
            out.append(f"# TYPE ttcalloc_{name} {kind}")
            for labels, v in values.items():
                out.append(f"ttcalloc_{name}{labels} {_num(v)}")

        u = f'unit="{self.unit}"'
        metric("requests_total", "counter", "Chat completion requests by HTTP status.",
               {f'{{code="{c}"}}': n for c, n in sorted(self.requests.items())})  # fmt: skip
        metric("in_flight", "gauge", "Requests waiting or being answered.", {"": in_flight})
        metric("samples_total", "counter", "Samples drawn for answered requests.",
               {"": self.samples})  # fmt: skip
        metric("spend_total", "counter", "Cost of the samples answers used (this process).",
               {f"{{{u}}}": self.spend})  # fmt: skip
        metric("incomplete_total", "counter", "Answers with fewer samples than decided.",
               {"": self.incomplete})  # fmt: skip
        metric("windows_total", "counter", "Windows of requests answered, and failed.",
               {'{outcome="answered"}': self.windows,
                '{outcome="failed"}': self.failed_windows})  # fmt: skip
        metric("ledger_requests", "gauge", "Requests the ledger holds (across restarts).",
               {'{budget="fleet"}': fleet.requests,
                '{budget="all"}': overall.requests})  # fmt: skip
        metric("ledger_spend", "gauge", "Spend the ledger holds (across restarts).",
               {f'{{budget="fleet",{u}}}': fleet.spend,
                f'{{budget="all",{u}}}': overall.spend})  # fmt: skip
        metric("mean_cost_per_request", "gauge",
               "Realized mean cost per request of the fleet's requests (the ledger's).",
               {f"{{{u}}}": fleet.mean_cost if fleet.mean_cost is not None else 0.0})  # fmt: skip
        metric("budget_per_request", "gauge", "The fleet's budget: mean cost per request.",
               {f"{{{u}}}": self.budget})  # fmt: skip
        lat = np.array(self.latencies) if self.latencies else None
        out.append("# HELP ttcalloc_request_latency_seconds Latency of answered requests.")
        out.append("# TYPE ttcalloc_request_latency_seconds summary")
        for q in QUANTILES:
            v = float(np.quantile(lat, q)) if lat is not None else float("nan")
            out.append(f'ttcalloc_request_latency_seconds{{quantile="{q}"}} {_num(v)}')
        out.append(f"ttcalloc_request_latency_seconds_count {len(self.latencies)}")
        out.append(f"ttcalloc_request_latency_seconds_sum {_num(float(sum(self.latencies)))}")
        metric("upstream_requests_total", "counter", "Requests sent to the model (retries too).",
               {"": upstream.requests})  # fmt: skip
        metric("upstream_retries_total", "counter", "Requests to the model retried.",
               {"": upstream.retries})  # fmt: skip
        metric("upstream_errors_total", "counter", "Samples the model failed to give.",
               {"": upstream.errors})  # fmt: skip
        return "\n".join(out) + "\n"


def _num(v: float) -> str:
    if v != v:
        return "NaN"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))
