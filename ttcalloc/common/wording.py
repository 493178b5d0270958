"""The words and numbers results are read with, shared by every stage that shows an interval.

A paired 95% interval of a difference above 0 reads *ahead of*, below 0 *behind*, covering 0
*not distinguishable from* (evaluate's notes, ``run --compare``, report.md's glossary, README).
Differences and interval ends are printed by :func:`signed`, which never lets a nonzero value
read as zero.
"""

from __future__ import annotations

import math

AHEAD, BEHIND, LEVEL = "ahead of", "behind", "not distinguishable from"
SMALL_TEST = 100  # fewer labeled problems than this: say that the intervals are wide


def alike(diff: float, lo: float, hi: float) -> bool:
    """Whether a paired difference and its interval are all exactly 0: both scored the same
    on every item, so there is no interval to read."""
    return lo == hi == diff == 0


def compared(lo: float, hi: float) -> str:
    """The words for a 95% interval ``[lo, hi]`` of a difference (this minus the other)."""
    return AHEAD if lo > 0 else BEHIND if hi < 0 else LEVEL


def signed(value: float, digits: int = 4) -> str:
    """``value`` with its sign and ``digits`` decimals, unless that would read as zero.

    A nonzero value that rounds to 0 at ``digits`` decimals is given two significant digits
    instead: fixed-point down to 1e-6 (``+0.000023``), scientific below (``+2.3e-08``).  So a
    printed value has the value's sign and only an exact 0 prints as ``+0.0000``.
    """
    if value == 0:
        return f"{0.0:+.{digits}f}"
    text = f"{value:+.{digits}f}"
    if not math.isfinite(value) or float(text) != 0:
        return text
    if abs(value) >= 1e-6:
        text = f"{value:+.{1 - math.floor(math.log10(abs(value)))}f}"  # two significant digits
        if float(text) != 0:
            return text
    return f"{value:+.1e}"


def interval(lo: float, hi: float, digits: int = 4) -> str:
    """A 95% interval as ``[lo, hi]``, each end by :func:`signed` (a positive end never reads
    as zero)."""
    return f"[{signed(lo, digits)}, {signed(hi, digits)}]"


def difference(diff: float, lo: float, hi: float, digits: int = 4) -> str:
    """A paired difference and its interval: ``+0.0123 [+0.0040, +0.0207]``."""
    return f"{signed(diff, digits)} {interval(lo, hi, digits)}"


def cost_text(value: float | None, unit: str, fmt: str = ".3f") -> str:
    """A mean cost as shown: dollars with a $ sign (3 significant digits) where the unit is
    usd, else ``value`` in ``fmt``; "-" for None."""
    if value is None:
        return "-"
    return f"${value:.3g}" if unit == "usd" else format(value, fmt)


def cost_header(unit: str) -> str:
    """The title of a column of mean costs: ``$ per question`` in dollars, else ``cost (UNIT)``."""
    return "$ per question" if unit == "usd" else f"cost ({unit})"


def share_text(entry: dict[str, object]) -> str:
    """A policy's share of the strongest model's cost at its accuracy: ``36%`` (``<= 36%`` when
    reached at the lowest budget evaluated), or ``not reached``."""
    share = entry.get("share")
    if not isinstance(share, float):
        return "not reached"
    text = f"{share:.0%}" if share >= 0.1 else f"{share:.1%}"
    return f"<= {text}" if str(entry.get("how", "")).startswith("at most") else text


def dollars(value: float, digits: int = 4) -> str:
    """``$`` and ``digits`` significant digits, never in e-notation ($0.000001738, $0.004)."""
    if value == 0 or not math.isfinite(value):
        return f"${value:g}"
    places = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"${value:.{places}f}"


def samples_text(n: int) -> str:
    """``1 sample``, ``2 samples``."""
    return f"{n} sample{'' if n == 1 else 's'}"
