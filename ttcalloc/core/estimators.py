"""Exact success probabilities of k-sample actions, from n >= k samples of a problem.

For an action "draw k samples and combine them", the unbiased estimate of its success probability
from n i.i.d. samples is the average over all C(n, k) k-subsets (a U-statistic).  ttcalloc computes
it in closed form, never by enumerating subsets nor by resampling.

Majority vote.  The n samples fall into one correct cluster (``c`` samples), ``m`` wrong-answer
clusters (counts ``o_1..o_m``) and ``a`` abstentions (no answer).  Abstentions do not vote, ties
are split uniformly, and a subset with no votes is wrong.  The correct cluster wins a share
``1 / (1 + t)`` of a subset where it has ``v >= 1`` votes, every wrong cluster has at most ``v``,
and ``t`` of them have exactly ``v``.  Counting such subsets is a coefficient extraction:

    N(v) = C(c, v) * sum_t [x^(k-v) z^t] G(x, z) / (1 + t),
    G(x, z) = (1 + x)^s * prod_{j: o_j >= v} (F_j(x) + z C(o_j, v) x^v)

where ``F_j(x) = sum_{u < v} C(o_j, u) x^u`` and ``s`` is the number of abstentions plus the
samples of clusters smaller than ``v`` (they can never reach ``v`` votes, so they only use up
draws).  Then ``p = sum_v N(v) / C(n, k)``.  Only clusters of at least ``v`` samples enter the
product, so the work per problem is small for real data, and it is vectorized over problems.

pass@k ("any correct", a perfect verifier) is ``1 - C(n - c, k) / C(n, k)``, computed as a
product of ratios for stability.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

MAX_SAMPLES = 1000  # binomial coefficients of larger n overflow float64

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@lru_cache(maxsize=4)
def pascal(n_max: int) -> FloatArray:
    """Table ``T[n, k] = C(n, k)`` as floats for ``0 <= n, k <= n_max`` (0 when k > n)."""
    table = np.zeros((n_max + 1, n_max + 1), dtype=np.float64)
    table[:, 0] = 1.0
    for n in range(1, n_max + 1):
        table[n, 1 : n + 1] = table[n - 1, 1 : n + 1] + table[n - 1, 0:n]
    table.setflags(write=False)
    return table


def _table_for(n: IntArray) -> FloatArray:
    top = int(n.max()) if n.size else 0
    if top > MAX_SAMPLES:
        raise ValueError(f"at most {MAX_SAMPLES} samples per problem are supported, got {top}")
    # round the size up so that a few tables serve every call
    size = 16
    while size < top:
        size *= 2
    return pascal(min(size, MAX_SAMPLES))


def pass_at_k(n: IntArray, c: IntArray, k: int) -> FloatArray:
    """Unbiased pass@k for each problem: ``1 - C(n - c, k) / C(n, k)`` (NaN where ``n < k``)."""
    n = np.asarray(n, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    out = np.full(n.shape, np.nan)
    ok = n >= k
    fail = np.ones(int(ok.sum()))
    nn, cc = n[ok].astype(np.float64), c[ok].astype(np.float64)
    for i in range(k):
        fail *= np.clip((nn - cc - i) / (nn - i), 0.0, 1.0)
    out[ok] = 1.0 - fail
    return out


def majority_at_k(n: IntArray, correct: IntArray, wrong: IntArray, k: int) -> FloatArray:
    """Exact unbiased majority-vote accuracy of k-subsets, for each problem.

    Args:
        n: samples per problem (votes plus abstentions), shape (P,).
        correct: samples in the correct-answer cluster, shape (P,).
        wrong: wrong-answer cluster sizes, shape (P, M), zero-padded.
        k: subset size.

    Returns:
        Shape (P,): the accuracy, NaN where ``n < k``.
    """
    n = np.asarray(n, dtype=np.int64)
    correct = np.asarray(correct, dtype=np.int64)
    wrong = np.asarray(wrong, dtype=np.int64).reshape(n.shape[0], -1)
    if k < 1:
        raise ValueError("k must be at least 1")
    if np.any(correct + wrong.sum(axis=1) > n):
        raise ValueError("cluster sizes exceed the number of samples")
    table = _table_for(n)
    wrong = -np.sort(-wrong, axis=1)  # largest clusters first
    abstain = n - correct - wrong.sum(axis=1)
    out = np.full(n.shape, np.nan)
    valid = n >= k
    out[valid] = 0.0
    # k == n: the only subset is all samples; compare the vote counts directly.
    whole = np.flatnonzero(n == k)
    if whole.size:
        top = wrong[whole, 0] if wrong.shape[1] else np.zeros(whole.size, dtype=np.int64)
        ties = (wrong[whole] == correct[whole, None]).sum(axis=1)
        out[whole] = np.where((correct[whole] > 0) & (correct[whole] >= top), 1.0 / (1 + ties), 0.0)
    todo = valid & (n > k)
    for v in range(1, k + 1):
        act = np.flatnonzero(todo & (correct >= v))
        if act.size == 0:
            break
        n_big = (wrong[act] >= v).sum(axis=1)
        # Rows with the same number of big clusters share one tight computation.
        for nb in np.unique(n_big):
            rows = act[n_big == nb]
            out[rows] += table[correct[rows], v] * _tie_weighted_count(
                wrong[rows, :nb], abstain[rows] + wrong[rows, nb:].sum(axis=1), k - v, v, table
            )
    out[todo] /= table[n[todo], k]
    return np.clip(out, 0.0, 1.0, where=valid, out=out)


def _tie_weighted_count(
    big: IntArray, small_mass: IntArray, d: int, v: int, table: FloatArray
) -> FloatArray:
    """sum_t [x^d z^t] (1+x)^small * prod_j (F_j(x) + z C(big_j, v) x^v) / (1 + t), per row."""
    n_big = big.shape[1]
    t_max = min(n_big, d // v)
    poly = np.zeros((big.shape[0], t_max + 1, d + 1))
    poly[:, 0, :] = table[small_mass[:, None], np.arange(d + 1)[None, :]]
    for j in range(n_big):
        size = big[:, j]
        nxt = poly.copy()  # u = 0 term: C(size, 0) = 1
        for u in range(1, min(v - 1, d) + 1):
            nxt[:, :, u:] += table[size, u][:, None, None] * poly[:, :, : d + 1 - u]
        if t_max >= 1:
            nxt[:, 1:, v:] += table[size, v][:, None, None] * poly[:, :-1, : d + 1 - v]
        poly = nxt
    weights = 1.0 / np.arange(1, t_max + 2)
    result: FloatArray = poly[:, :, d] @ weights
    return result


def majority_brute_force(votes: list[int | None], correct_label: int, k: int) -> float:
    """Reference: majority@k by enumerating every k-subset (for tests on small n only).

    ``votes`` holds one cluster label per sample (None = abstention).
    """
    from collections import Counter
    from itertools import combinations

    total = 0.0
    count = 0
    for subset in combinations(range(len(votes)), k):
        tally = Counter(votes[i] for i in subset if votes[i] is not None)
        count += 1
        if not tally:
            continue
        top = max(tally.values())
        leaders = [label for label, c in tally.items() if c == top]
        if correct_label in leaders:
            total += 1.0 / len(leaders)
    return total / count


def majority_monte_carlo(
    votes: IntArray, correct_label: int, k: int, draws: int, rng: np.random.Generator
) -> float:
    """Monte Carlo estimate of majority@k from ``draws`` random k-subsets (benchmark baseline).

    ``votes`` holds cluster labels ``>= 0`` per sample and ``-1`` for abstentions.
    """
    n = votes.shape[0]
    keys = rng.random((draws, n))
    idx = np.argpartition(keys, k - 1, axis=1)[:, :k]
    chosen = votes[idx]
    labels = int(votes.max()) + 1 if votes.size else 0
    if labels == 0:
        return 0.0
    counts = np.zeros((draws, labels), dtype=np.int64)
    rows = np.repeat(np.arange(draws), k)
    flat = chosen.ravel()
    keep = flat >= 0
    np.add.at(counts, (rows[keep], flat[keep]), 1)
    top = counts.max(axis=1)
    leaders = (counts == top[:, None]) & (top[:, None] > 0)
    wins = leaders[:, correct_label] / np.maximum(leaders.sum(axis=1), 1)
    return float(wins.mean())
