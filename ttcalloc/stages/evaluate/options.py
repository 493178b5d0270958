"""What ``evaluate`` is asked to do: its options and the policies to score."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ttcalloc.common.errors import InputError
from ttcalloc.core.baselines import NAMES


@dataclass(frozen=True)
class EvaluateOptions:
    """Budgets, baselines and the resampling behind the intervals."""

    budgets: tuple[float, ...] = ()  # empty: each policy's own budget, baselines at its cost
    baselines: tuple[str, ...] = NAMES
    n_boot: int = 2000
    orders: int = 60  # a multiple of 1..6: one-sample rules exact for n <= 6
    seed: int = 0
    plot: bool = True
    recalibrate: bool = False  # learned policies meet each budget on the test questions

    def check(self) -> None:
        for b in self.budgets:
            if not math.isfinite(b) or b < 0:
                raise InputError(f"--budgets {b}: must be non-negative numbers")
        unknown = [b for b in self.baselines if b not in NAMES]
        if unknown:
            raise InputError(f"--baselines {unknown[0]!r}: expected some of {', '.join(NAMES)}")
        if self.n_boot < 100:
            raise InputError(f"--bootstrap {self.n_boot}: use at least 100 resamples")
        if self.orders < 1:
            raise InputError(f"--orders {self.orders}: must be at least 1")


@dataclass(frozen=True)
class PolicySpec:
    """A policy folder and the name it is reported under (folders sharing a name are one policy
    trained at several budgets)."""

    name: str
    path: Path

    @classmethod
    def parse(cls, text: str) -> PolicySpec:
        """``NAME=FOLDER`` or ``FOLDER`` (named after the folder)."""
        name, sep, path = text.partition("=")
        if sep and name and path and not Path(text).exists():
            return cls(name, Path(path))
        return cls(Path(text).name or str(text), Path(text))
