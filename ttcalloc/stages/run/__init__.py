"""``ttcalloc run``: answer new (possibly unlabeled) questions on a model under a budget.

- :mod:`~ttcalloc.stages.run.stage`: :func:`run_policy`, load -> draw -> write
- :mod:`~ttcalloc.stages.run.drive`: the sources that feed the shared sampler
  (:mod:`ttcalloc.sampler`): a static policy's k per question, an adaptive policy's decisions
  after every sample, and the hard budget's ledger (:class:`ttcalloc.core.vote.Ledger`)
- :mod:`~ttcalloc.stages.run.write`: votes, the uniform comparison, ``answers.parquet``
"""

from ttcalloc.stages.run.stage import RunOptions, RunResult, describe, run_policy, up_to_date

__all__ = ["RunOptions", "RunResult", "describe", "run_policy", "up_to_date"]
