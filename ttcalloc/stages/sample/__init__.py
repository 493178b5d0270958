"""``ttcalloc sample``: collect samples from an LLM, resumable, concurrent, never paying twice.

Samples go to a folder of Parquet parts, each written atomically as requests complete.  A rerun
of the same command reads the folder and requests only what is missing (failed requests
included); ``--n 32`` after ``--n 16`` adds 16 more per problem.  Later stages read the folder as
one table; a retried sample supersedes its recorded failure.

The modules, in the order a run uses them:

- :mod:`~ttcalloc.sampler.options`: :class:`SampleOptions`, shards, per-sample seeds
- :mod:`~ttcalloc.stages.sample.stage`: :func:`sample_problems`, the stage function
- :mod:`~ttcalloc.sampler.parts`: the folder (what it holds, rows, atomic parts)
- :mod:`~ttcalloc.sampler.plan`: missing sample indices and the requests for them
- :mod:`~ttcalloc.sampler.loop`: the async workers, retries, accounting and progress
- :mod:`~ttcalloc.sampler.limits`: rate limits and ``--max-cost``
- :mod:`~ttcalloc.sampler.result`: :class:`SampleResult` and its summary line

``sample --batch`` (:mod:`~ttcalloc.stages.sample.batched`, :func:`sample_in_batches`) goes
through a provider batch API instead: :mod:`~ttcalloc.sampler.batches` (submit, poll,
collect), :mod:`~ttcalloc.sampler.batch_state` (the batch journal),
:mod:`~ttcalloc.sampler.batch_lines` (custom ids, JSONL, output lines).
"""

from ttcalloc.sampler.batches import BatchOptions
from ttcalloc.sampler.limits import CostGuard, RateLimiter
from ttcalloc.sampler.options import (
    CONSISTENT,
    SampleOptions,
    in_shard,
    parse_shard,
    request_seed,
)
from ttcalloc.sampler.parts import PartWriter
from ttcalloc.sampler.result import SampleResult, Stats, describe
from ttcalloc.stages.sample.batched import sample_in_batches
from ttcalloc.stages.sample.stage import sample_problems

__all__ = [
    "CONSISTENT",
    "BatchOptions",
    "CostGuard",
    "PartWriter",
    "RateLimiter",
    "SampleOptions",
    "SampleResult",
    "Stats",
    "describe",
    "in_shard",
    "parse_shard",
    "request_seed",
    "sample_in_batches",
    "sample_problems",
]
