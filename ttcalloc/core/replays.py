"""Sequential early-stopping baselines, simulated from recorded samples in random orders.

A sequential rule draws samples of a problem one at a time and stops when the answers so far
are convincing; its answer is the majority vote of what it drew.  Given each problem's recorded
samples, the rule is replayed in ``orders`` random permutations and its accuracy and cost are
averaged over them, so no model call is made.

Two rules, each with a cap ``K`` on the samples drawn:

- ``esc`` (Early-Stopping Self-Consistency, Li et al. 2024): draw windows of ``w`` samples and
  stop after the first window whose ``w`` answers are identical (abstentions never agree).
- ``adaptive`` (Adaptive-Consistency, Aggarwal et al. 2023, Beta criterion): after every sample,
  stop when ``P(p1 > p2) >= threshold`` under a Beta(v1 + 1, v2 + 1) posterior on the counts of
  the two leading answers.

The majority vote at the stop gives credit ``1/t`` when the correct answer is one of ``t``
answers tied for the lead (the same tie rule as ``maj@k`` in the curves), 0 when every drawn
sample abstained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

ABSTAIN = -1
PAD = -2
RULES = ("esc", "adaptive")
ESC_WINDOWS = (2, 3, 4, 5, 6, 8)
ADAPTIVE_THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)


@dataclass(frozen=True)
class Replays:
    """Each problem's samples in ``R`` random orders, with statistics after every prefix.

    Arrays are ``(P, R, T)`` with ``T`` the largest number of samples of a problem; entry
    ``t`` describes the first ``t + 1`` samples of an order.  Positions at or beyond a problem's
    own number of samples are padding.
    """

    n: NDArray[np.int64]  # (P,) samples per problem
    ids: NDArray[np.int64]  # cluster id of the sample: 0 correct, >0 a wrong answer, -1 none
    credit: NDArray[np.float64]  # majority-vote credit of the prefix
    top1: NDArray[np.int64]  # votes of the leading answer
    top2: NDArray[np.int64]  # votes of the runner-up
    cost: NDArray[np.float64]  # cumulative cost of the prefix (with any fixed cost)
    run: NDArray[np.int64]  # identical answers in a row ending here (abstentions break runs)
    lead: NDArray[np.float64]  # P(leader beats runner-up) under the Beta posterior
    distinct: NDArray[np.int64]  # distinct answers among the prefix (abstentions excluded)
    abstain: NDArray[np.int64]  # samples of the prefix without an answer
    solved: NDArray[np.float64]  # 1 when a sample of the prefix is correct (pass@ credit)
    fixed: NDArray[np.float64] | None = None  # (P,) cost paid once, with the first sample
    extra: NDArray[np.float64] | None = None  # (P, R, T, F) per-sample values, in drawn order
    kind: NDArray[np.int64] | None = None  # prompt kind of the sample: 0 text, 1 program, -1 pad

    @property
    def max_samples(self) -> int:
        return int(self.ids.shape[2])


def sliced(
    rep: Replays, problems: Any = slice(None), orders: Any = slice(None), samples: int | None = None
) -> Replays:
    """Part of ``rep``: the problems at ``problems``, the orders at ``orders``, at most
    ``samples`` samples per problem (every array along its problem, order and sample axes)."""
    cut: dict[str, Any] = {}
    for f in fields(rep):
        v = getattr(rep, f.name)
        if isinstance(v, np.ndarray):
            v = v[problems]
            if v.ndim >= 3:
                v = v[:, orders, :samples]
            cut[f.name] = v
    if samples is not None:
        cut["n"] = np.minimum(cut["n"], samples)
    return replace(rep, **cut)


def replay(
    votes: Sequence[Sequence[int]],
    costs: Sequence[Sequence[float]],
    orders: int = 60,
    seed: int = 0,
    fixed: Sequence[float] | None = None,
    extra: Sequence[NDArray[np.float64]] | None = None,
    shuffle: bool = True,
    variants: Sequence[Sequence[int]] | None = None,
    kinds: Sequence[Sequence[int]] | None = None,
) -> Replays:
    """Replay each problem's samples in ``orders`` seeded random orders.

    Args:
        votes: per problem, one cluster id per sample: 0 for the correct answer, one positive id
            per distinct wrong answer, -1 for a sample without an answer.
        costs: per problem, the cost of each sample (same shape as ``votes``).
        orders: random orders per problem (the first draw cycles through the samples).
        seed: seed of the orders (problem ``i`` gets its own stream, so adding problems does not
            change the orders of the others).
        fixed: per problem, a cost paid once when the first sample is drawn (a shared prompt).
        extra: per problem, an ``(n_i, F)`` array of per-sample values (lengths, log-probs) that
            travel with their sample through the orders (NaN where unknown).
        shuffle: False keeps the recorded order (one order: what a deployed policy has seen).
        variants: per problem, the prompt variant (an index) of each sample: an order takes the
            problem's variants in turn, in a random rotation, each variant's samples in random
            order (as ``run`` draws them, :func:`ttcalloc.text.variants.variant_at`); a variant
            whose samples run out is skipped.
        kinds: per problem, each sample's prompt kind (0 text, 1 program), kept in ``kind``.
    """
    n, perm = _orders([len(v) for v in votes], orders, seed, variants, shuffle)
    p, t_max = len(n), perm.shape[2]
    base_ids = np.full((p, t_max), PAD, dtype=np.int64)
    base_cost = np.zeros((p, t_max))
    for i, (v, c) in enumerate(zip(votes, costs, strict=True)):
        base_ids[i, : len(v)] = v
        base_cost[i, : len(c)] = c
    rows = np.arange(p)[:, None, None]
    ids = base_ids[rows, perm]
    cost = np.cumsum(base_cost[rows, perm], axis=2)
    fixed_arr = np.zeros(p) if fixed is None else np.asarray(fixed, dtype=np.float64)
    cost += fixed_arr[:, None, None]
    credit, top1, top2 = _votes(ids)
    run = np.zeros(ids.shape, dtype=np.int64)
    run[..., 0] = ids[..., 0] >= 0
    for t in range(1, t_max):
        same = (ids[..., t] == ids[..., t - 1]) & (ids[..., t] >= 0)
        run[..., t] = np.where(same, run[..., t - 1] + 1, (ids[..., t] >= 0).astype(np.int64))
    lead = np.where(top1 > 0, leader_probability(top1, top2), 0.0)
    abstain = np.cumsum(ids == ABSTAIN, axis=2)
    solved = np.maximum.accumulate(ids == 0, axis=2).astype(np.float64)
    distinct = _distinct(ids)
    extra_arr = None
    if extra is not None:
        width = int(np.asarray(extra[0]).reshape(len(votes[0]), -1).shape[1])
        base_extra = np.full((p, t_max, width), np.nan)
        for i, e in enumerate(extra):
            base_extra[i, : n[i]] = np.asarray(e, dtype=np.float64).reshape(n[i], width)
        extra_arr = base_extra[rows, perm]
    kind_arr = None
    if kinds is not None:
        base_kind = np.full((p, t_max), -1, dtype=np.int64)
        for i, k in enumerate(kinds):
            base_kind[i, : n[i]] = k
        kind_arr = base_kind[rows, perm]
    return Replays(
        n=n,
        ids=ids,
        credit=credit,
        top1=top1,
        top2=top2,
        cost=cost,
        run=run,
        lead=lead,
        distinct=distinct,
        abstain=abstain,
        solved=solved,
        fixed=fixed_arr,
        extra=extra_arr,
        kind=kind_arr,
    )


def _orders(
    sizes: Sequence[int],
    orders: int,
    seed: int,
    variants: Sequence[Sequence[int]] | None,
    shuffle: bool = True,
    streams: Sequence[int] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(P,)`` samples per problem and ``(P, R, T)`` the sample at each place of each order
    (see :func:`replay`; padding stays at the end).  Problem ``i``'s orders are seeded by
    ``(seed, i)``, or by ``(seed, streams[i])``: then by what the problem is, not where."""
    p = len(sizes)
    if p == 0:
        raise ValueError("no problems to replay")
    n = np.asarray(sizes, dtype=np.int64)
    if (n == 0).any():
        raise ValueError("every problem needs at least one sample")
    t_max = int(n.max())
    perm = np.empty((p, orders, t_max), dtype=np.int64)
    stream = list(range(p)) if streams is None else [int(x) for x in streams]
    for i, v in enumerate(variants if shuffle and variants is not None else ()):
        perm[i] = _rotated(np.asarray(v, dtype=np.int64), orders, t_max, [seed, stream[i]])
    for i in range(p if shuffle and variants is None else 0):
        rng = np.random.default_rng([seed, stream[i]])
        keys = rng.random((orders, t_max))
        keys[:, n[i] :] = np.inf  # padding stays at the end
        order = np.argsort(keys, axis=1)
        # stratify the first draw: order r starts with sample r mod n (the rest stays uniform),
        # so one-sample rules are exact when ``orders`` is a multiple of n
        first = np.arange(orders) % n[i]
        at = (order == first[:, None]).argmax(axis=1)
        rows_r = np.arange(orders)
        order[rows_r, at] = order[rows_r, 0]
        order[rows_r, 0] = first
        perm[i] = order
    if not shuffle:
        perm[:] = np.arange(t_max)
    return n, perm


def _votes(
    ids: NDArray[np.int64], tops: bool = True
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Majority credit, leader's and runner-up's votes after each prefix of ``(P, R, T)``
    cluster ids (the votes only with ``tops``; else zeros)."""
    p, orders, t_max = ids.shape
    n_clusters = max(int(ids.max()) + 1, 1)
    credit = np.zeros(ids.shape)
    top1 = np.zeros(ids.shape if tops else (0,), dtype=np.int64)
    top2 = np.zeros(ids.shape if tops else (0,), dtype=np.int64)
    chunk = max(1, 4_000_000 // max(1, orders * t_max * n_clusters))
    for lo in range(0, p, chunk):
        part = ids[lo : lo + chunk]
        onehot = part[..., None] == np.arange(n_clusters)
        counts = np.cumsum(onehot, axis=2, dtype=np.int32)
        best = counts.max(axis=3)
        tied = (counts == best[..., None]).sum(axis=3)
        wins = (counts[..., 0] == best) & (best > 0)
        credit[lo : lo + chunk] = np.where(wins, 1.0 / tied, 0.0)
        if tops:
            second = (
                np.partition(counts, -2, axis=3)[..., -2] if n_clusters > 1 else np.zeros_like(best)
            )
            top1[lo : lo + chunk] = best
            top2[lo : lo + chunk] = second
    return credit, top1, top2


def credit_in_orders(
    votes: Sequence[Sequence[int]],
    orders: int,
    seed: int,
    variants: Sequence[Sequence[int]] | None = None,
    streams: Sequence[int] | None = None,
) -> NDArray[np.float64]:
    """``(P, R, T)`` the majority credit alone of :func:`replay`'s orders (the same orders for
    the same arguments; ``streams``: each problem's own seed stream, see :func:`_orders`),
    without its other statistics."""
    n, perm = _orders([len(v) for v in votes], orders, seed, variants, streams=streams)
    base_ids = np.full((len(n), perm.shape[2]), PAD, dtype=np.int64)
    for i, v in enumerate(votes):
        base_ids[i, : len(v)] = v
    return _votes(base_ids[np.arange(len(n))[:, None, None], perm], tops=False)[0]


def _rotated(
    variant: NDArray[np.int64], orders: int, t_max: int, seed: list[int]
) -> NDArray[np.int64]:
    """``(orders, t_max)`` sample orders of one problem taking its variants in turn: a random
    rotation of the variants per order, each variant's samples in random order (no stratified
    first draw, unlike the orders without variants)."""
    n = len(variant)
    rng = np.random.default_rng([*seed, 1])
    names, vidx = np.unique(variant, return_inverse=True)
    v = len(names)
    keys = rng.random((orders, n))
    by = np.lexsort((keys, np.broadcast_to(vidx, keys.shape)), axis=-1)  # variant, then key
    start = np.concatenate([[0], np.cumsum(np.bincount(vidx, minlength=v))[:-1]])
    rank = np.empty_like(by)
    np.put_along_axis(rank, by, np.arange(n)[None, :] - start[vidx[by]], axis=1)
    cycle_pos = np.argsort(np.argsort(rng.random((orders, v)), axis=1), axis=1)
    place = rank * v + cycle_pos[:, vidx]
    out = np.empty((orders, t_max), dtype=np.int64)
    out[:, :n] = np.argsort(place, axis=1, kind="stable")
    out[:, n:] = np.arange(n, t_max)
    return out


def _distinct(ids: NDArray[np.int64]) -> NDArray[np.int64]:
    """Distinct answers (ids >= 0) among each prefix, along the last axis."""
    out = np.zeros(ids.shape, dtype=np.int64)
    t_max = ids.shape[-1]
    for t in range(t_max):
        cur = ids[..., t]
        earlier = (ids[..., :t] == cur[..., None]).any(axis=-1) if t else np.zeros(cur.shape, bool)
        new = (cur >= 0) & ~earlier
        out[..., t] = (out[..., t - 1] if t else 0) + new
    return out


def _stop_at(replays: Replays, stop: NDArray[np.bool_], cap: int) -> NDArray[np.int64]:
    """Index of the first prefix where ``stop`` holds, else the last one within the cap."""
    last = np.minimum(replays.n, cap) - 1  # (P,)
    t = np.arange(replays.max_samples)
    forced = t[None, None, :] == last[:, None, None]
    allowed = t[None, None, :] <= last[:, None, None]
    hit = (stop & allowed) | forced
    out: NDArray[np.int64] = hit.argmax(axis=2)
    return out


def _outcome(
    replays: Replays, at: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean credit and cost over orders when each order stops at ``at`` (P, R)."""
    idx = at[..., None]
    acc = np.take_along_axis(replays.credit, idx, axis=2)[..., 0].mean(axis=1)
    cost = np.take_along_axis(replays.cost, idx, axis=2)[..., 0].mean(axis=1)
    return acc, cost


def esc(replays: Replays, window: int, cap: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-problem accuracy and cost of ESC with window ``window`` and at most ``cap`` samples."""
    if window < 1 or cap < 1:
        raise ValueError("window and cap must be positive")
    t1 = np.arange(1, replays.max_samples + 1)
    stop = (t1 % window == 0)[None, None, :] & (replays.run >= window)
    return _outcome(replays, _stop_at(replays, stop, cap))


def leader_probability(top1: NDArray[np.int64], top2: NDArray[np.int64]) -> NDArray[np.float64]:
    """``P(p1 > p2)`` under Beta(top1 + 1, top2 + 1): the leader's chance of being the majority."""
    from scipy.special import betainc

    out: NDArray[np.float64] = 1.0 - betainc(top1 + 1.0, top2 + 1.0, 0.5)
    return out


def adaptive(
    replays: Replays, threshold: float, cap: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-problem accuracy and cost of Adaptive-Consistency at ``threshold``, ``cap`` samples."""
    if not 0.0 < threshold < 1.0 or cap < 1:
        raise ValueError("threshold must be in (0, 1) and cap positive")
    stop = replays.lead >= threshold
    return _outcome(replays, _stop_at(replays, stop, cap))


def caps(max_samples: int) -> list[int]:
    """Caps tried when tuning: every count up to 16, then powers of two, and the maximum."""
    values = set(range(1, min(max_samples, 16) + 1))
    values |= {2**j for j in range(5, 12) if 2**j <= max_samples}
    values.add(max_samples)
    return sorted(values)


def settings(rule: str, max_samples: int) -> list[dict[str, float]]:
    """The parameter grid a rule is tuned over."""
    if rule == "esc":
        return [
            {"window": w, "cap": k}
            for k in caps(max_samples)
            for w in ESC_WINDOWS
            if w <= k or (w == ESC_WINDOWS[0] and k == 1)
        ]
    if rule == "adaptive":
        return [
            {"threshold": th, "cap": k} for k in caps(max_samples) for th in ADAPTIVE_THRESHOLDS
        ]
    raise ValueError(f"unknown rule {rule!r}")


def run(
    rule: str, replays: Replays, setting: dict[str, float]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-problem accuracy and cost of one rule at one setting."""
    if rule == "esc":
        return esc(replays, int(setting["window"]), int(setting["cap"]))
    if rule == "adaptive":
        return adaptive(replays, float(setting["threshold"]), int(setting["cap"]))
    raise ValueError(f"unknown rule {rule!r}")
