"""Success of k-sample actions when the samples take several prompt variants in turn.

``run`` draws sample ``i`` of a question and model with variant ``order[i % V]`` of a seeded
cyclic order of the ``V`` variants (:func:`ttcalloc.text.variants.variant_at`), and the replays
of recorded samples take them the same way (:func:`ttcalloc.core.replays.replay` with
``variants``: a random rotation of the variants, each variant's samples in random order, a
variant whose samples run out skipped).  So ``maj@4`` with four variants is one sample of each,
not any four samples: the U-statistic of :mod:`ttcalloc.core.estimators`, an average over every
k-subset, answers another question.  Per group of samples (one problem, model and half), with a
cluster id per sample (0 correct, a positive id per wrong answer, -1 no answer) and the index of
its variant:

- pass@k is exact.  A rotation fixes how many samples ``k_u`` of each variant ``u`` the first
  ``k`` draws take; they are a uniform ``k_u``-subset of that variant's ``n_u`` samples, ``c_u``
  of them correct, so ``P(no correct) = prod_u C(n_u - c_u, k_u) / C(n_u, k_u)``, averaged
  over the ``V!`` rotations (equally likely).  Only the round ``r`` in which draw ``k`` falls
  depends on the rotation: every earlier round took one sample of each variant that still had
  one, and round ``r`` takes the first ``j`` of the ``m`` variants with more than ``r`` samples
  in the rotation's order, a uniform ``j``-subset of them.  So the mean is over the
  ``C(m, j)`` subsets (:func:`_fail_in_turn`), for any number of variants.
- maj@k is a Monte-Carlo mean for ``k >= 2``: the majority-vote credit of the first ``k``
  draws (ties split uniformly, no answer never votes, no votes is wrong), as
  :func:`~ttcalloc.core.replays.replay` computes it, averaged over ``orders`` seeded orders
  taken in turn.  Its standard error per group is at most ``0.5 / sqrt(orders)`` (credit lies
  in [0, 1]).  maj@1 is pass@1 (one sample's credit is whether it is correct), so exact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ttcalloc.core import replays
from ttcalloc.core.estimators import MAX_SAMPLES, pascal

DEFAULT_ORDERS = 400
_CHUNK = 2_000_000  # groups x orders x samples per replay call (memory)


def pass_in_turn(
    votes: Sequence[Sequence[int]], variants: Sequence[Sequence[int]], ks: Sequence[int]
) -> NDArray[np.float64]:
    """``(G, len(ks))`` exact pass@k of each group when its samples take the variants in turn
    (NaN where the group has fewer than ``k`` samples)."""
    out = np.full((len(votes), len(ks)), np.nan)
    for g, (ids, var) in enumerate(zip(votes, variants, strict=True)):
        ids_a, var_a = np.asarray(ids, dtype=np.int64), np.asarray(var, dtype=np.int64)
        if ids_a.shape != var_a.shape or ids_a.size == 0:
            raise ValueError("each group needs one variant per sample, and a sample")
        if ids_a.size > MAX_SAMPLES:
            raise ValueError(f"at most {MAX_SAMPLES} samples per group are supported")
        _, vidx = np.unique(var_a, return_inverse=True)
        n_u = np.bincount(vidx)
        c_u = np.bincount(vidx, weights=ids_a == 0, minlength=len(n_u)).astype(np.int64)
        table = pascal(MAX_SAMPLES if max(n_u.max(), n_u.size) > 64 else 64)
        # draws through round r: one sample of each variant with more than r samples
        through = np.minimum(n_u[None, :], np.arange(1, n_u.max() + 1)[:, None]).sum(axis=1)
        for j, k in enumerate(ks):
            if k < 1:
                raise ValueError("k must be at least 1")
            if k > ids_a.size:
                continue
            r = int(np.searchsorted(through, k))  # the round of draw k
            before = int(through[r - 1]) if r else 0
            out[g, j] = 1.0 - _fail_in_turn(n_u, c_u, r, k - before, table)
    return out


def _fail_in_turn(
    n: NDArray[np.int64], c: NDArray[np.int64], r: int, j: int, table: NDArray[np.float64]
) -> float:
    """P(no correct sample) among the draws of rounds ``0..r-1`` and the first ``j`` of round
    ``r``: variants with at most ``r`` samples are spent, the ``m`` others give ``r`` samples
    each, plus one for a uniform ``j``-subset of them (the sum over the subsets of the product
    is the ``x**j`` coefficient of ``prod_u (b_u + a_u x)``)."""
    live = n > r
    spent = ~live
    fail = float(np.prod(table[n[spent] - c[spent], n[spent]] / table[n[spent], n[spent]]))
    nl, cl = n[live], c[live]
    b = table[nl - cl, r] / table[nl, r]  # r samples of the variant
    a = table[nl - cl, r + 1] / table[nl, r + 1]  # r + 1
    coef = np.zeros(j + 1)
    coef[0] = 1.0
    for a_u, b_u in zip(a, b, strict=True):
        coef[1:] = coef[1:] * b_u + coef[:-1] * a_u
        coef[0] *= b_u
    return fail * float(coef[j]) / float(table[len(nl), j])


def majority_in_turn(
    votes: Sequence[Sequence[int]],
    variants: Sequence[Sequence[int]],
    ks: Sequence[int],
    orders: int = DEFAULT_ORDERS,
    seed: int = 0,
    keys: Sequence[str] | None = None,
) -> NDArray[np.float64]:
    """``(G, len(ks))`` maj@k of each group when its samples take the variants in turn: the
    mean credit of the first ``k`` draws over ``orders`` seeded orders, and maj@1 exactly, as
    pass@1 (NaN where ``k`` exceeds the group's samples).  A group's orders are seeded by
    ``seed`` and its key (``keys``, e.g. problem, model and half; else its index), so they do
    not depend on which other groups are estimated with it."""
    if orders < 1:
        raise ValueError("orders must be positive")
    if any(k < 1 for k in ks):
        raise ValueError("k must be at least 1")
    g_all = len(votes)
    out = np.full((g_all, len(ks)), np.nan)
    if g_all == 0:
        return out
    n = np.array([len(v) for v in votes], dtype=np.int64)
    streams = list(range(g_all)) if keys is None else [_stream(k) for k in keys]
    step = max(1, _CHUNK // (orders * int(n.max())))
    for lo in range(0, g_all, step):
        hi = min(g_all, lo + step)
        credit = replays.credit_in_orders(
            votes[lo:hi], orders=orders, seed=seed, variants=variants[lo:hi],
            streams=streams[lo:hi],
        )  # fmt: skip
        mean = credit.mean(axis=1)  # (g, T)
        for j, k in enumerate(ks):
            ok = n[lo:hi] >= k
            if k <= mean.shape[1]:
                out[lo:hi, j] = np.where(ok, mean[:, k - 1], np.nan)
    ones = [j for j, k in enumerate(ks) if k == 1]
    if ones:  # one sample's credit is its correctness: exact
        out[:, ones] = pass_in_turn(votes, variants, [1])
    return out


def _stream(key: str) -> int:
    """A group's own seed stream: a stable 60-bit hash of its key."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:15], 16)


def accuracy(
    strategy: str,
    votes: Sequence[Sequence[int]],
    variants: Sequence[Sequence[int]],
    ks: Sequence[int],
    seed: int = 0,
    keys: Sequence[str] | None = None,
) -> NDArray[np.float64]:
    """``(G, len(ks))``: :func:`majority_in_turn` (``strategy`` majority, with
    :data:`DEFAULT_ORDERS` orders; ``keys`` seed each group's orders) or :func:`pass_in_turn`
    (pass) of each group."""
    if strategy == "majority":
        return majority_in_turn(votes, variants, ks, seed=seed, keys=keys)
    if strategy == "pass":
        return pass_in_turn(votes, variants, ks)
    raise ValueError(f"unknown strategy {strategy!r}")
