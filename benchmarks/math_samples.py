"""A synthetic but realistic MATH multi-sample file: 500 MATH500 problems x 128 answers each.

No public file of many LLM samples per MATH problem is in ``../shared/data`` (its README lists
GSM8K and SVAMP sample files only), so the grading benchmark builds one from the MATH500 gold
answers.  Per problem: an accuracy ~ Beta(1.2, 0.8); a correct sample writes the gold answer in
one of the forms models use (the gold string itself most often; ``\\dfrac``, ``a/b``, a decimal,
``\\frac12``, extra or missing spaces, ``\\left( ... \\right)`` dropped, a ``\\text{}`` wrapper);
a wrong sample draws one of up to 60 wrong answers (Zipf-weighted: a few popular mistakes, a
long tail) and writes it in one of the same forms; 3% give no answer.  The file's own ``correct``
column is the generator's truth.  The result has about 30 distinct answer strings per problem,
like a mid-sized model's 128 samples on MATH.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl

MATH500 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "math500_test.jsonl"
_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")
_INT = re.compile(r"^-?\d+$")


def _forms(answer: str) -> list[str]:
    """Ways a model writes ``answer`` (the first is the answer itself)."""
    forms = [answer]
    frac = _FRAC.match(answer)
    if frac:
        sign, num, den = frac.groups()
        forms += [
            f"{sign}\\dfrac{{{num}}}{{{den}}}",
            f"{sign}{num}/{den}",
            f"{sign}\\frac {num} {den}" if len(num) == len(den) == 1 else f"{sign}{num} / {den}",
        ]
        if int(den) and 10**6 % int(den) == 0:
            forms.append(f"{sign}{int(num) / int(den):g}")
    elif _INT.match(answer):
        forms += [f"{answer}.0", f"{answer}.", f"\\text{{{answer}}}", f"x = {answer}"]
    else:
        forms += [
            answer.replace("\\frac", "\\dfrac"),
            answer.replace(" ", ""),
            answer.replace("\\left", "").replace("\\right", ""),
            " ".join(answer.replace("{", " { ").replace("}", " } ").split()),
        ]
    return list(dict.fromkeys(f for f in forms if f.strip()))


def _wrong_answers(answer: str, rng: np.random.Generator, count: int) -> list[str]:
    """Plausible wrong answers: the gold's numbers changed, its sign flipped, other integers."""
    out: list[str] = []
    digits = re.findall(r"\d+", answer)
    for _ in range(count * 4):
        if len(out) == count:
            break
        kind = rng.integers(4)
        if digits and kind < 2:
            target = digits[rng.integers(len(digits))]
            changed = str(max(0, int(target) + int(rng.choice([-2, -1, 1, 2, 10]))))
            cand = answer.replace(target, changed, 1)
        elif kind == 2:
            cand = answer[1:] if answer.startswith("-") else f"-{answer}"
        else:
            num, den = int(rng.integers(1, 40)), int(rng.integers(1, 12))
            cand = str(num) if den == 1 or rng.random() < 0.6 else f"\\frac{{{num}}}{{{den}}}"
        if cand != answer and cand not in out:
            out.append(cand)
    return out


# by MATH level: the share of problems made hard (35% in all; a small model's competition math,
# where the hard problems are the high levels, so the question's text says something of them)
LEVEL_HARD = {1: 0.02, 2: 0.08, 3: 0.2, 4: 0.4, 5: 0.7}


def build(
    problems: int = 500,
    samples: int = 128,
    seed: int = 0,
    hard: float = 0.0,
    by_level: bool = False,
) -> tuple[pl.DataFrame, list]:
    """(samples frame, MATH500 rows used); columns as the shared sample files (problem_id ...).

    ``hard``: the share of problems made hard, their accuracy ~ Beta(0.3, 8) (a heavy tail of
    problems that are never, or almost never, solved, as a small model's on competition math);
    0 leaves the file exactly as before.  ``by_level``: the share depends on the problem's MATH
    level instead (:data:`LEVEL_HARD`), so hardness goes with the question."""
    rows = [json.loads(line) for line in MATH500.read_text().splitlines()][:problems]
    rng = np.random.default_rng(seed)
    tail = np.random.default_rng(seed + 7919)  # its own stream: hard=0 changes nothing
    out = Drawn()
    for i, row in enumerate(rows):
        gold = row["answer"]
        wrong = _wrong_answers(gold, rng, int(rng.integers(4, 61)))
        zipf = 1.0 / np.arange(1, len(wrong) + 1) ** 1.1
        acc = rng.beta(1.2, 0.8)
        share = LEVEL_HARD[int(row["level"])] if by_level else hard
        if share and tail.random() < share:
            acc = tail.beta(0.3, 8.0)
        out.draw(rng, i, samples, _forms(gold), [_forms(w) for w in wrong], zipf, acc, 6.0)
    return out.frame(), rows


class Drawn:
    """Sample rows drawn problem by problem: one of a problem's right spellings with its
    accuracy, a wrong answer (one of its spellings) by a Zipf weight otherwise, 3% no answer."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.idx: list[int] = []
        self.preds: list[str | None] = []
        self.correct: list[bool] = []

    def draw(
        self,
        rng: np.random.Generator,
        problem: int,
        samples: int,
        right: list[str],
        wrong_forms: list[list[str]],
        zipf: np.ndarray,
        acc: float,
        first_form_weight: float,
    ) -> None:
        """``samples`` rows of ``problem`` (the first spelling of a wrong answer weighs
        ``first_form_weight``, each other spelling 1; the first right spelling 8)."""
        right_w = np.array([8.0] + [1.0] * (len(right) - 1))
        for j in range(samples):
            u = rng.random()
            self.pids.append(problem)
            self.idx.append(j)
            if u < 0.03 or (not wrong_forms and u >= acc):
                self.preds.append(None)
                self.correct.append(False)
            elif u < 0.03 + acc * 0.97 or not wrong_forms:
                self.preds.append(right[rng.choice(len(right), p=right_w / right_w.sum())])
                self.correct.append(True)
            else:
                w = int(rng.choice(len(wrong_forms), p=zipf / zipf.sum()))
                forms = wrong_forms[w]
                weights = np.array([first_form_weight] + [1.0] * (len(forms) - 1))
                self.preds.append(forms[rng.choice(len(forms), p=weights / weights.sum())])
                self.correct.append(False)

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "problem_id": self.pids,
                "sample_idx": self.idx,
                "pred_answer": pl.Series(self.preds, dtype=pl.String),
                "correct": self.correct,
            }
        )


def write(
    out_dir: Path,
    problems: int = 500,
    samples: int = 128,
    name: str = "math_samples.parquet",
    hard: float = 0.0,
    by_level: bool = False,
) -> tuple[Path, Path]:
    """Write ``math_problems.jsonl`` (MATH500 rows) and the samples (``name``) under out_dir
    (``hard``, ``by_level``: the never-solved-like problems, as in :func:`build`)."""
    return write_built(out_dir, build(problems, samples, hard=hard, by_level=by_level), name)


def write_built(out_dir: Path, built: tuple[pl.DataFrame, list], name: str) -> tuple[Path, Path]:
    """Write a built (samples, rows) pair: ``math_problems.jsonl`` and ``name`` under out_dir."""
    frame, rows = built
    problems_path = out_dir / "math_problems.jsonl"
    problems_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples_path = out_dir / name
    frame.write_parquet(samples_path)
    return problems_path, samples_path


def describe(frame: pl.DataFrame) -> str:
    """Samples, accuracy and distinct answers of a built samples frame."""
    distinct = frame.drop_nulls("pred_answer").select("problem_id", "pred_answer").unique()
    return (
        f"{frame.height} samples, accuracy {frame['correct'].mean():.3f}, "
        f"{distinct.height} distinct (problem, answer) pairs, "
        f"{frame['pred_answer'].n_unique()} distinct answer strings"
    )


if __name__ == "__main__":
    frame, _ = build()
    print(describe(frame))
