"""What ``ttcalloc import`` takes and reports: field aliases, options and the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
}


@dataclass(frozen=True)
class ImportOptions:
    """How to read a samples file.

    ``fields`` maps a samples column (``pred_answer``, ``sample_idx``, ...) to the input column
    holding it; unmapped ones are looked up among :data:`ALIASES`.  An empty string maps a field
    to nothing (e.g. ignore the file's ``correct`` column).
    """

    fields: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    regrade: bool = False
    format: str | None = None


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
            "disagreements": self.disagreements,
            "disagreement_examples": self.disagreement_examples,
        }
