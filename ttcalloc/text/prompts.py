"""Built-in prompt templates, one per grader kind, or a template file with ``{question}``."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ttcalloc.common.errors import InputError

TEMPLATES = {
    "numeric": (
        "Solve the following math problem. Think step by step, then write the final answer "
        "as a number on the last line in the form '#### <number>'.\n\nProblem: {question}"
    ),
    "math": (
        "Solve the following math problem. Think step by step, then put the final answer in "
        "\\boxed{{}}.\n\nProblem: {question}"
    ),
    "exact": (
        "Answer the following question. Write the final answer on the last line in the form "
        "'#### <answer>'.\n\nQuestion: {question}"
    ),
}


def load_template(spec: str | None, flag: str = "--prompt") -> tuple[str | None, str]:
    """``(template or None for built-in per grader, label)`` from ``--prompt``.

    ``spec`` is None or ``auto`` (the built-in template matching each problem's grader), a
    built-in name (numeric, math, exact), or a path to a text file containing ``{question}``.
    """
    if spec is None or spec == "auto":
        return None, "auto"
    if spec in TEMPLATES:
        return TEMPLATES[spec], spec
    path = Path(spec)
    if not path.exists():
        raise InputError(
            f"{flag} {spec!r}: not a built-in template (auto, numeric, math, exact) nor a file"
        )
    text = path.read_text(encoding="utf-8")
    if "{question}" not in text:
        raise InputError(f"{flag} {spec}: the template has no {{question}} placeholder")
    try:
        text.format(question="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise InputError(
            f"{flag} {spec}: bad template ({exc}); double literal braces as {{{{ }}}}"
        ) from exc
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return text, f"file:{path.name}:{digest}"


def render(template: str | None, grader: str, question: str) -> str:
    return (template or TEMPLATES[grader]).format(question=question)
