"""What is left to sample: missing sample indices per problem, and the requests that fetch them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ttcalloc.backends import Request
from ttcalloc.sampler.options import SampleOptions, request_seed
from ttcalloc.sampler.variants import split_by_variant, template_of, variant_of
from ttcalloc.text import prompts

if TYPE_CHECKING:
    import polars as pl


def missing_indices(
    problems: pl.DataFrame, n: int, done: dict[str, set[int]]
) -> dict[str, list[int]]:
    """Sample indices still needed per problem (problems with none missing are left out)."""
    out: dict[str, list[int]] = {}
    for pid in problems["problem_id"].to_list():
        have = done.get(pid)
        missing = [i for i in range(n) if not have or i not in have]
        if missing:
            out[pid] = missing
    return out


def gold_answers(
    problems: pl.DataFrame, missing: dict[str, list[int]]
) -> dict[str, dict[str, Any]]:
    """Gold answer and grader of each problem still to sample, for grading its responses."""
    return {
        pid: {"answer": answer, "grader": grader}
        for pid, answer, grader in problems.select("problem_id", "answer", "grader").iter_rows()
        if pid in missing
    }


def requests(
    problems: pl.DataFrame,
    options: SampleOptions,
    template: str | None,
    missing: dict[str, list[int]],
    per_request: int,
) -> Iterator[Request]:
    """Requests, generated lazily so memory does not grow with the number of problems (with
    prompt variants, each request holds samples of one variant)."""
    for row in problems.iter_rows(named=True):
        pid = row["problem_id"]
        todo = missing.get(pid)
        if not todo:
            continue
        for lo, hi in _runs(todo):
            for first in range(lo, hi + 1, per_request):
                m = min(per_request, hi + 1 - first)
                for start, k in split_by_variant(options, pid, first, m):
                    yield request_for(options, template, row, start, k)


def _messages(system: str | None, content: str) -> list[dict[str, str]]:
    messages = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": content})
    return messages


def _runs(todo: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs ``(first, last)`` of the sorted indices ``todo`` (not empty)."""
    runs: list[tuple[int, int]] = []
    start = prev = todo[0]
    for i in todo[1:]:
        if i != prev + 1:
            runs.append((start, prev))
            start = i
        prev = i
    runs.append((start, prev))
    return runs


def request_for(
    options: SampleOptions,
    template: str | None,
    problem: dict[str, Any],
    first: int,
    n: int,
) -> Request:
    """The request for samples ``first .. first + n - 1`` of one problem (a row of problems:
    problem_id, question, grader, answer), with the same prompt and seeds as :func:`requests`
    (with prompt variants: the prompt of sample ``first``'s variant, which all ``n`` share)."""
    pid = problem["problem_id"]
    variant = variant_of(options, pid, first)
    template = template_of(variant, template)
    messages = _messages(
        options.system, prompts.render(template, problem["grader"], problem["question"])
    )
    seed = request_seed(options.seed, pid, options.model) + first
    request = Request(pid, first, n, messages, seed, problem["question"], problem["answer"] or "")
    if variant is None:
        return request
    # the variants come in turn: sample ``first`` is its variant's ``first // V``-th
    return replace(request, variant=variant.name, variant_idx=first // len(options.prompt_variants))
