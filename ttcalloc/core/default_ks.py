"""The sample counts ``k`` of ``estimate``'s default actions: the powers of two each model's
samples allow, and what cut them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def auto_ks(min_samples: int, holdout: float | None) -> tuple[int, ...]:
    """Default actions: powers of two up to what every problem's smaller half holds.

    With ``holdout`` None or above 0 the samples are split in two (cross-fitting), so k goes up
    to the smaller half of the problem with the fewest samples (8 samples: 1, 2, 4, cross-fitted);
    with ``holdout`` 0, up to all of them.  A problem with a single sample gives ``(1,)``.
    """
    if holdout == 0:
        top = min_samples
    elif holdout is None:
        top = min_samples // 2
    else:
        top = int(min_samples * min(holdout, 1.0 - holdout))
    top = max(top, 1)
    ks, k = [], 1
    while k <= top:
        ks.append(k)
        k *= 2
    return tuple(ks)


@dataclass(frozen=True)
class ModelKs:
    """Each model's sample counts, and one line for each model whose range a few problems cut
    or that some problems lack."""

    by_model: dict[str, tuple[int, ...]]
    notes: list[str]


def model_ks(
    counts: Mapping[str, Sequence[int]],
    problems: int,
    ks: tuple[int, ...],
    holdout: float | None,
) -> ModelKs:
    """``ks`` for every model when given; else each model's :func:`auto_ks` of its fewest.

    Args:
        counts: per model, its number of samples of each problem it has any of.
        problems: the problems of the samples (a model may lack some).
        ks: the counts asked for (``--ks``), or () for the defaults.
        holdout: as :func:`auto_ks`.
    """
    by_model: dict[str, tuple[int, ...]] = {}
    notes: list[str] = []
    for model in sorted(counts):
        n = np.asarray(counts[model], dtype=np.int64)
        by_model[model] = ks or auto_ks(int(n.min()), holdout)
        if len(counts) > 1 and n.size < problems:
            notes.append(
                f"{model} has no samples of {problems - n.size} of the {problems} problems: they "
                f"get no {model} actions (evaluate leaves out test problems that lack an action)"
            )
        med = int(np.median(n))
        typical = auto_ks(med, holdout)
        if not ks and typical != by_model[model]:
            short = sum(1 for c in n.tolist() if c < med and auto_ks(c, holdout) != typical)
            of = f" of {model}" if len(counts) > 1 else ""
            notes.append(
                f"k up to {max(by_model[model])} only{of}: {short} problem(s) have fewer samples"
                f"{of} than the {med} most have (fewest: {int(n.min())}); --ks sets the actions "
                "(a problem with too few samples for a k is left out of it)"
            )
    return ModelKs(by_model, notes)
