"""The words results are read with, shared by every stage that shows an interval.

A paired 95% interval of a difference above 0 reads *ahead of*, below 0 *behind*, covering 0
*not distinguishable from* (evaluate's notes, ``run --compare``, report.md's glossary, README).
"""

from __future__ import annotations

AHEAD, BEHIND, LEVEL = "ahead of", "behind", "not distinguishable from"
SMALL_TEST = 100  # fewer labeled problems than this: say that the intervals are wide


def alike(diff: float, lo: float, hi: float) -> bool:
    """Whether a paired difference and its interval are all exactly 0: both scored the same
    on every item, so there is no interval to read."""
    return lo == hi == diff == 0


def compared(lo: float, hi: float) -> str:
    """The words for a 95% interval ``[lo, hi]`` of a difference (this minus the other)."""
    return AHEAD if lo > 0 else BEHIND if hi < 0 else LEVEL
