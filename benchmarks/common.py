"""Shared helpers for the benchmarks: timing, machine description, synthetic vote data."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
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


def cli_seconds(args: list[str], *, old: bool = False, env: dict[str, str] | None = None) -> float:
    """Wall time of one whole ``ttcalloc`` process (``old``: with legacy.py's old paths).

    Output is discarded; a failing command raises.  The current ttcalloc package is used (the
    repository root is put first on PYTHONPATH), whatever the venv's console script points at.
    """
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    root = str(here.parent)
    entry = [str(here / "legacy.py")] if old else ["-m", "ttcalloc"]
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (root, full_env.get("PYTHONPATH", "")) if p)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *entry, *args],
        env=full_env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def ttcalloc_at(root: Path, args: Sequence[object]) -> str:
    """Run one ``ttcalloc`` command from the package at ``root`` (another checkout for a
    before/after table); its stdout, or RuntimeError with the end of its stderr."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    res = subprocess.run(
        [sys.executable, "-m", "ttcalloc", *map(str, args)],
        env=env,
        cwd=root,  # `-m` puts the working folder first on the path
        capture_output=True,
        text=True,
    )
    if res.returncode:
        raise RuntimeError(f"ttcalloc {' '.join(map(str, args))}: {res.stderr[-2000:]}")
    return res.stdout
