"""``ttcalloc evaluate``: learned policies against the oracle and every baseline, at matched cost.

Everything is scored offline on the test split, with the curves of held-out samples (the eval
half) when the curves are cross-fitted, so no policy is scored on the samples that trained or
labelled it.  For every policy and budget the report gives accuracy and mean cost, the gain over
uniform allocation *at the policy's own realized cost* with a paired bootstrap interval over
problems, the regret against the oracle at that cost and the share of the oracle's gain it
captures; for learned policies also imitation accuracy, a confusion matrix of actions and the
paper's bound ``regret <= imitation error x worst-case gap``.

The stage (``stage``: :func:`evaluate_policies`) is load -> score -> write:

- ``options``: :class:`EvaluateOptions` and :class:`PolicySpec`;
- ``load``: policies, dense test and train curves, questions and sample replays (:class:`Loaded`);
- ``score``: every policy, baseline and oracle at each budget, on the loaded data in memory;
- ``verdicts``: plain sentences on what the intervals say;
- ``records``: report.json's content and the metrics.parquet rows, and writing them;
- ``render``: report.md and accuracy_vs_budget.png.
"""

from ttcalloc.stages.evaluate.load import Loaded, load_inputs, load_policies
from ttcalloc.stages.evaluate.options import EvaluateOptions, PolicySpec
from ttcalloc.stages.evaluate.records import build_report, metrics_row, write_report
from ttcalloc.stages.evaluate.score import ORACLE, ORACLE_FIT, Scored, score_policies
from ttcalloc.stages.evaluate.stage import EvaluateResult, evaluate_policies
from ttcalloc.stages.evaluate.verdicts import verdicts

__all__ = [
    "ORACLE",
    "ORACLE_FIT",
    "EvaluateOptions",
    "EvaluateResult",
    "Loaded",
    "PolicySpec",
    "Scored",
    "build_report",
    "evaluate_policies",
    "load_inputs",
    "load_policies",
    "metrics_row",
    "score_policies",
    "verdicts",
    "write_report",
]
