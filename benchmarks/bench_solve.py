"""solve: the exact oracle (sorted hull slopes) against bisection and scipy's HiGHS LP.

N problems x 8 actions (k in {1,2,3,4,6,8,12,16}, per-problem cost scale, concave noisy
accuracy curves).  HiGHS solves the LP relaxation, whose optimum equals the exact method's
objective; it is run on smaller N where it takes too long, and the table says so.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from common import machine, timed
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

from ttcalloc.artifacts import io
from ttcalloc.artifacts.schemas import CURVES
from ttcalloc.core import oracle
from ttcalloc.stages.solve import SolveOptions, solve_allocation

KS = np.array([1, 2, 3, 4, 6, 8, 12, 16], dtype=float)
BUDGET = 4.0


def instance(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1.0, 1.0, n)
    acc = np.clip(
        p[:, None] ** (1 / np.sqrt(KS))[None, :] + rng.normal(0, 0.02, (n, KS.size)), 0, 1
    )
    cost = np.tile(KS, (n, 1)) * rng.uniform(0.8, 1.2, (n, 1))
    return acc, cost


def highs(acc: np.ndarray, cost: np.ndarray, budget: float) -> float:
    n, a = acc.shape
    rows = np.repeat(np.arange(n), a)
    eq = csr_matrix((np.ones(n * a), (rows, np.arange(n * a))), shape=(n, n * a))
    res = linprog(
        -acc.ravel(),
        A_ub=cost.ravel()[None, :] / n,
        b_ub=[budget],
        A_eq=eq,
        b_eq=np.ones(n),
        bounds=(0, 1),
        method="highs",
    )
    assert res.status == 0, res.message
    return float(-res.fun / n)


def run() -> str:
    lines = [
        "## solve: exact oracle vs bisection vs HiGHS LP",
        "",
        f"N problems x {KS.size} actions, budget B = {BUDGET} (mean cost). Times exclude Parquet IO "
        "(reported below); exact = hulls + slope selection.",
        "",
        "| N | exact (s) | of which hulls (s) | bisect (s) | HiGHS LP (s) | bisect / exact | HiGHS / exact | |objective difference| |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in (1_000, 10_000, 100_000, 1_000_000):
        acc, cost = instance(n)
        hulls, t_hull = timed(lambda acc=acc, cost=cost: oracle.upper_hulls(acc, cost), repeat=2)
        exact, t_solve = timed(
            lambda acc=acc, cost=cost, hulls=hulls: oracle.solve_exact(
                acc, cost, BUDGET, hulls=hulls
            ),
            repeat=2,
        )
        t_exact = t_hull + t_solve
        bis, t_bis = timed(lambda acc=acc, cost=cost: oracle.solve_bisect(acc, cost, BUDGET))
        diff = abs(bis.objective - exact.objective)
        if n <= 10_000:  # HiGHS grows superlinearly: 92 s at 30,000 problems here
            lp, t_lp = timed(lambda acc=acc, cost=cost: highs(acc, cost, BUDGET))
            diff = max(diff, abs(lp - exact.objective))
            lp_cells = f"{t_lp:.2f} | {t_lp / t_exact:.0f}x"
        else:
            lp_cells = "not run (minutes) | -"
        lines.append(
            f"| {n:,} | {t_exact:.3f} | {t_hull:.3f} | {t_bis:.2f} | {lp_cells.split(' | ')[0]} | "
            f"{t_bis / t_exact:.0f}x | {lp_cells.split(' | ')[1]} | {diff:.1e} |"
        )
    # IO of the whole stage at 10^6 problems
    n = 1_000_000
    acc, cost = instance(n)
    with tempfile.TemporaryDirectory() as tmp:
        curves = pl.DataFrame(
            {
                "problem_id": np.repeat(np.arange(n), KS.size).astype(str),
                "action": np.tile([f"maj@{int(k)}" for k in KS], n),
                "model": "sim",
                "strategy": "majority",
                "k": np.tile(KS.astype(np.int64), n),
                "accuracy": acc.ravel(),
                "cost": cost.ravel(),
                "half": "all",
                "n_samples": 64,
            }
        )
        path = Path(tmp) / "curves.parquet"
        _, t_write = timed(lambda: io.write_artifact(curves, path, CURVES, stage="bench"))
        _, t_read = timed(lambda: io.read_artifact(path, CURVES))
        _, t_stage = timed(
            lambda: solve_allocation(
                path, Path(tmp) / "alloc.parquet", SolveOptions(budgets=(BUDGET,))
            )
        )
    lines += [
        "",
        f"Whole `ttcalloc solve` stage at N = 10^6 (8M curve rows): {t_stage:.2f} s, of which reading "
        f"and validating curves.parquet {t_read:.2f} s; writing such a file takes {t_write:.2f} s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stderr.write(machine() + "\n")
    print(run())
