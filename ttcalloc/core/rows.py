"""Identical rows of a feature matrix, found exactly (for fitting and predicting once per row).

A learned stopping rule's inputs repeat a lot: the state after ``j`` samples (vote counts,
distinct answers, agreement run) takes few values, and every replay order of every problem
revisits them.  :func:`unique_rows` groups rows whose float64 values are bit-for-bit equal, so a
model can be asked once per distinct row, or fit on distinct rows with their counts as weights.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_MULT = np.uint64(0x100000001B3)  # FNV-1a's 64-bit prime
_SEED = np.uint64(0xCBF29CE484222325)


def unique_rows(x: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Distinct rows of ``x`` (shape ``(..., F)``, flattened to ``(N, F)``).

    Returns ``(first, inverse)``: ``first`` indexes the first occurrence of each distinct row
    (in the order of a 64-bit hash of the row, not of appearance) and ``inverse`` maps each row
    to its distinct row, so ``flat[first][inverse]`` equals ``flat`` bit for bit.  Rows are
    equal when their bytes are (NaNs with the same payload are equal; 0.0 and -0.0 are not).
    The hash is checked: a collision falls back to an exact byte-wise sort.
    """
    flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1, x.shape[-1])
    bits = flat.view(np.uint64)
    h = np.full(flat.shape[0], _SEED, dtype=np.uint64)
    for c in range(bits.shape[1]):
        h = (h ^ bits[:, c]) * _MULT
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    first, inverse = first.astype(np.int64), inverse.reshape(-1).astype(np.int64)
    if np.array_equal(bits[first][inverse], bits):
        return first, inverse
    rows = bits.view(np.dtype((np.void, bits.dtype.itemsize * bits.shape[1])))[:, 0]
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return first.astype(np.int64), inverse.reshape(-1).astype(np.int64)
