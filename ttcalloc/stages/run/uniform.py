"""``run --compare uniform``: draw what uniform at the policy's realized cost still lacks, into
the same folder, filing every sample into the questions' items."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.backends import Backend
from ttcalloc.common.console import log, warn
from ttcalloc.sampler.loop import MissingSamples, Sampler
from ttcalloc.sampler.options import SampleOptions
from ttcalloc.sampler.result import SampleResult
from ttcalloc.stages.run.adaptive_driver import AdaptiveDriver
from ttcalloc.stages.run.driver import Driver
from ttcalloc.stages.run.items import to_got
from ttcalloc.stages.run.write import uniform_plan

if TYPE_CHECKING:
    import polars as pl


async def draw_uniform(
    backend: Backend,
    driver: Driver,
    questions: pl.DataFrame,
    so: SampleOptions,
    template: str | None,
    params: dict[str, Any],
    inputs: dict[str, Path],
    gold: dict[str, dict[str, Any]],
    samples_out: Path,
    cap: int,
    seed: int,
    unit: str,
    per_request: int,
) -> tuple[dict[str, int], SampleResult | None]:
    """Draw what uniform at the policy's realized mean samples still lacks (same folder);
    the plan, and what the drawing did (None: nothing was missing)."""
    items = driver.items
    if isinstance(driver, AdaptiveDriver):
        cap = driver.cap
    cap = max(cap, max(len(it.used) for it in items))
    plan = uniform_plan(items, cap, seed)
    missing = {
        it.pid: [i for i in range(plan[it.pid]) if i not in it.got]
        for it in items
        if any(i not in it.got for i in range(plan[it.pid]))
    }
    if missing:
        log(f"--compare uniform: drawing {sum(map(len, missing.values()))} more samples")
        source = MissingSamples(questions, so, template, missing, per_request)
        sampler = Sampler(
            backend,
            samples_out,
            so,
            params,
            inputs,
            gold,
            _Recorder(source, driver, unit),
            "uniform",
        )
        await sampler.run()
        if sampler.stop:
            warn(f"--compare uniform: stopped ({sampler.stop[0]}); uniform uses what arrived")
        return plan, sampler.result()
    return plan, None


class _Recorder:
    """A source that also files every sample it receives into the driver's items."""

    def __init__(self, source: MissingSamples, driver: Driver, unit: str) -> None:
        self.source, self.driver, self.unit = source, driver, unit
        self.total = source.total

    async def next(self) -> Any:
        return await self.source.next()

    def received(self, request: Any, rows: Sequence[dict[str, Any]]) -> int:
        it = self.driver.by_pid[request.problem_id]
        for row in rows:
            if row.get("error") is None:
                it.got[int(row["sample_idx"])] = to_got(row, it.problem["grader"], self.unit)
        return self.source.received(request, rows)

    def status(self, stats: Any) -> str:
        return self.source.status(stats)

    def settled(self) -> int:
        return self.source.settled()

    def close(self) -> None:
        self.source.close()
