"""Issue 26, in distribution: how often does a pass@k stop policy overspend on new problems?

Ten train sets of 200 problems drawn from one heavy-tailed pass@k population (35% never
solved, the rest solved at a rate ~ Beta(1, 1.5); 24 samples each, cap 24), each fit and
calibrated at B = 2, 4, 8 with the price exact (``--margin 0``, the code before issue 26) and
with one standard error to spare (the default for pass); each policy replayed on 3,000 new
problems of the same population.  Prints, per budget and margin, the realized cost / budget
of each draw, how many draws spent more than the budget and more than 5% over it, and the
mean accuracy.

    .venv/bin/python benchmarks/pass_budget_draws.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ttcalloc.common.hashing import seeded_folds
from ttcalloc.core import replays as rp
from ttcalloc.core import stopping
from ttcalloc.learn.stopping import StopOptions, calibrated, critical_prices, fit_gains

SAMPLES = 24
ROOT = Path(__file__).resolve().parents[1]
GRID = stopping.Grid(cap=SAMPLES, checkpoints=(1, 2, 4, 8, 16, 24), strategy="pass")


def problems(n: int, seed: int) -> list[list[int]]:
    """Pass@k problems, 35% never solved (the tests' generator, ``tests/helpers.py``)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import heavy_tail_pass

    return heavy_tail_pass(n, seed, SAMPLES)


def main() -> None:
    pop = problems(3000, 999)
    population = rp.replay(pop, [[1.0] * SAMPLES] * len(pop), orders=6, seed=5)
    budgets = (2.0, 4.0, 8.0)
    spent: dict[tuple[float, float], list[float]] = {}
    accuracy: dict[tuple[float, float], list[float]] = {}
    for draw in range(10):
        votes = problems(200, draw)
        train = rp.replay(votes, [[1.0] * SAMPLES] * 200, orders=12, seed=draw)
        fold = np.array(seeded_folds(list(range(200)), 3, 0), dtype=np.int64)
        opts = StopOptions(folds=3, n_estimators=40, seed=draw)
        gain = fit_gains([(train, None)], GRID, fold, opts, threads=2)[0]
        critical = critical_prices(gain.model, population, None, GRID)
        for b in budgets:
            for z in (0.0, 1.0):
                cal = calibrated(gain, train, GRID, b, z).calibration
                acc, cost = stopping.mixed_outcome(critical, population, GRID, cal)
                spent.setdefault((b, z), []).append(float(cost.mean()) / b)
                accuracy.setdefault((b, z), []).append(float(acc.mean()))
    print("| B | margin | cost / B per draw | over B | over 1.05 B | mean cost / B | accuracy |")
    print("|---|---|---|---:|---:|---:|---:|")
    for (b, z), r in spent.items():
        arr = np.array(r)
        print(
            f"| {b:g} | {z:g} | {' '.join(f'{x:.3f}' for x in arr)} | {(arr > 1).sum()}/10 | "
            f"{(arr > 1.05).sum()}/10 | {arr.mean():.3f} | {np.mean(accuracy[(b, z)]):.4f} |"
        )


if __name__ == "__main__":
    main()
