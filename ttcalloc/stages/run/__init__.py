"""``ttcalloc run``: answer new (possibly unlabeled) questions on a model under a budget.

- :mod:`~ttcalloc.stages.run.stage`: :func:`run_policy`, load -> draw -> write
- :mod:`~ttcalloc.stages.run.options`: :class:`RunOptions`, :class:`RunResult`, freshness
- :mod:`~ttcalloc.stages.run.folder`: the samples folder (whose it is, which question each id is)
- :mod:`~ttcalloc.stages.run.items`: what each question received and decided
- :mod:`~ttcalloc.stages.run.driver`, :mod:`~ttcalloc.stages.run.static_driver`,
  :mod:`~ttcalloc.stages.run.adaptive_driver`: the sources that feed the shared sampler
  (:mod:`ttcalloc.sampler`): a static policy's k per question, an adaptive policy's decisions
  round by round, and the hard budget's ledger (:class:`ttcalloc.core.vote.Ledger`)
- :mod:`~ttcalloc.stages.run.uniform`: ``--compare uniform``'s extra draws
- :mod:`~ttcalloc.stages.run.write`: votes, the uniform comparison, ``answers.parquet``
- :mod:`~ttcalloc.stages.run.summary`: the end-of-run line
- :mod:`~ttcalloc.stages.run.units`: ``--budget`` against the policy's cost unit, and the
  warning when the realized cost drifts from the budget
- :mod:`~ttcalloc.stages.run.models`: a policy over several models (``MODEL:maj@k``): the
  backend (``--model NAME=SPEC``) and price of each model; :mod:`~ttcalloc.stages.run.ledger`:
  the hard budget in dollars, each sample reserved at its own model's worst case
"""

from ttcalloc.stages.run.options import RunOptions, RunResult, up_to_date
from ttcalloc.stages.run.stage import run_policy
from ttcalloc.stages.run.summary import describe

__all__ = ["RunOptions", "RunResult", "describe", "run_policy", "up_to_date"]
