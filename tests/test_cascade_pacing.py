"""Pacing a cascade round by round: what each question aims to spend at each price, and the
round's price, against brute force on small cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cascade import _replays, _walk

from ttcalloc.core import cascade as cc
from ttcalloc.core.cascade_pacing import (
    MIN_PROBLEMS,
    aims,
    pace_ratio,
    price_grid,
    round_prices,
    slack_grid,
)

OPTIONS = st.lists(
    st.tuples(st.floats(-1.0, 1.0), st.sampled_from([0.0, 0.001, 0.002, 0.004, 0.02, 0.04])),
    min_size=0,
    max_size=6,
)


def _brute_aim(gains: list[float], dollars: list[float], price: float) -> float:
    """The option a question takes at ``price``, one price at a time (the rule as written)."""
    if not gains:
        return 0.0
    value = [g - (price * d if d > 0 else 0.0) for g, d in zip(gains, dollars, strict=True)]
    best = int(np.argmax(value))
    return dollars[best] if value[best] > 0 else 0.0


@settings(max_examples=300, deadline=None)
@given(OPTIONS)
def test_aims_match_the_rule_and_fall_as_the_price_rises(
    options: list[tuple[float, float]],
) -> None:
    gains = [g for g, _ in options]
    dollars = [d for _, d in options]
    grid = price_grid(10.0)
    got = aims(np.array(gains), np.array(dollars), grid)
    want = [_brute_aim(gains, dollars, float(p)) for p in grid]
    assert got == pytest.approx(want)
    # a higher price never aims at more dollars (the upper envelope of lines g - price * d)
    assert np.all(np.diff(got) <= 1e-15)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from([0.0, 0.001, 0.003, 0.02]), min_size=4, max_size=4).map(
            lambda col: sorted(col, reverse=True)  # a question aims lower as the price rises
        ),
        min_size=1,
        max_size=5,
    ),
    st.floats(0.0, 0.05),
    st.floats(0.0, 0.2),
    st.randoms(use_true_random=False),
)
def test_round_prices_are_nearest_the_target_along_every_split(
    columns: list[list[float]], spent: float, target: float, rnd: Any
) -> None:
    """Brute force: of every way to give each question one of two neighbouring prices, the
    first ``m`` in key order the lower (the path from all at the highest price to all at the
    lowest), none comes nearer the target than the prices chosen."""
    grid = np.array([1.0, 2.0, 4.0, 8.0])
    aimed = np.array(columns).T  # (G, n)
    n = aimed.shape[1]
    keys = np.array([rnd.random() for _ in range(n)])
    rp = round_prices(aimed, grid, keys, spent, target)
    at = [int(np.flatnonzero(grid == p)[0]) for p in rp.price]
    assert rp.projected == pytest.approx(spent + sum(aimed[g, i] for i, g in enumerate(at)))
    assert set(rp.price) <= {rp.lo, rp.hi}
    order = np.lexsort((np.arange(n), keys))
    best = np.inf
    for g in range(grid.size - 1):
        for m in range(n + 1):
            idx = np.full(n, g + 1)
            idx[order[:m]] = g
            best = min(best, abs(spent + aimed[idx, np.arange(n)].sum() - target))
    assert abs(rp.projected - target) <= best + 1e-12


def test_the_grid_is_centred_on_the_calibrated_price() -> None:
    grid = price_grid(3.0)
    assert grid[len(grid) // 2] == pytest.approx(3.0)
    assert np.all(np.diff(grid) > 0)
    with pytest.raises(ValueError):
        price_grid(float("inf"))


def test_a_slack_grid_starts_at_zero_and_spans_the_options_prices() -> None:
    """A slack cascade's grid: price 0 first (as trained), then prices from below a gain of
    0.001 on every sample of the dearest model to above a gain of 1 on one of the cheapest."""
    unit = np.array([1e-4, 3e-4, 0.02])
    grid = slack_grid(unit, 16)
    assert grid[0] == 0.0 and np.all(np.diff(grid) > 0)
    assert grid[1] < 1e-3 / (16 * 0.02) and grid[-1] > 1 / 1e-4
    with pytest.raises(ValueError):
        slack_grid(np.array([0.0, 0.02]), 4)


P = 24  # problems: enough that some steps have MIN_PROBLEMS of them continuing, some not


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 10_000),
    st.lists(st.integers(1, 4), min_size=2, max_size=3),
    st.sampled_from([0.0, 0.05, 0.3, 2.0, np.inf]),
)
def test_traced_steps_and_the_pace_ratio_match_a_loop(seed: int, ns: list[int], lam: float) -> None:
    reps = _replays(seed, P, ns, orders=6)
    rng = np.random.default_rng([seed, 1])
    lad = cc.Ladder(tuple(ns), checkpoints=(1, 2, 4))
    _, usable = cc.labels(reps, lad)
    gains = rng.normal(0.05, 0.2, size=usable.shape)
    extra = cc.extra_dollars(reps, lad, [1.0, 4.0, 9.0][: len(ns)])
    got = cc.simulate(reps, lad, gains, extra, usable, lam, trace=True)
    aimed, left = np.zeros(len(lad.states)), np.zeros(len(lad.states))
    going: list[set[int]] = [set() for _ in lad.states]  # the problems continuing at each step
    for pi in range(P):
        for r in range(6):
            _, final, _, steps = _walk(reps, lad, gains, extra, usable, lam, pi, r)
            for t, (aim, before) in enumerate(steps):
                aimed[t] += aim
                left[t] += final - before
                going[t].add(pi)
    t = len(got.aimed)
    assert t == sum(1 for g in going if g) and len(got.left) == len(got.going) == t
    np.testing.assert_allclose(got.aimed, aimed[:t], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.left, left[:t], rtol=1e-9, atol=1e-9)
    assert list(got.going) == [len(g) for g in going[:t]]
    cal = cc.Calibration(lam, lam, 0.0, 0.0, slack=False)
    ratio = pace_ratio(cal, cc.priced_paths(reps, lad, gains, extra, usable, cal, trace=True))
    for k in range(t):
        ok = len(going[k]) >= MIN_PROBLEMS and aimed[k] > 0
        assert ratio[k] == pytest.approx(left[k] / aimed[k] if ok else 1.0)
    # a mix of two prices weighs each price's sums by its share
    a, b = cc.simulate(reps, lad, gains, extra, usable, 0.05, trace=True), got
    cal = cc.Calibration(0.05, lam, 0.3, 0.0)
    mixed = pace_ratio(cal, cc.priced_paths(reps, lad, gains, extra, usable, cal, trace=True))
    for k in range(len(mixed)):
        num = 0.3 * _at(a.left, k) + 0.7 * _at(b.left, k)
        den = 0.3 * _at(a.aimed, k) + 0.7 * _at(b.aimed, k)
        ok = max(_at(a.going, k), _at(b.going, k)) >= MIN_PROBLEMS and den > 0
        assert mixed[k] == pytest.approx(num / den if ok else 1.0)


def _at(v: Any, k: int) -> float:
    return float(v[k]) if k < len(v) else 0.0
