"""core.pacing: the per-round price of ``run``'s adaptive budget tracking, against brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ttcalloc.core.pacing import pace, projected_at_price, projections, rank

crit_value = st.one_of(
    st.just(0.0),
    st.just(math.inf),
    st.sampled_from([0.001, 0.002, 0.5]),  # ties
    st.floats(min_value=1e-6, max_value=10.0),
)


@st.composite
def rounds(draw: st.DrawFn) -> dict:
    n = draw(st.integers(min_value=1, max_value=7))
    return {
        "critical": np.array(draw(st.lists(crit_value, min_size=n, max_size=n))),
        "keys": np.array(draw(st.lists(st.floats(0, 0.999), min_size=n, max_size=n))),
        "steps": np.array(
            draw(st.lists(st.floats(min_value=0.0, max_value=50.0), min_size=n, max_size=n))
        ),
        "spent": draw(st.floats(min_value=0.0, max_value=100.0)),
        "target": draw(st.floats(min_value=0.0, max_value=200.0)),
        "horizon": draw(st.integers(min_value=0, max_value=5)),
    }


def _brute(r: dict, m: int) -> float:
    """projected(m) from the definition, with explicit loops: the first m in rank order go."""
    crit, keys, steps = r["critical"], r["keys"], r["steps"]
    n = len(crit)
    ranked = sorted((i for i in range(n) if crit[i] > 0), key=lambda i: (-crit[i], keys[i], i))
    q = m / n
    expected = sum(q**t for t in range(r["horizon"]))
    return r["spent"] + sum(steps[i] for i in ranked[:m]) * expected


@settings(max_examples=200, deadline=None)
@given(rounds(), st.booleans(), st.one_of(st.none(), st.integers(0, 8)))
def test_pace_is_the_brute_force_choice(r: dict, nearest: bool, most: int | None) -> None:
    p = pace(r["critical"], r["keys"], r["steps"], r["spent"], r["target"], r["horizon"],
             nearest=nearest, most=most)  # fmt: skip
    eligible = int((r["critical"] > 0).sum()) if r["horizon"] > 0 else 0
    proj = [_brute(r, m) for m in range(eligible + 1)]
    assert np.allclose(projections(
        r["steps"][rank(r["critical"], r["keys"])], len(r["critical"]), r["spent"], r["horizon"]
    )[: eligible + 1], proj)  # fmt: skip
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(proj))  # more continuing, more cost
    tol = 1e-9 * max(1.0, r["target"])
    fits = [m for m in range(eligible + 1) if proj[m] <= r["target"] + tol]
    wanted = max(fits) if fits else 0
    closer = wanted + 1 <= eligible and (
        abs(proj[wanted + 1] - r["target"]) < abs(proj[wanted] - r["target"]) - tol
    )
    if nearest and closer:
        wanted += 1
    assert p.wanted == wanted or (nearest and abs(p.wanted - wanted) == 1)  # float ties
    assert p.m == (p.wanted if most is None else min(p.wanted, most))
    assert int(p.go.sum()) == p.m
    # hits the target when feasible: at or below it, and one more would exceed it
    if not nearest and proj[0] <= r["target"]:
        assert p.projected <= r["target"] + tol
        if p.wanted < eligible:
            assert proj[p.wanted + 1] > r["target"] - tol
    # one price for the round: every question that goes has a critical price >= the price,
    # and every one that may continue but stops has one <= it
    crit = r["critical"]
    if p.go.any():
        assert crit[p.go].min() >= p.price
    stopped = (~p.go) & (crit > 0)
    if stopped.any() and p.m > 0:
        assert crit[stopped].max() <= p.price
    assert not (p.go & (crit <= 0)).any()  # no price makes a zero critical price continue


@settings(max_examples=200, deadline=None)
@given(rounds(), st.lists(st.floats(min_value=0.0, max_value=20.0), min_size=2, max_size=8))
def test_projected_cost_is_monotone_in_the_price(r: dict, prices: list[float]) -> None:
    prices = sorted(prices)
    costs = [
        projected_at_price(r["critical"], r["steps"], r["spent"], r["horizon"], lam)
        for lam in prices
    ]
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(costs))


def test_pace_ties_are_broken_by_key_not_by_position() -> None:
    crit = np.array([0.3, 0.3, 0.3, 0.3])
    keys = np.array([0.9, 0.1, 0.5, 0.2])
    p = pace(crit, keys, np.ones(4), spent=4.0, target=6.0, horizon=1)
    assert p.m == 2 and p.go.tolist() == [False, True, False, True] and p.price == 0.3
    # the same questions listed in another order: the same ones go
    perm = [2, 0, 3, 1]
    q = pace(crit[perm], keys[perm], np.ones(4), spent=4.0, target=6.0, horizon=1)
    assert q.go.tolist() == [p.go[i] for i in perm]
