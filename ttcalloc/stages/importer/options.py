"""What ``ttcalloc import`` takes and reports: field aliases, options and the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ttcalloc.common.errors import InputError
from ttcalloc.text.grading import GRADERS

# rows of a graded file that ttcalloc's grader checks by default (import of the benchmark's
# MATH file, 64,000 rows: 6-11 s in all)
CHECK_ROWS = 1000

# Column spellings tried, in order, when a field is not mapped explicitly.
ALIASES: dict[str, tuple[str, ...]] = {
    "problem_id": ("problem_id", "id", "idx", "question_id"),
    "pred_answer": (
        "pred_answer",
        "predicted_answer",
        "prediction",
        "pred",
        "extracted_answer",
        "answer",
    ),
    "sample_idx": ("sample_idx", "sample_id", "sample"),
    "model": ("model", "model_name"),
    "correct": ("correct", "is_correct", "label"),
    "response": ("response", "completion", "output", "generation", "text"),
    "prompt_tokens": ("prompt_tokens",),
    "completion_tokens": ("completion_tokens", "output_tokens"),
    "cost_usd": ("cost_usd", "cost"),
    "completion_chars": ("completion_chars", "gen_chars", "num_chars", "output_chars"),
    "mean_logprob": ("mean_logprob", "avg_logprob", "mean_token_logprob", "avg_token_logprob"),
    "prompt_variant": ("prompt_variant", "variant", "prompt_name"),
}
FLAG = {
    "problem_id": "--id-field",
    "pred_answer": "--answer-field",
    "sample_idx": "--sample-idx-field",
    "model": "--model-field",
    "correct": "--correct-field",
    "response": "--response-field",
    "prompt_tokens": "--prompt-tokens-field",
    "completion_tokens": "--completion-tokens-field",
    "cost_usd": "--cost-field",
    "completion_chars": "--chars-field",
    "mean_logprob": "--logprob-field",
    "prompt_variant": "--variant-field",
}


@dataclass(frozen=True)
class ImportOptions:
    """How to read a samples file.

    ``fields`` maps a samples column (``pred_answer``, ``sample_idx``, ...) to the input column
    holding it; unmapped ones are looked up among :data:`ALIASES`.  An empty string maps a field
    to nothing (e.g. ignore the file's ``correct`` column).  A file's own grades are kept and
    checked against ttcalloc's grader on ``check_rows`` rows drawn with ``check_seed``;
    ``regrade`` grades every row and uses ttcalloc's grades.  ``grader`` (numeric, math or exact)
    grades the samples with it instead of each problem's own grader (None: the problems').
    """

    fields: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    regrade: bool = False
    format: str | None = None
    check_rows: int = CHECK_ROWS
    check_seed: int = 0
    grader: str | None = None
    program_variants: tuple[str, ...] | None = None

    def check(self) -> None:
        if self.check_rows < 0:
            raise InputError(f"--check-rows {self.check_rows}: must be 0 or more")
        if self.grader is not None and self.grader not in GRADERS:
            raise InputError(f"--grader {self.grader!r}: expected numeric, math or exact")


@dataclass(frozen=True)
class ImportResult:
    """What ``import_samples`` wrote, with the grading agreement when the file had grades."""

    out: Path
    samples: int
    problems: int
    models: dict[str, int]
    no_answer: int
    accuracy: float
    columns: dict[str, str | None]
    renumbered: bool
    graded_by: str
    agreement: float | None = None
    disagreements: int | None = None
    disagreement_examples: list[dict[str, Any]] = field(default_factory=list)
    file_graded: int | None = None  # rows the file grades
    checked: int | None = None  # of those, rows ttcalloc's grader checked
    agreement_interval: tuple[float, float] | None = None  # 95%, when a sample was checked
    variants: dict[str, str] = field(default_factory=dict)  # prompt variant -> text or program
    kinds_guessed: bool = False  # the variants' kinds were taken from their names
    ignored: list[str] = field(default_factory=list)  # the file's columns read as no field

    def columns_line(self) -> str:
        """Which of the file's columns became which field, in one line."""
        pairs = [f"{col} -> {target}" for target, col in self.columns.items() if col is not None]
        return f"columns read: {', '.join(pairs)}"

    def ignored_line(self) -> str | None:
        """The file's columns read as no field, and the flags of the fields left unread (None:
        every column was read)."""
        if not self.ignored:
            return None
        flags = [FLAG[t] for t, col in self.columns.items() if col is None and t in FLAG]
        how = f" (to read one, map it: {', '.join(flags)})" if flags else ""
        return f"ignored columns: {', '.join(self.ignored)}{how}"

    def variants_line(self) -> str | None:
        """The prompt variants kept and how their answers were read (None: the file has none)."""
        if not self.variants:
            return None
        by_kind = {
            k: ", ".join(n for n, v in self.variants.items() if v == k) for k in ("text", "program")
        }
        parts = [f"{names} ({k})" for k, names in by_kind.items() if names]
        how = (
            "; program variants taken from their names (--program-variants NAMES says which)"
            if self.kinds_guessed
            else ""
        )
        return f"prompt variants: {'; '.join(parts)}{how}"

    def grading_line(self) -> str | None:
        """How the file's grades were checked, in one line (None: the file had no grades)."""
        if self.file_graded is None:
            return None
        if self.file_graded == 0:
            return "the file's grade column is empty: ttcalloc graded every row"
        rows = f"{self.file_graded:,}"
        if not self.checked or self.agreement is None:
            return (
                f"the file's grades of {rows} rows were kept unchecked "
                "(--check-rows 0; --regrade grades every row)"
            )
        agree = f"ttcalloc's grader agrees with the file's grades on {100 * self.agreement:.2f}%"
        differ = f"{self.disagreements} differ"
        if self.agreement_interval is None:
            return f"{agree} of all {rows} graded rows ({differ})"
        low, high = self.agreement_interval
        return (
            f"{agree} of {self.checked:,} rows checked, a seeded sample of the file's {rows} "
            f"graded rows ({differ}; 95% interval {100 * low:.2f}-{100 * high:.2f}%); the "
            "file's grades are kept (--regrade grades every row)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "samples": self.samples,
            "problems": self.problems,
            "models": self.models,
            "no_answer": self.no_answer,
            "accuracy": self.accuracy,
            "columns": self.columns,
            "renumbered_sample_idx": self.renumbered,
            "graded_by": self.graded_by,
            "agreement_with_file": self.agreement,
            "agreement_interval": list(self.agreement_interval)
            if self.agreement_interval
            else None,
            "file_graded_rows": self.file_graded,
            "checked_rows": self.checked,
            "disagreements": self.disagreements,
            "disagreement_examples": self.disagreement_examples,
            "prompt_variants": self.variants,
            "ignored_columns": self.ignored,
        }
