"""Shared helpers for the benchmarks: timing, machine description, synthetic vote data."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def timed(fn: Callable[[], T], repeat: int = 1) -> tuple[T, float]:
    """Run ``fn`` ``repeat`` times; return the last result and the best wall time in seconds."""
    best = float("inf")
    result: T
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def machine() -> str:
    import polars
    import scipy

    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"polars {polars.__version__}"
    )


def synthetic_votes(problems: int, samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Vote labels per sample: 0 = correct, 1.. = wrong answers (Zipf-clustered), -1 = no answer.

    Per-problem accuracy ~ Beta(1, 1); 3% abstentions.  Returns (labels (P, n), accuracy (P,)).
    """
    rng = np.random.default_rng(seed)
    p = rng.beta(1.0, 1.0, problems)
    wrong = 1 + np.minimum(rng.zipf(1.5, (problems, samples)), 30)
    labels = np.where(rng.random((problems, samples)) < p[:, None], 0, wrong)
    labels[rng.random((problems, samples)) < 0.03] = -1
    return labels, p


def clusters(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, correct count, wrong cluster sizes) from vote labels."""
    n = np.full(labels.shape[0], labels.shape[1])
    correct = (labels == 0).sum(axis=1)
    top = int(labels.max())
    wrong = np.stack([(labels == j).sum(axis=1) for j in range(1, top + 1)], axis=1)
    return n, correct, wrong
