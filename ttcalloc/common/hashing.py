"""Seeded hashing: the one way ttcalloc turns a key into a reproducible pseudo-random number.

Splits, halves, folds, shards and request seeds all hash ``"ttcalloc-<tag>:<part>:<part>..."``
with SHA-256, so an assignment depends only on the seed and the key, never on row order or on
which other keys exist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def seeded_int(tag: str, *parts: object, nbytes: int = 8) -> int:
    """The first ``nbytes`` of SHA-256 of ``ttcalloc-<tag>:<parts joined by ':'>`` (big-endian)."""
    text = ":".join([f"ttcalloc-{tag}", *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:nbytes], "big")


def seeded_unit(tag: str, *parts: object) -> float:
    """A seeded hash mapped to [0, 1)."""
    return seeded_int(tag, *parts) / 2.0**64


def seeded_folds(ids: Sequence[object], k: int, seed: int) -> list[int]:
    """The cross-fitting fold (0..k-1) of each id, for every learner: ids are ranked by a seeded
    hash and dealt out in turn, so fold sizes differ by at most one and an id's fold depends
    only on the seed and the ids being split."""
    ranked = sorted(range(len(ids)), key=lambda i: (seeded_int("fold", seed, ids[i]), i))
    fold = [0] * len(ids)
    for rank, i in enumerate(ranked):
        fold[i] = rank % k
    return fold
