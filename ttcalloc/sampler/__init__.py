"""The sampler both ``ttcalloc sample`` and ``ttcalloc run`` draw samples with.

A folder of Parquet parts, resumable and safe to kill, filled through a backend by concurrent
workers; what they request comes from a :class:`~ttcalloc.sampler.loop.Source` (a fixed list of
missing samples for ``sample``, a policy deciding question by question for ``run``).

- :mod:`~ttcalloc.sampler.options`: :class:`SampleOptions`, shards, per-sample seeds
- :mod:`~ttcalloc.sampler.journal`: the folder's lock and the per-sample journal
- :mod:`~ttcalloc.sampler.parts`: the folder (what it holds, atomic parts)
- :mod:`~ttcalloc.sampler.rows`: a request's graded rows as value arrays, and a part's frame
- :mod:`~ttcalloc.sampler.plan`: missing sample indices and the requests for them
- :mod:`~ttcalloc.sampler.loop`: the async workers, retries, accounting, progress and signals
- :mod:`~ttcalloc.sampler.limits`: rate limits and ``--max-cost``
- :mod:`~ttcalloc.sampler.result`: :class:`SampleResult` and its summary line
"""
