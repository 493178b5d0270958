"""The sample counts ``k`` of ``estimate``'s default actions: the powers of two each model's
samples allow, and what cut them."""

from __future__ import annotations

from collections import Counter
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
        # the commonest count (the larger of a tie)
        common, freq = max(Counter(n.tolist()).items(), key=lambda cf: (cf[1], cf[0]))
        typical = auto_ks(common, holdout)
        if not ks and len(typical) > len(by_model[model]):
            short = int((n < common).sum())
            most = "most have" if 2 * freq > n.size else "the commonest count is"
            of = f" of {model}" if len(counts) > 1 else ""
            notes.append(
                f"{model + ': ' if of else ''}k stops at {max(by_model[model])} because "
                f"{short} problem(s) have as few as {int(n.min())} samples{of} ({most} "
                f"{common}); --ks {','.join(map(str, typical))} --holdout "
                f"{0.5 if holdout is None else holdout:g} keeps the larger "
                "k and leaves those problems out of it"
            )
    return ModelKs(by_model, notes)
