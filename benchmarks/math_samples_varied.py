"""A synthetic MATH samples file as varied as a real one: about 25,000 distinct LaTeX answers.

``math_samples.py`` draws wrong answers mostly from small integers shared between problems, so
its 64,000 samples hold only 4,401 distinct answer strings; a real file of 500 MATH problems x
128 samples of a mid-sized model (the one issue 21 reports) holds about 25,000, most of them
LaTeX written for one problem only.  This generator draws
(accuracy per problem ~ Beta(1, 1), 3% no answer, the gold written in the forms models use) and
draws each problem's wrong answers from a longer, problem-specific tail: the gold's numbers
changed, scaled, negated, under a root or over a denominator, as decimals, with ``\\pi`` or
degrees, each written in several spellings (spaces, ``\\dfrac``, ``\\left(``, ``x =``).  The
``correct`` column is the generator's truth.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
from math_samples import MATH500, Drawn, _forms, describe, write_built

_NUM = re.compile(r"\d+")


def _variant(answer: str, rng: np.random.Generator) -> str:
    """One plausible wrong answer built from ``answer``'s own numbers and shape."""
    digits = _NUM.findall(answer)
    base = int(digits[rng.integers(len(digits))]) if digits else 0
    n = base + int(rng.integers(1, 1000))
    m = int(rng.integers(2, 20))
    kind = int(rng.integers(10))
    if kind == 0 and digits:
        target = digits[rng.integers(len(digits))]
        return answer.replace(target, str(max(0, int(target) + int(rng.integers(-9, 10)))), 1)
    if kind == 1:
        return f"\\frac{{{n}}}{{{m}}}"
    if kind == 2:
        return f"{m}\\sqrt{{{n}}}"
    if kind == 3:
        return f"\\frac{{{n}\\sqrt{{{m}}}}}{{{m + 1}}}"
    if kind == 4:
        return f"{n * m + int(rng.integers(1, 9))}"
    if kind == 5:
        return f"{n / m:.{int(rng.integers(1, 4))}f}"
    if kind == 6:
        return f"{n}\\pi" if rng.random() < 0.5 else f"\\frac{{{n}\\pi}}{{{m}}}"
    if kind == 7:
        return f"({n}, {m})" if rng.random() < 0.5 else f"[{-m}, {n}]"
    if kind == 8:
        return f"{n}^\\circ" if rng.random() < 0.5 else f"{m}x^2 + {n}x"
    return f"-{answer}" if not answer.startswith("-") else answer[1:]


def _spellings(answer: str, rng: np.random.Generator) -> list[str]:
    """``_forms`` plus spellings models add: ``x =``, ``\\left(``, thin spaces, a boxed copy."""
    forms = _forms(answer)
    extra = [f"x = {answer}", f"\\left({answer}\\right)", answer.replace(" ", "\\,")]
    forms += [extra[int(rng.integers(len(extra)))]]
    return list(dict.fromkeys(forms))


def build(problems: int = 500, samples: int = 128, seed: int = 0) -> tuple[pl.DataFrame, list]:
    """(samples frame, MATH500 rows used); columns as the shared sample files (problem_id ...)."""
    rows = [json.loads(line) for line in MATH500.read_text().splitlines()][:problems]
    rng = np.random.default_rng(seed)
    out = Drawn()
    for i, row in enumerate(rows):
        gold = row["answer"]
        pool = int(rng.integers(60, 300))
        wrong = list(dict.fromkeys(v for v in (_variant(gold, rng) for _ in range(pool)) if v))
        wrong = [w for w in wrong if w != gold]
        wrong_forms = [_spellings(w, rng) for w in wrong]
        zipf = 1.0 / np.arange(1, len(wrong) + 1) ** 0.4
        acc = rng.beta(1.0, 1.0)
        out.draw(rng, i, samples, _forms(gold), wrong_forms, zipf, acc, 4.0)
    return out.frame(), rows


def write(out_dir: Path, problems: int = 500, samples: int = 128) -> tuple[Path, Path]:
    """Write ``math_problems.jsonl`` (MATH500 rows) and ``math_varied.parquet`` under out_dir."""
    return write_built(out_dir, build(problems, samples), "math_varied.parquet")


if __name__ == "__main__":
    frame, _ = build()
    print(describe(frame))
