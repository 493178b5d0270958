"""Which gains a cascade keeps at a budget: the learned ones, or a rule written as gains (the MoT
rule, the best single model's uniform allocation), chosen out of fold.

``--rule`` names what is weighed against the learned gains (:data:`ALTERNATIVES`), by
out-of-fold accuracy and one standard error of the paired per-problem difference (the
one-standard-error rule): the best single model's uniform allocation is kept unless the learned
gains clearly beat it (since 2026-12-05; before, the learned gains were kept unless it clearly beat
them), and the MoT rule replaces the learned gains only where it clearly beats them (:func:`_pick`);
``mot`` and ``single`` take that rule with nothing learned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ttcalloc.core import cascade as cc
from ttcalloc.core import cascade_rule as cr
from ttcalloc.core.replays import Replays
from ttcalloc.learn.cascade import Outcome, Prepared, calibrated_outcome, rule_label
from ttcalloc.learn.cascade_single import best_single, single_out_of_fold

# the rules each ``--rule`` weighs against the learned gains (none: the learned gains alone;
# ``mot`` and ``single``: that rule alone, nothing learned)
ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "guard": ("single",),
    "learned": (),
    "auto": ("mot", "single"),
    "mot": ("mot",),
    "single": ("single",),
}
RULES = tuple(ALTERNATIVES)
# how many samples of the current model a learned cascade draws before it may escalate, each
# with its own gain model, weighed out of fold per budget (:func:`choose_escalation`); the
# first is the default
ESCALATE_AFTER = (3, 1)


def choose_escalation(
    fits: Sequence[tuple[cc.Ladder, Prepared]],
    budget: float,
    at_first: Outcome,
) -> tuple[int, Outcome, dict[str, Any] | None]:
    """Which of ``fits`` (a gain model's ladder and its out-of-fold predictions of the train
    replays, one per escalate-after) to keep at ``budget``, its outcome there (calibrated price,
    per-problem accuracy, dollars, samples) and what was weighed (None for a single fit,
    ``--escalate-after N``).  ``at_first``: the first fit's outcome.

    The gains value an option by the answer it leads to, not by what its samples would tell
    about escalating later, so by themselves they may escalate on a question's first doubtful
    sample where a few more cheap samples would show whether it needs the dearer model (the
    MoT rule's move).  Holding escalation back until ``m`` samples of the current model is
    weighed out of fold: another fit replaces the first only where it is clearly better (one
    standard error, as the cap)."""
    if len(fits) == 1:
        return 0, at_first, None
    outs = [at_first] + [calibrated_outcome(lad, p, budget) for lad, p in fits[1:]]
    best = max(range(len(outs)), key=lambda i: float(outs[i][1].mean()))
    if not cc.clearly_better(at_first[1], outs[best][1]):
        best = 0
    info = {
        "candidates": [lad.escalate_after for lad, _ in fits],
        "oof_accuracy": [float(o[1].mean()) for o in outs],
        "chosen": fits[best][0].escalate_after,
        "rule": f"{fits[0][0].escalate_after} unless another is clearly better out of fold "
        "(one standard error)",
    }
    return best, outs[best], info


def choose_rule(
    reps: list[Replays],
    units: Sequence[float],
    budget: float,
    fold: NDArray[np.int64],
    how: str,
    learned_oof: NDArray[np.float64] | None,
    models: Sequence[str],
    cap: int | None = None,
) -> tuple[str | None, cr.RuleFit | None, dict[str, Any]]:
    """The rule kept at ``budget`` (None: the learned gains, whose per-problem out-of-fold
    accuracy is ``learned_oof``; None there for ``mot`` and ``single``), its fit on ``reps``,
    and what was weighed (``metrics.rule_choice``).  A rule draws at most ``cap`` samples of a
    model (``--cap``), as the learned gains do.

    Raises:
        CascadeBudgetError: ``--rule mot`` or ``single`` and no such rule fits the budget.
    """
    reps = [cr.at_most(r, cap) for r in reps]
    alts: dict[str, tuple[cr.RuleFit, NDArray[np.float64] | None]] = {}
    for kind in ALTERNATIVES[how]:
        if kind == "mot" and (got := cr.tune(reps, units, budget)) is not None:
            alts[kind] = (got, cr.out_of_fold(reps, units, budget, fold))
        elif kind == "single" and (got := best_single(reps, units, budget)) is not None:
            alts[kind] = (got, single_out_of_fold(reps, budget, fold))
    pick: str | None
    if learned_oof is None:  # --rule mot or single: the rule itself
        if how not in alts:
            raise cc.CascadeBudgetError(f"no {how} rule fits it (one sample costs more)")
        pick = how
    else:
        pick = _pick(learned_oof, {k: v[1] for k, v in alts.items() if v[1] is not None})
    info = {
        "considered": list(ALTERNATIVES[how]),
        "rules": {k: v[0].rule.to_json() for k, v in alts.items()},
        "labels": {k: rule_label(v[0].rule, models) for k, v in alts.items()},
        "oof_accuracy": {
            "learned": None if learned_oof is None else float(learned_oof.mean()),
            **{k: None if v[1] is None else float(v[1].mean()) for k, v in alts.items()},
        },
        "chosen": pick or "learned",
        "how": f"--rule {how}" + ("" if learned_oof is None else f": {CHOICE}"),
    }
    return pick, None if pick is None else alts[pick][0], info


CHOICE = (
    "the best single model unless the learned gains are clearly better out of fold; the MoT "
    "rule only if clearly better than the learned gains (and the single model, if kept)"
)


def _pick(learned: NDArray[np.float64], scored: dict[str, NDArray[np.float64]]) -> str | None:
    """Which rule replaces the learned gains (None: none), by per-problem out-of-fold accuracy.

    The best single model is the fallback: the learned gains must beat it by more than one
    standard error to be kept (on sets where a cascade cannot help, a noisy gain model would
    otherwise trail it by a little: the issue asks that it never lose to it).  The MoT rule
    replaces the learned gains only where it beats them by more than one standard error, and
    the best single model too, if that is the fallback."""
    pick = (
        "single"
        if "single" in scored and not cc.clearly_better(scored["single"], learned)
        else None
    )
    mot = scored.get("mot")
    if mot is None or not cc.clearly_better(learned, mot):
        return pick
    return "mot" if pick is None or cc.clearly_better(scored[pick], mot) else pick
