"""Adaptive stopping: states, Solve-step labels, the rule and its budget, against plain loops."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttcalloc.core import replays as rp
from ttcalloc.core import stopping

problems = st.lists(
    st.lists(st.integers(min_value=-1, max_value=3), min_size=1, max_size=7),
    min_size=1,
    max_size=5,
)


def _majority_credit(prefix: list[int]) -> float:
    counts = Counter(v for v in prefix if v >= 0)
    if not counts:
        return 0.0
    best = max(counts.values())
    leaders = [v for v, c in counts.items() if c == best]
    return 1.0 / len(leaders) if 0 in leaders else 0.0


def _replay(votes: list[list[int]], orders: int = 4, seed: int = 0) -> rp.Replays:
    return rp.replay(votes, [[1.0] * len(v) for v in votes], orders=orders, seed=seed)


@settings(max_examples=60, deadline=None)
@given(problems)
def test_state_and_credit_match_a_plain_loop(votes: list[list[int]]) -> None:
    r = _replay(votes)
    states = stopping.state_features(r)
    for i, v in enumerate(votes):
        for o in range(r.ids.shape[1]):
            seq = [int(x) for x in r.ids[i, o, : len(v)]]
            assert sorted(seq) == sorted(v)
            for t in range(len(v)):
                prefix = seq[: t + 1]
                counts = sorted(Counter(x for x in prefix if x >= 0).values(), reverse=True)
                top1 = counts[0] if counts else 0
                top2 = counts[1] if len(counts) > 1 else 0
                j = t + 1
                row = dict(zip(stopping.STATE_FEATURES, states[i, o, t], strict=True))
                assert row["j"] == j
                assert (row["top1"], row["top2"]) == (top1, top2)
                assert row["distinct"] == len(counts)
                assert row["abstain"] == prefix.count(-1)
                assert row["margin_share"] == pytest.approx((top1 - top2) / j)
                assert r.credit[i, o, t] == pytest.approx(_majority_credit(prefix))
                assert r.solved[i, o, t] == float(0 in prefix)


@settings(max_examples=60, deadline=None)
@given(problems, st.sampled_from(["majority", "pass"]), st.integers(min_value=2, max_value=6))
def test_pair_labels_are_realized_gains(votes: list[list[int]], strategy: str, cap: int) -> None:
    r = _replay(votes)
    grid = stopping.Grid(cap=cap, checkpoints=(1, 2, 4, 8), strategy=strategy)
    gain, valid = stopping.pair_labels(r, grid)
    js, hs = grid.within(r.max_samples).pairs()
    for i, v in enumerate(votes):
        for o in range(r.ids.shape[1]):
            seq = [int(x) for x in r.ids[i, o, : len(v)]]

            def value(k: int, seq: list[int] = seq) -> float:
                if strategy == "pass":
                    return float(0 in seq[:k])
                return _majority_credit(seq[:k])

            for q, (j, h) in enumerate(zip(js, hs, strict=True)):
                usable = h <= len(v) and (strategy == "majority" or value(j) == 0.0)
                assert valid[i, o, q] == usable
                if h <= len(v):
                    assert gain[i, o, q] == pytest.approx(value(h) - value(j))


def test_horizons_are_next_sample_and_later_checkpoints() -> None:
    grid = stopping.Grid(cap=8, checkpoints=(1, 2, 4, 8))
    assert grid.horizons(1) == [2, 4, 8]
    assert grid.horizons(2) == [3, 4, 8]
    assert grid.horizons(5) == [6, 8]
    assert grid.horizons(7) == [8]
    assert grid.horizons(8) == []


@settings(max_examples=60, deadline=None)
@given(
    problems,
    st.integers(min_value=1, max_value=6),
    st.floats(min_value=0.0, max_value=1.0),
    st.integers(min_value=0, max_value=10_000),
)
def test_stop_index_matches_a_plain_loop(
    votes: list[list[int]], cap: int, lam: float, seed: int
) -> None:
    r = _replay(votes, seed=seed)
    grid = stopping.Grid(cap=cap, checkpoints=(1, 2, 4))
    critical = np.random.default_rng(seed).random(r.ids.shape)
    at = stopping.stop_index(critical, r, grid, lam)
    for i, v in enumerate(votes):
        last = min(len(v), cap) - 1
        for o in range(r.ids.shape[1]):
            t = 0
            while t < last and critical[i, o, t] > lam:
                t += 1
            assert at[i, o] == t


def test_first_success_stops_at_the_first_correct_sample() -> None:
    r = rp.replay([[2, 0, 1], [1, 1, 1]], [[1.0] * 3, [1.0] * 3], orders=6, seed=1)
    acc, cost = stopping.first_success(r, cap=3)
    assert acc[0] == 1.0 and acc[1] == 0.0
    assert cost[1] == 3.0  # never solved: draws up to the cap
    expected = np.mean([list(r.ids[0, o]).index(0) + 1 for o in range(6)])
    assert cost[0] == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(-1, 3), min_size=6, max_size=6), min_size=2, max_size=6),
    st.floats(min_value=1.0, max_value=6.0),
    st.integers(min_value=0, max_value=1000),
)
def test_calibration_meets_the_budget_exactly(
    votes: list[list[int]], budget: float, seed: int
) -> None:
    r = _replay(votes, orders=6, seed=seed)
    grid = stopping.Grid(cap=6, checkpoints=(1, 2, 4, 6))
    rng = np.random.default_rng(seed)
    critical = np.round(rng.random(r.ids.shape), 1)  # ties: many states share a price
    cal = stopping.calibrate(critical, r, grid, budget)
    _, cost = stopping.mixed_outcome(critical, r, grid, cal)
    if cal.slack:
        assert cost.mean() <= budget + 1e-9
    else:
        assert cost.mean() == pytest.approx(budget, abs=1e-9)
        assert cal.lam_lo <= cal.lam_hi
    lams = np.linspace(0, 1.1, 12)
    costs = [stopping.mean_cost(critical, r, grid, lam) for lam in lams]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(costs))


def test_budget_below_one_sample_is_refused() -> None:
    r = _replay([[0, 1, 0]])
    grid = stopping.Grid(cap=3, checkpoints=(1, 2))
    with pytest.raises(stopping.BudgetError):
        stopping.calibrate(np.ones(r.ids.shape), r, grid, 0.5)


def test_critical_price_is_best_gain_per_extra_cost() -> None:
    r = _replay([[0, 1, 0, 0]], orders=1)
    grid = stopping.Grid(cap=4, checkpoints=(1, 2, 4))
    js, hs = grid.pairs()
    gains = np.zeros((1, 1, len(js)))
    gains[0, 0, (js == 1) & (hs == 2)] = 0.1  # 0.1 per sample
    gains[0, 0, (js == 1) & (hs == 4)] = 0.6  # 0.2 per sample: the better deal
    gains[0, 0, (js == 2) & (hs == 3)] = -0.3
    crit = stopping.critical_prices(gains, stopping.extra_costs(r, grid), grid, 4)
    assert crit[0, 0, 0] == pytest.approx(0.2)
    assert crit[0, 0, 1] == 0.0  # no positive gain: stop at any price
