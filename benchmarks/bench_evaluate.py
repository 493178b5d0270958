"""evaluate: vectorized early-stopping replays against a plain loop; bootstrap two ways.

Replays: 2,000 problems x 64 samples, 32 random orders per problem; both rules over their full
tuning grid (what `evaluate` runs per budget).  The plain per-order loop is run on a subset of
problems and extrapolated; its results are compared with the vectorized ones on that subset.

Bootstrap: 10,000 problems x 24 columns (12 policies: accuracy and gain), 2,000 resamples:
multinomial counts times the value matrix (ttcalloc) against indexing resampled problems.
"""

from __future__ import annotations

import functools

import numpy as np
from common import synthetic_votes, timed

from ttcalloc.core import metrics
from ttcalloc.core import replays as sequential

PROBLEMS, SAMPLES, ORDERS = 2_000, 64, 32
LOOP_PROBLEMS = 40
BOOT_PROBLEMS, BOOT_COLUMNS, BOOT_DRAWS = 10_000, 24, 2_000


@functools.cache
def _lead(top1: int, top2: int) -> float:
    return float(sequential.leader_probability(np.array([top1]), np.array([top2]))[0])


def _loop(ids: list[int], rule: str, param: float, cap: int) -> tuple[float, int]:
    """One order, one rule: the obvious loop (mirrors the test's reference)."""
    counts: dict[int, int] = {}
    last = min(cap, len(ids))
    run = 0
    for t in range(1, last + 1):
        x = ids[t - 1]
        if x >= 0:
            counts[x] = counts.get(x, 0) + 1
        run = run + 1 if t > 1 and x >= 0 and x == ids[t - 2] else int(x >= 0)
        ranked = sorted(counts.values(), reverse=True)
        stop = t == last
        if rule == "esc":
            stop |= t % int(param) == 0 and run >= int(param)
        elif ranked:
            top2 = ranked[1] if len(ranked) > 1 else 0
            stop |= _lead(ranked[0], top2) >= param
        if stop:
            if not ranked or counts.get(0, 0) != ranked[0]:
                return 0.0, t
            return 1.0 / ranked.count(ranked[0]), t
    raise AssertionError


def run() -> str:
    labels, _ = synthetic_votes(PROBLEMS, SAMPLES)
    votes = [row.tolist() for row in labels]
    costs = [[1.0] * SAMPLES] * PROBLEMS
    rep, t_replay = timed(lambda: sequential.replay(votes, costs, orders=ORDERS, seed=0))
    grids = {r: sequential.settings(r, SAMPLES) for r in sequential.RULES}

    def all_settings() -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
        return {r: [sequential.run(r, rep, s) for s in g] for r, g in grids.items()}

    vec, t_vec = timed(all_settings)
    n_settings = sum(len(g) for g in grids.values())

    def loop_subset() -> dict[str, list[np.ndarray]]:
        out: dict[str, list[np.ndarray]] = {}
        for r, grid in grids.items():
            out[r] = []
            for s in grid:
                param = s["window"] if r == "esc" else s["threshold"]
                acc = [
                    np.mean(
                        [
                            _loop(rep.ids[i, o].tolist(), r, param, int(s["cap"]))[0]
                            for o in range(ORDERS)
                        ]
                    )
                    for i in range(LOOP_PROBLEMS)
                ]
                out[r].append(np.array(acc))
        return out

    loop, t_loop = timed(loop_subset)
    t_loop_all = t_loop / LOOP_PROBLEMS * PROBLEMS
    diff = max(
        float(np.abs(v[0][:LOOP_PROBLEMS] - lp).max())
        for r in grids
        for v, lp in zip(vec[r], loop[r], strict=True)
    )

    values = np.random.default_rng(0).random((BOOT_PROBLEMS, BOOT_COLUMNS))
    _, t_multi = timed(lambda: metrics.bootstrap_means(values, BOOT_DRAWS, seed=0), repeat=2)

    def by_index() -> np.ndarray:
        rng = np.random.default_rng(0)
        out = np.empty((BOOT_DRAWS, BOOT_COLUMNS))
        for lo in range(0, BOOT_DRAWS, 100):
            idx = rng.integers(0, BOOT_PROBLEMS, (min(100, BOOT_DRAWS - lo), BOOT_PROBLEMS))
            out[lo : lo + idx.shape[0]] = values[idx].mean(axis=1)
        return out

    _, t_index = timed(by_index, repeat=2)

    return "\n".join(
        [
            "## evaluate: early-stopping replays and the bootstrap",
            "",
            f"Replays: {PROBLEMS:,} problems x {SAMPLES} samples (the synthetic votes above), "
            f"{ORDERS} random orders each; ESC and Adaptive-Consistency over their whole tuning "
            f"grid ({n_settings} settings). The plain loop runs on {LOOP_PROBLEMS} problems and "
            "is extrapolated (it memoizes the Beta probabilities, as a careful loop would).",
            "",
            "| step | ttcalloc, vectorized (s) | plain loop (s) | speed-up |",
            "|---|---|---|---|",
            f"| build replays (prefix vote counts) | {t_replay:.2f} | - | - |",
            f"| all {n_settings} settings | {t_vec:.2f} | {t_loop_all:.0f} (extrapolated) | "
            f"{t_loop_all / t_vec:.0f}x |",
            "",
            f"Largest difference between the two on the looped problems: {diff:.1e}.",
            "",
            f"Bootstrap: {BOOT_PROBLEMS:,} problems x {BOOT_COLUMNS} columns, {BOOT_DRAWS:,} "
            "resamples (best of 2).",
            "",
            "| method | time (s) |",
            "|---|---|",
            f"| multinomial counts @ values (ttcalloc) | {t_multi:.2f} |",
            f"| index the resampled problems | {t_index:.2f} |",
            "",
        ]
    )


if __name__ == "__main__":
    print(run())
