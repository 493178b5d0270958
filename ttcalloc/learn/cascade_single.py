"""The best single model as a cascade policy: its uniform allocation written as gains
(:class:`~ttcalloc.core.cascade_rule.UniformRule`), priced like any cascade, and how well the
best single model does out of fold (so ``train --learner cascade`` can fall back on it where
the data clearly favour it over the learned gains).

The rule's hull is read from the train replays' labels, like the baseline ``evaluate`` compares
with (``core.cascade_baselines.tune_single``); its prices are calibrated on the replays by the
cascade's own calibration (the paths ``run`` and ``serve`` follow).  Out of fold, each fold is
scored by the model whose uniform allocation is best on the other folds, mixed on its hull at
the budget there (the baseline's own form; the rule draws the same hull points, up to each
question's dollars per sample).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ttcalloc.core import cascade as cc
from ttcalloc.core import cascade_baselines as cb
from ttcalloc.core.cascade_rule import APART, RuleFit, UniformRule, uniform_rule
from ttcalloc.core.replays import Replays, sliced
from ttcalloc.learn.cascade import predict, prepare


def fit_single(
    reps: list[Replays], units: Sequence[float], rule: UniformRule, budget: float
) -> RuleFit:
    """``rule`` priced to meet ``budget`` on ``reps``, and its per-problem outcome there.

    Raises:
        CascadeBudgetError: one sample of the rule's model costs more than ``budget``.
    """
    ladder = rule.ladder(len(reps))
    prep = predict(rule, prepare(reps, None, ladder, units, rule), ladder)
    assert prep.gains is not None
    cal = cc.calibrate(reps, ladder, prep.gains, prep.extra, prep.usable, budget, apart=APART)
    acc, cost, drawn = cc.mixed_outcome(reps, ladder, prep.gains, prep.extra, prep.usable, cal)
    return RuleFit(rule, cal, acc, cost, drawn)


def best_single(reps: list[Replays], units: Sequence[float], budget: float) -> RuleFit | None:
    """The model whose uniform allocation is best on ``reps`` at ``budget`` (None: one sample
    of every model costs more)."""
    m = cb.best_tuned(dict(enumerate(cb.tune_single(reps, budget))))
    if m is None:
        return None
    return fit_single(reps, units, uniform_rule(reps[m], m), budget)


def single_out_of_fold(
    reps: list[Replays], budget: float, fold: NDArray[np.int64]
) -> NDArray[np.float64] | None:
    """Per-problem accuracy of the best single model out of fold (None: in some fold no
    model's one sample fits the budget)."""
    out = np.zeros(len(fold))
    for f in sorted(set(fold.tolist())):
        rest, held = np.nonzero(fold != f)[0], np.nonzero(fold == f)[0]
        tuned = cb.tune_single([sliced(r, rest) for r in reps], budget)
        m = cb.best_tuned(dict(enumerate(tuned)))
        if m is None:
            return None
        t = tuned[m]
        assert t is not None
        rep = sliced(reps[m], held)
        (a, _), (b, _) = (cb.single_model(rep, k) for k in t["ks"])
        out[held] = t["weight"] * a + (1 - t["weight"]) * b
    return out
