"""The end-of-run summary line of ``ttcalloc run``."""

from __future__ import annotations

import math

from ttcalloc.common.wording import SMALL_TEST, difference
from ttcalloc.sampler.result import model_label
from ttcalloc.stages.run.options import RunResult
from ttcalloc.stages.run.write import SAME


def describe(result: RunResult) -> str:
    """The end-of-run summary line."""
    acc = (
        ""
        if result.accuracy is None
        else f", accuracy {result.accuracy:.4f} on {result.labeled} labeled"
    )
    if result.stopped and result.accuracy is not None:
        acc = f", accuracy {result.accuracy:.4f} on the {result.scored} answered labeled ones"
    s = result.sampling
    on = (
        f" on {model_label(s.model, s.simulated, s.replayed)}"
        if s and (s.simulated or s.replayed)
        else ""
    )
    line = (
        f"{result.policy} policy{on}: {result.answered}/{result.questions} questions answered"
        f"{acc}; mean cost {result.mean_cost:.4g} {result.cost_unit} per question (budget "
        f"{result.budget:g}{', hard' if result.hard_budget else ''})"
        + (
            ""
            if result.cost_unit == "samples"
            else f", {result.mean_samples:.3g} samples per question"
        )
        + f"; drew {result.drawn} samples"
        f"{f' (and {result.uniform_drawn} for uniform)' if result.uniform_drawn else ''}; "
        f"wrote {result.out}, samples in {result.samples_out}"
    )
    if result.models:
        usd = "$?" if result.mean_usd is None else f"${result.mean_usd:.4g}"
        shares = ", ".join(f"{m} {share:.0%}" for m, share in result.models.items())
        # in dollars, the mean cost above already says it
        usd_mean = result.mean_usd
        if (
            result.cost_unit == "usd"
            and usd_mean is not None
            and math.isclose(usd_mean, result.mean_cost, rel_tol=1e-9)
        ):
            line += f"; questions per model: {shares}"
        else:
            line += f"; {usd} per question; questions per model: {shares}"
    if result.cut_by_budget:
        line += f"; {result.cut_by_budget} cut short by the hard budget"
    # questions never answered are not "cut short": say them apart (a stopped run answers few)
    unanswered = result.questions - result.answered
    short = result.questions - result.complete - result.cut_by_budget - unanswered
    if short > 0:
        line += f"; {short} answered with fewer samples than the policy wanted (rerun to complete)"
    if unanswered > 0 and (result.stopped or short > 0 or result.cut_by_budget):
        line += f"; {unanswered} not answered"
    if result.stopped:
        line += f"; stopped: {result.stopped} (unanswered questions are not scored)"
    c = result.comparison
    if c:
        lo, hi = c["interval"]
        line += (
            f"\ncompare uniform on {c['questions']} labeled questions: policy "
            f"{c['policy_accuracy']:.4f} ({c['policy_samples']:.3g} samples) vs uniform "
            f"{c['uniform_accuracy']:.4f} ({c['uniform_samples']:.3g} samples), difference "
            f"{difference(c['difference'], lo, hi)} (paired bootstrap 95%): "
            + (
                "the policy scores as uniform does on every question"
                if c["verdict"] == SAME
                else f"the policy is {c['verdict']}"
                + (
                    f" (with {c['questions']} questions only large differences show)"
                    if c["questions"] < SMALL_TEST
                    else ""
                )
            )
        )
    return line
