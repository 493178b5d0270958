"""Prompt variants in the sampler: which variant a sample is drawn with, the requests of one
variant each, and the answers of program variants (their programs run in child processes).

Sample ``idx`` of a question and model is drawn with :func:`ttcalloc.text.variants.variant_at`
(the run's seed, the question's id and the model; on ``replay:PATH`` the model its samples were
drawn with, :func:`ttcalloc.backends.replay.rotation_key`); a request holds samples of one
variant, so the indices of a question are cut where the variant changes (one request per sample
when they alternate).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ttcalloc.backends import Recorded
from ttcalloc.backends.replay import rotation_key
from ttcalloc.common.console import warn
from ttcalloc.text import grading
from ttcalloc.text.programs import ProgramOptions, extract_program, run_programs
from ttcalloc.text.variants import PromptVariant, variant_at

if TYPE_CHECKING:
    from ttcalloc.backends import Choice, Request
    from ttcalloc.sampler.options import SampleOptions

PROGRAM_WARNING = (
    "prompt variants of kind program: the Python programs the model writes are executed in "
    "child processes on this machine (time and memory limits; NOT a sandbox)"
)


def variant_of(options: SampleOptions, problem_id: str, idx: int) -> PromptVariant | None:
    """The variant sample ``idx`` of ``problem_id`` on ``options.model`` is drawn with; None
    without variants (the one prompt)."""
    variants = options.prompt_variants
    if not variants:
        return None
    names = [v.name for v in variants]
    key = rotation_key(options.model)  # replay:PATH: the model its samples were drawn with
    return named_variant(options, variant_at(names, options.seed, idx, problem_id, key))


def named_variant(options: SampleOptions, name: str | None) -> PromptVariant | None:
    """The variant called ``name`` (a request's ``variant``); None for None."""
    return next((v for v in options.prompt_variants if v.name == name), None)


def split_by_variant(
    options: SampleOptions, problem_id: str, first: int, n: int
) -> list[tuple[int, int]]:
    """Samples ``first .. first + n - 1`` cut into runs ``(first, n)`` of one variant each."""
    if not options.prompt_variants or n <= 1:
        return [(first, n)]
    out: list[tuple[int, int]] = []
    start, current = first, variant_of(options, problem_id, first)
    for i in range(first + 1, first + n):
        v = variant_of(options, problem_id, i)
        if v != current:
            out.append((start, i - start))
            start, current = i, v
    out.append((start, first + n - start))
    return out


def template_of(variant: PromptVariant | None, template: str | None) -> str | None:
    """The template a request is rendered with: its variant's (None: built-in per grader), else
    the one prompt's."""
    return template if variant is None else variant.template


def has_programs(variants: Sequence[PromptVariant]) -> bool:
    return any(v.kind == "program" for v in variants)


def warn_programs(variants: Sequence[PromptVariant]) -> None:
    """The run's one warning that model-written programs will be executed."""
    if has_programs(variants):
        warn(PROGRAM_WARNING)


def program_answers(
    choices: Sequence[Choice | None],
    errors: Sequence[str | None],
    options: ProgramOptions = ProgramOptions(),
) -> list[str | None]:
    """Each choice's program run for its answer (None: no choice, an error, no program, or a
    program that failed); the request's programs run together."""
    programs = [
        extract_program(c.text) if c is not None and e is None and c.text else None
        for c, e in zip(choices, errors, strict=True)
    ]
    if not any(p is not None for p in programs):
        return [None] * len(programs)
    return run_programs(programs, options)


async def request_answers(
    options: SampleOptions,
    request: Request,
    choices: list[Choice | None],
    errors: list[str | None],
) -> tuple[PromptVariant | None, list[str | None] | None]:
    """The variant ``request`` was drawn with and, for a program variant, each sample's
    program answer (its programs run off the event loop); None answers: not a program
    variant, or samples served again (replay: their recorded answers are kept).  What
    ``sample``, ``run`` and ``serve`` do with a request's choices before grading them."""
    variant = named_variant(options, request.variant)
    replayed = any(isinstance(c, Recorded) for c in choices)
    if variant is None or variant.kind != "program" or replayed:
        return variant, None
    return variant, await asyncio.to_thread(program_answers, choices, errors)


def program_pred(answer: str | None, grader: str) -> str | None:
    """A program's answer as a text answer's extracted answer is kept: a number in the numeric
    grader's canonical form, else the text with its whitespace collapsed; None for none."""
    if answer is None or grading.is_no_answer(answer):
        return None
    if grader == "numeric":
        return grading.normalize(answer, "numeric")
    return " ".join(answer.split()) or None
