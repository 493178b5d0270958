"""Dollars per sample from per-model prices and token counts (pure arithmetic on arrays).

A price is dollars per million prompt (input) and completion (output) tokens.  A sample's cost is
``prompt_tokens * input + completion_tokens * output`` over a million.  Where a sample carries
no token counts, tokens are estimated from characters (:data:`CHARS_PER_TOKEN`), and where it
carries no prompt tokens, the model's ``prompt_tokens`` (a few-shot prompt often dominates the
bill) is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True)
class Price:
    """Dollars per million input and output tokens of one model; ``prompt_tokens`` is the
    prompt length to assume where a sample does not record one (None: unknown)."""

    input: float
    output: float
    prompt_tokens: float | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output"):
            v = getattr(self, name)
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"{name} price must be a finite number >= 0, got {v!r}")
        if self.prompt_tokens is not None and (
            not np.isfinite(self.prompt_tokens) or self.prompt_tokens < 0
        ):
            raise ValueError(f"prompt_tokens must be >= 0, got {self.prompt_tokens!r}")


def tokens_from_chars(chars: ArrayLike) -> NDArray[np.float64]:
    """Estimated tokens of texts of ``chars`` characters (about 4 characters per token)."""
    return np.asarray(chars, dtype=np.float64) / CHARS_PER_TOKEN


def sample_dollars(
    price: Price, prompt_tokens: ArrayLike, completion_tokens: ArrayLike
) -> NDArray[np.float64]:
    """Dollar cost of samples with these prompt and completion token counts."""
    p = np.asarray(prompt_tokens, dtype=np.float64)
    c = np.asarray(completion_tokens, dtype=np.float64)
    return (p * price.input + c * price.output) / 1e6
