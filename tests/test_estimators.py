"""The closed-form estimators against brute-force enumeration of every k-subset."""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttcalloc.core import estimators

# One label per sample: None = abstention, 0 = the correct answer, 1..4 = wrong answers.
votes_strategy = st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=1, max_size=10)


def _clusters(votes: list[int | None]) -> tuple[int, int, np.ndarray]:
    n = len(votes)
    correct = sum(v == 0 for v in votes)
    wrong = np.array([[sum(v == j for v in votes) for j in range(1, 5)]])
    return n, correct, wrong


@settings(max_examples=400, deadline=None)
@given(votes=votes_strategy, data=st.data())
def test_majority_matches_brute_force(votes: list[int | None], data: st.DataObject) -> None:
    k = data.draw(st.integers(1, len(votes)))
    n, correct, wrong = _clusters(votes)
    exact = estimators.majority_at_k(np.array([n]), np.array([correct]), wrong, k)[0]
    assert exact == pytest.approx(estimators.majority_brute_force(votes, 0, k), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(votes=votes_strategy, data=st.data())
def test_pass_at_k_matches_brute_force(votes: list[int | None], data: st.DataObject) -> None:
    k = data.draw(st.integers(1, len(votes)))
    n, correct, _ = _clusters(votes)
    subsets = list(combinations(range(n), k))
    brute = sum(any(votes[i] == 0 for i in s) for s in subsets) / len(subsets)
    exact = estimators.pass_at_k(np.array([n]), np.array([correct]), k)[0]
    assert exact == pytest.approx(brute, abs=1e-12)
    assert exact == pytest.approx(1 - comb(n - correct, k) / comb(n, k), abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(votes_strategy, min_size=1, max_size=8), st.integers(1, 10))
def test_vectorized_rows_are_independent(rows: list[list[int | None]], k: int) -> None:
    """Many problems in one call give the same numbers as one call each (NaN where n < k)."""
    ns, cs, ws = zip(*(_clusters(v) for v in rows), strict=True)
    batch = estimators.majority_at_k(np.array(ns), np.array(cs), np.vstack(ws), k)
    for i, votes in enumerate(rows):
        if len(votes) < k:
            assert np.isnan(batch[i])
        else:
            assert batch[i] == pytest.approx(
                estimators.majority_brute_force(votes, 0, k), abs=1e-12
            )


def test_hand_computed_cases() -> None:
    # 2 correct, 1 wrong, k=2: subsets {c,c}=1, {c,w} x2 = tie -> 1/2 each: (1 + 1) / 3
    assert estimators.majority_at_k(np.array([3]), np.array([2]), np.array([[1]]), 2)[
        0
    ] == pytest.approx(2 / 3)
    # without abstentions maj@2 equals maj@1 (uniform tie splitting); an abstention helps maj@2
    p1 = estimators.majority_at_k(np.array([6]), np.array([3]), np.array([[2, 1]]), 1)[0]
    p2 = estimators.majority_at_k(np.array([6]), np.array([3]), np.array([[2, 1]]), 2)[0]
    assert p1 == pytest.approx(3 / 6) and p2 == pytest.approx(p1)
    p2_abstain = estimators.majority_at_k(np.array([7]), np.array([3]), np.array([[2, 1]]), 2)[0]
    assert p2_abstain == pytest.approx((3 + 0.5 * 9 + 3) / 21)
    # only abstentions and a correct sample: a lone vote wins; no votes is wrong
    assert estimators.majority_at_k(np.array([4]), np.array([1]), np.zeros((1, 1)), 2)[
        0
    ] == pytest.approx(0.5)
    assert estimators.majority_at_k(np.array([4]), np.array([0]), np.zeros((1, 1)), 4)[0] == 0.0


def test_large_n_stays_accurate() -> None:
    """n = 500 (OVM-sized): exact values match the k = n deterministic vote and stay in [0, 1]."""
    n, c = 500, 200
    wrong = np.array([[150, 100, 50]])
    full = estimators.majority_at_k(np.array([n]), np.array([c]), wrong, n)[0]
    assert full == 1.0
    mid = estimators.majority_at_k(np.array([n]), np.array([c]), wrong, 64)[0]
    assert 0.5 < mid < 1.0
    with pytest.raises(ValueError, match="at most 1000 samples"):
        estimators.majority_at_k(np.array([1001]), np.array([1]), np.zeros((1, 1)), 1)


def test_monte_carlo_agrees_within_noise() -> None:
    rng = np.random.default_rng(0)
    votes = np.array([0] * 5 + [1] * 4 + [2] * 3 + [-1] * 2)
    mc = estimators.majority_monte_carlo(votes, 0, 5, 20000, rng)
    n, c = len(votes), 5
    exact = estimators.majority_at_k(np.array([n]), np.array([c]), np.array([[4, 3]]), 5)[0]
    assert abs(mc - exact) < 0.02
