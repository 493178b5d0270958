"""What a ``ttcalloc sample`` run did: running counters, the result, and its summary line."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.backends.replay import replay_path

if TYPE_CHECKING:
    from ttcalloc.backends import Choice


@dataclass
class Stats:
    samples: int = 0
    errors: int = 0
    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cost_known: bool = True
    started: float = field(default_factory=time.monotonic)

    def count(self, choices: list[Choice | None], errors: list[str | None]) -> None:
        """Count the samples of one request: received (tokens, dollars) or failed."""
        for c, e in zip(choices, errors, strict=True):
            if e is None and c is not None:
                self.samples += 1
                self.prompt_tokens += c.prompt_tokens or 0
                self.completion_tokens += c.completion_tokens or 0
                if c.cost_usd is None:
                    self.cost_known = False
                else:
                    self.cost += c.cost_usd
            else:
                self.errors += 1


@dataclass(frozen=True)
class SampleResult:
    """What a run did, and what the folder now holds."""

    out: Path
    model: str
    simulated: bool
    requested: int  # samples asked for in this run
    written: int  # samples received in this run
    errors: int  # samples that failed in this run
    requests: int
    retries: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    wall_s: float
    total_samples: int  # samples the folder holds at the end
    stopped: str | None
    replayed: bool = False  # recorded samples served again (``replay:PATH``)
    # several --api-base: per endpoint, requests answered and failed, times rested
    endpoints: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self) | {"out": str(self.out)}
        if self.endpoints is None:
            del out["endpoints"]
        return out

    def plus(self, later: SampleResult) -> SampleResult:
        """This run followed by ``later`` on the same folder: counts added, the folder as
        ``later`` left it, the first stop."""
        costs = (self.cost_usd, later.cost_usd)
        return replace(
            self,
            requested=self.requested + later.requested,
            written=self.written + later.written,
            errors=self.errors + later.errors,
            requests=self.requests + later.requests,
            retries=self.retries + later.retries,
            prompt_tokens=self.prompt_tokens + later.prompt_tokens,
            completion_tokens=self.completion_tokens + later.completion_tokens,
            cost_usd=None if None in costs else sum(c or 0.0 for c in costs),
            wall_s=self.wall_s + later.wall_s,
            total_samples=later.total_samples,
            stopped=self.stopped or later.stopped,
        )

    @classmethod
    def from_stats(
        cls,
        out: Path,
        model: str,
        simulated: bool,
        requested: int,
        stats: Stats,
        wall_s: float,
        total_samples: int,
        stopped: str | None = None,
    ) -> SampleResult:
        """The result of a run from its counters (an empty ``Stats()`` for a run with no work)."""
        return cls(
            out=out,
            model=model,
            simulated=simulated,
            requested=requested,
            written=stats.samples,
            errors=stats.errors,
            requests=stats.requests,
            retries=stats.retries,
            prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens,
            cost_usd=stats.cost if stats.cost_known else None,
            wall_s=wall_s,
            total_samples=total_samples,
            stopped=stopped,
            replayed=replay_path(model) is not None,
        )


def model_label(model: str, simulated: bool, replayed: bool) -> str:
    """The model as summaries name it: SIMULATED or REPLAYED samples say so."""
    if simulated:
        return f"{model} (SIMULATED)"
    return f"{model} (REPLAYED recorded samples)" if replayed else model


def describe(result: SampleResult) -> str:
    """The end-of-run summary line."""
    cost = "unknown" if result.cost_usd is None else f"${result.cost_usd:.4f}"
    label = model_label(result.model, result.simulated, result.replayed)
    if result.requests == 0:
        return f"{label}: nothing to sample; {result.out} holds {result.total_samples} samples"
    rate = result.requests / result.wall_s if result.wall_s > 0 else math.inf
    line = (
        f"{label}: {result.written} samples written ({result.errors} failed), "
        f"{result.requests} requests ({rate:.1f}/s, {result.retries} retries), "
        f"{result.prompt_tokens + result.completion_tokens:,} tokens, cost {cost}, "
        f"{result.wall_s:.1f} s; {result.out} holds {result.total_samples} samples"
    )
    if result.stopped:
        line += f"; stopped: {result.stopped}"
    return line
