"""The code paths issue 16 replaced, kept to benchmark old and new side by side.

``python legacy.py <ttcalloc arguments>`` runs the ``ttcalloc`` command with the old paths
patched in: math grading and clustering one answer at a time (no batching, no disk cache, wrong
answers clustered for ``--strategy pass`` too),
duplicate keys checked with ``is_duplicated`` on every read and write, curves pivoted to dense
arrays through joins on string ids, and allocation rows built from Python lists.  Everything
else is today's code, so a difference in time is the difference these paths make.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

import numpy as np
import polars as pl

from ttcalloc.artifacts import frames, schemas
from ttcalloc.core.curves import Dense
from ttcalloc.stages import estimate, solve
from ttcalloc.text import batch, grading


def grade_many(items: Any) -> list[bool]:
    """Before: ``is_correct`` on each distinct (answer, gold, grader), one at a time."""
    return [grading.is_correct(p, a, g) for p, a, g in items]


def canonical_many(items: Any) -> list[str | None]:
    """Before: ``normalize`` on each distinct (problem, wrong answer), one at a time."""
    return [grading.normalize(a, g) for a, g in items]


def to_dense(curves: pl.DataFrame) -> Dense:
    """Before: actions from a 4-column unique, rows and columns found by two joins."""
    actions = (
        curves.select("action", "model", "strategy", "k").unique().sort("model", "strategy", "k")
    )
    action_list = actions["action"].to_list()
    pids = curves["problem_id"].unique().sort()
    p_index = pl.DataFrame({"problem_id": pids, "_p": np.arange(pids.len())})
    a_index = pl.DataFrame({"action": action_list, "_a": np.arange(len(action_list))})
    idx = curves.join(p_index, on="problem_id").join(a_index, on="action")
    acc = np.full((pids.len(), len(action_list)), np.nan)
    cost = np.full_like(acc, np.nan)
    rows, cols = idx["_p"].to_numpy(), idx["_a"].to_numpy()
    acc[rows, cols] = idx["accuracy"].to_numpy()
    cost[rows, cols] = idx["cost"].to_numpy()
    return Dense(pids.to_list(), action_list, acc, cost)


def allocation_rows(
    dense: Dense,
    budget: float,
    actions: tuple[np.ndarray, np.ndarray, np.ndarray],
    p_hi: np.ndarray,
    gap: np.ndarray,
    labels: Any,
) -> pl.DataFrame:
    """Before: action names and ids as Python lists."""
    chosen, lo, hi = actions
    n = len(dense.problem_ids)
    rows = np.arange(n)
    names = np.array(dense.actions, dtype=object)
    return pl.DataFrame(
        {
            "budget": np.full(n, float(budget)),
            "problem_id": dense.problem_ids,
            "action": names[chosen].tolist(),
            "accuracy": dense.acc[rows, chosen],
            "cost": dense.cost[rows, chosen],
            "action_lo": names[lo].tolist(),
            "action_hi": names[hi].tolist(),
            "p_hi": p_hi,
            "gap": gap,
        }
    )


@contextmanager
def old_paths() -> Iterator[None]:
    """Every old path patched in, for the duration of the block."""
    with ExitStack() as stack:
        for target, name, value in [
            (batch, "grade_many", grade_many),
            (batch, "canonical_many", canonical_many),
            (estimate, "clustering_problems", lambda options, problems: problems),
            (schemas, "_may_repeat", lambda df, key, distinct=None: True),
            (frames, "to_dense", to_dense),
            (solve, "to_dense", to_dense),
            (solve, "_allocation_rows", allocation_rows),
        ]:
            stack.enter_context(mock.patch.object(target, name, value))
        yield


if __name__ == "__main__":
    from ttcalloc.cli import main

    sys.argv = ["ttcalloc", *sys.argv[1:]]
    with old_paths():
        main()
