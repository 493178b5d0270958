"""Prompt variants: several prompts for the same question, drawn in turn.

A question may be asked with several prompts (chain of thought in two wordings, a program of
thought whose Python program is run for its answer, ...).  Answers that agree across kinds of
prompt are more often right than answers that agree within one (the "mixture of thought" of Yue
et al. 2024), so a cascade can learn from which kind each sample came.  Samples of a question
and model take the variants in turn, in an order seeded by the question (:func:`rotation`); the
replays of recorded samples take them in turn as well, so training sees what ``run`` draws.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ttcalloc.common.errors import InputError
from ttcalloc.common.hashing import seeded_int

KINDS = ("text", "program")
PROGRAM_PROMPT = (
    "Write a Python program that computes the answer to the following question. Store the "
    "final answer in a variable named `ans`. Reply with the program only, in a ```python "
    "block.\n\nQuestion: {question}"
)
# variant names taken as program-of-thought prompts when a file does not say (import)
PROGRAM_PREFIXES = ("pot", "pal", "program", "code")


@dataclass(frozen=True)
class PromptVariant:
    """One prompt: its name, how its answers are read, and its template (None: the built-in
    prompt per grader for a text variant; the built-in program prompt for a program one)."""

    name: str
    kind: str = "text"
    template: str | None = None
    label: str = "auto"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")

    def as_json(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "kind": self.kind,
            "label": self.label,
            "template": self.template,
        }


def guess_kind(name: str) -> str:
    """``program`` for names that say so (pot, pot1, pal_2, program-a; not potential or
    codellama_cot), else ``text``."""
    words = "|".join(PROGRAM_PREFIXES)
    return "program" if re.match(rf"({words})(\d+|[-_ ]|$)", name.lower()) else "text"


def rotation(names: Sequence[str], seed: int, *key: object) -> list[str]:
    """The order in which one question's samples of one model take the variants: a seeded
    permutation of ``names`` (sample ``i`` takes ``rotation[i % len(names)]``)."""
    ordered = sorted(set(names))
    return sorted(ordered, key=lambda n: (seeded_int("variant", seed, *key, n), n))


def variant_at(names: Sequence[str], seed: int, idx: int, *key: object) -> str:
    """The variant sample ``idx`` of a question (``key``: its id and the model) is drawn with."""
    order = rotation(names, seed, *key)
    return order[idx % len(order)]


def parse_variant(spec: str, flag: str = "--prompt-variant") -> PromptVariant:
    """``NAME=PROMPT``: PROMPT is a text prompt as ``--prompt`` takes it (auto, numeric, math,
    exact, a template file), ``program`` (the built-in program-of-thought prompt) or
    ``program:FILE`` (a program prompt from a template file)."""
    from ttcalloc.text.prompts import TEMPLATES, load_template

    name, sep, rest = spec.partition("=")
    name, rest = name.strip(), rest.strip()
    if not sep or not name or not rest:
        raise InputError(
            f"{flag} {spec!r}: expected NAME=PROMPT (PROMPT: auto, numeric, math, exact, a "
            "template file, program, or program:FILE)"
        )
    if rest == "program":
        return PromptVariant(name, "program", PROGRAM_PROMPT, "program")
    if rest.startswith("program:"):
        file = rest[len("program:") :].strip()
        if file not in ("auto", *TEMPLATES) and not Path(file).is_file():
            raise InputError(f"{flag} {spec!r}: program template file {file!r} not found")
        template, label = load_template(file, flag)
        return PromptVariant(name, "program", template, f"program:{label}")
    template, label = load_template(rest, flag)
    return PromptVariant(name, "text", template, label)


def check_names(variants: Sequence[PromptVariant], flag: str) -> None:
    """One-line error for a repeated or empty variant name."""
    seen: set[str] = set()
    for v in variants:
        if not v.name or v.name in seen:
            raise InputError(f"{flag} {v.name!r}: each variant needs its own, non-empty name")
        seen.add(v.name)
