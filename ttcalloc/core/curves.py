"""Success and cost curves as dense arrays: the shape every solver, baseline and learner reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dense:
    """Curves as dense (problems x actions) arrays, NaN where an action is unavailable."""

    problem_ids: list[str]
    actions: list[str]
    acc: np.ndarray
    cost: np.ndarray
