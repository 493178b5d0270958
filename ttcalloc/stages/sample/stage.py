"""``sample_problems``: the stage function of ``ttcalloc sample``.

Load (the problems to sample, what the folder already holds) -> work out what is missing ->
request it and write it (:mod:`ttcalloc.sampler.loop`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from ttcalloc.artifacts.io import check_output, read_artifact
from ttcalloc.artifacts.schemas import PROBLEMS
from ttcalloc.backends import open_backend, replay_path
from ttcalloc.backends.replay import check_asked
from ttcalloc.common.console import log, warn
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.sampler.batch_state import STATE, pending_batches
from ttcalloc.sampler.journal import hold, recover
from ttcalloc.sampler.loop import sample_all, stop_on_signals
from ttcalloc.sampler.options import (
    SampleOptions,
    in_shard,
    part_params,
    prompts_unused_on_replay,
    sampling_params,
    unused_on_replay,
)
from ttcalloc.sampler.parts import done_indices, existing_samples
from ttcalloc.sampler.plan import missing_indices
from ttcalloc.sampler.result import SampleResult, Stats
from ttcalloc.sampler.variants import warn_programs
from ttcalloc.text import prompts

if TYPE_CHECKING:
    import polars as pl


def sample_problems(problems_path: Path, out: Path, options: SampleOptions) -> SampleResult:
    """Sample ``options.n`` responses per problem from ``options.model`` into the folder ``out``.

    Args:
        problems_path: problems artifact (``ttcalloc data``).
        out: folder of Parquet parts (created; reused and completed on reruns).
        options: model, sampling settings, concurrency, limits and retries.

    Returns:
        A :class:`SampleResult` (samples written, errors, tokens, dollars, wall time).

    Raises:
        InputError: bad flags, unknown provider, settings that differ from the folder's samples.
        TtcallocError: authentication or unknown-model errors stop the run (samples already
            received are kept).
    """
    options.check()
    inputs = {"problems": Path(problems_path)}
    if (replayed := replay_path(options.model)) is not None:  # never written into
        inputs["replayed samples"] = replayed
    out = check_output(out, inputs, folder=True)
    template, prompt_label = prompts.load_template(options.prompt)
    problems = _load_problems(problems_path, options)
    check_asked(options.model, problems)  # replay:PATH serves the questions its samples answer
    unused = [*prompts_unused_on_replay(options), *unused_on_replay(options)]
    for line in unused if replayed is not None else []:
        warn(line)
    params = part_params(options, prompt_label, template)
    with hold(out):
        if held := pending_batches(out):  # sampling them again per request would pay twice
            raise InputError(
                f"{out}: {held} batches of an earlier `sample --batch` are in flight "
                f"({out / STATE}); rerun with --batch to collect them first"
            )
        if recovered := recover(out):
            log(f"{out}: {recovered} samples of an interrupted run recovered from its journal")
        existing = existing_samples(out, options.model, params)
        missing = missing_indices(problems, options.n, done_indices(existing))

        if not missing:  # nothing to do: do not start the backend
            log(f"every problem already has {options.n} samples from {options.model}")
            total = existing.height if existing is not None else 0
            simulated = options.model.startswith("sim/")
            return SampleResult.from_stats(out, options.model, simulated, 0, Stats(), 0.0, total)

        warn_programs(options.prompt_variants)

        async def run() -> SampleResult:
            stop_on_signals()
            async with open_backend(options.model, sampling_params(options)) as backend:
                return await sample_all(
                    backend, problems, out, options, template, params, missing, Path(problems_path)
                )

        try:
            return asyncio.run(run())
        except asyncio.CancelledError:  # SIGINT or SIGTERM: parts are written, journal empty
            raise KeyboardInterrupt from None


def _load_problems(path: Path, options: SampleOptions) -> pl.DataFrame:
    """The problems this run samples: this machine's ``--shard``, then the first ``--limit``."""
    import polars as pl

    problems = read_artifact(path, PROBLEMS).df
    if options.shard is not None:
        shard = options.shard
        keep = [in_shard(p, shard) for p in problems["problem_id"].to_list()]
        problems = problems.filter(pl.Series(keep, dtype=pl.Boolean))
    if options.limit is not None:
        problems = problems.head(options.limit)
    if problems.height == 0:
        raise DataError(f"{path}: no problems to sample (after --limit/--shard)")
    return problems
