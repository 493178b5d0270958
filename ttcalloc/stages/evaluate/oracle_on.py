"""The oracle on one set of curves (their hulls computed once for every target), and the
uniform and oracle frontiers the plot draws."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from ttcalloc.core import oracle
from ttcalloc.core.curves import Dense
from ttcalloc.core.mixes import mix_probs, uniform_at_budget


@dataclass(frozen=True)
class OracleOn:
    """The oracle on one set of curves, their hulls computed once for every target."""

    curves: Dense
    hulls: oracle.Hulls

    @classmethod
    def of(cls, curves: Dense) -> OracleOn:
        return cls(curves, oracle.upper_hulls(curves.acc, curves.cost))

    def solve(self, target: float) -> oracle.Solution:
        return oracle.solve_exact(self.curves.acc, self.curves.cost, target, hulls=self.hulls)

    def probs(self, target: float) -> tuple[np.ndarray, oracle.Solution]:
        """Each problem's probability of each action in the (mixed) solution at ``target``."""
        sol = self.solve(target)
        return mix_probs(self.curves.acc.shape, sol.action_lo, sol.action_hi, sol.p_hi), sol


def plot_frontiers(on_test: OracleOn, points: int = 60) -> dict[str, list[list[float]]]:
    """Uniform's and the oracle's accuracy as functions of mean cost, for the plot."""
    test = on_test.curves
    mean_cost = test.cost.mean(axis=0)
    lo, hi = float(mean_cost.min()), float(mean_cost.max())
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])
    if lo > 0 and hi > 20 * lo:  # prices far apart (several models): the cheap end in detail
        grid = np.unique(np.concatenate([grid, np.geomspace(lo, hi, points)]))
    uni, orc = [], []
    for c in grid:
        u = uniform_at_budget(test.acc, test.cost, float(c))
        if u is not None:
            uni.append([float(c), u.accuracy])
        with contextlib.suppress(oracle.InfeasibleBudget):
            orc.append([float(c), on_test.solve(float(c)).objective])
    return {"uniform": uni, "oracle": orc}
