"""The samples rows of one request as value arrays: a tuple per sample, in :data:`COLUMNS` order.

A request's samples are graded (identical completions within a request once) into value arrays,
tuples of plain values; the journal writes them as they are (no dict per sample, the timestamp
already a string), and the part writer keeps them as one list per column (no object per sample
outlives its request: fewer garbage collections) from which :func:`part_frame` builds a part.
Whoever wants dicts (``run``'s policies, ``serve``) reads them from :class:`RequestRows`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, overload

from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.backends import Recorded
from ttcalloc.common.redact import mask_echo, redact
from ttcalloc.sampler.variants import program_pred
from ttcalloc.text import grading

if TYPE_CHECKING:
    import polars as pl

    from ttcalloc.backends import Choice, Request
    from ttcalloc.text.variants import PromptVariant

COLUMNS = tuple(c.name for c in SAMPLES.columns)  # the samples schema's columns, in its order
TIMESTAMP = COLUMNS.index("timestamp")
_UNANSWERED = (None,) * 8  # a failed sample's response ... completion_chars
_VARIANT = (None, None)  # prompt_variant, answer_from: the one prompt, read from the text
_DTYPES = [c.dtype for c in SAMPLES.columns]  # str, int, float, bool (datetime: the timestamp)


def stamp(now: datetime) -> str:
    """A timestamp as the journal holds it (ISO 8601, microseconds always written)."""
    return now.isoformat(timespec="microseconds")


class RequestRows(Sequence[dict[str, Any]]):
    """The rows of one request: ``values`` (value arrays, the timestamp a string) and, read as
    a sequence, one dict per row (the timestamp a ``datetime``), built when asked for."""

    def __init__(self, values: list[tuple[Any, ...]], now: datetime) -> None:
        self.values, self.now = values, now

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self._row(v) for v in self.values[i]]
        return self._row(self.values[i])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self._row(v) for v in self.values)

    def _row(self, values: tuple[Any, ...]) -> dict[str, Any]:
        row = dict(zip(COLUMNS, values, strict=True))
        row["timestamp"] = self.now
        return row


def request_rows(
    problem: Mapping[str, Any],
    model: str,
    request: Request,
    choices: list[Choice | None],
    errors: list[str | None],
    latency: float,
    secrets: list[str],
    variant: PromptVariant | None = None,
    answers: Sequence[str | None] | None = None,
) -> RequestRows:
    """The samples rows of one request, graded against the problem's gold answer; a credential
    in use (``secrets``: :func:`ttcalloc.common.redact.echoed`, read once per run) that the
    server echoed back in a completion or an error is masked.  ``variant``: the prompt variant
    the request was drawn with; of kind program, each sample's answer is its program's
    (``answers``, in order; None: the program gave none), graded as a text answer is."""
    now = datetime.now(timezone.utc)
    ts = stamp(now)
    pid, first, seed = request.problem_id, request.first_idx, request.seed
    answer, grader = problem["answer"], problem["grader"]
    # within a request the same strings come again and again: each masked and graded once
    masked: dict[str, str] = {}
    graded: dict[str | None, tuple[str | None, str | None, bool | None]] = {}

    def mask(text: str | None) -> str | None:
        if text is None or not secrets:
            return text
        out = masked.get(text)
        if out is None:
            out = masked[text] = mask_echo(text, secrets)
        return out

    def grade(text: str | None) -> tuple[str | None, str | None, bool | None]:
        """The masked response, masked answer and grade of a completion."""
        pred = grading.extract_answer(text, grader)
        correct = None if answer is None else grading.is_correct(pred, answer, grader)
        return mask(text), mask(pred), correct

    tail = _VARIANT if variant is None else (variant.name, variant.kind)
    program = variant is not None and variant.kind == "program"

    def run_answer(j: int) -> tuple[str | None, bool | None]:
        """Sample ``j``'s program answer (masked) and grade."""
        pred = program_pred(answers[j] if answers is not None else None, grader)
        correct = None if answer is None else grading.is_correct(pred, answer, grader)
        return mask(pred), correct

    out: list[tuple[Any, ...]] = []
    for j, (choice, error) in enumerate(zip(choices, errors, strict=True)):
        fail = None if error is None else redact(mask_echo(error, secrets))
        if choice is None:
            out.append(
                (pid, model, first + j, *_UNANSWERED, latency, None, fail, seed + j, ts, *tail)
            )
            continue
        text = choice.text
        if isinstance(choice, Recorded):  # served again: its answer and length as recorded
            chars = choice.completion_chars
            pred = correct = None
            if error is None:
                pred = choice.pred_answer
                if answer is not None:  # unlabeled: correct stays null
                    correct = grading.is_correct(pred, answer, grader)
            response, pred = mask(text), mask(pred)
        else:
            chars = len(text) if text is not None else None
            if error is not None:
                response, pred, correct = mask(text), None, None
            elif program:
                response = mask(text)
                pred, correct = run_answer(j)
            elif (got := graded.get(text)) is not None:
                response, pred, correct = got
            else:
                response, pred, correct = graded[text] = grade(text)
        reason = choice.finish_reason
        if secrets and reason is not None:
            reason = masked.get(reason) or mask(reason)
        out.append(
            (
                pid,
                model,
                first + j,
                response,
                pred,
                correct,
                choice.prompt_tokens,
                choice.completion_tokens,
                choice.cost_usd,
                choice.mean_logprob,
                chars,
                latency,
                reason,
                fail,
                seed + j,
                ts,
                *tail,
            )
        )
    return RequestRows(out, now)


def part_frame(columns: Sequence[Sequence[Any]]) -> pl.DataFrame:
    """The frame of a part from its columns' values (in :data:`COLUMNS` order); a column whose
    values are not all of the samples schema's type (an odd server's float token count): the
    whole frame built from dicts as polars infers it (as the sampler always did)."""
    import polars as pl
    import pyarrow as pa

    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
    arrays: dict[str, Any] = {}
    try:
        for i, (name, dtype) in enumerate(zip(COLUMNS, _DTYPES, strict=True)):
            if i == TIMESTAMP:
                continue
            array = pa.array(columns[i])  # inferred: nothing coerced
            if array.type == pa.null():
                array = array.cast(types[dtype])
            if array.type != types[dtype]:
                raise TypeError(f"{name}: {array.type}")
            arrays[name] = array
        arrays["timestamp"] = pa.array(
            _datetimes(columns[TIMESTAMP]), type=pa.timestamp("us", tz="UTC")
        )
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        rows = [dict(zip(COLUMNS, v, strict=True)) for v in zip(*columns, strict=True)]
        for row in rows:
            row["timestamp"] = datetime.fromisoformat(row["timestamp"])
        return dicts_frame(rows)
    frame = pl.from_arrow(pa.table({name: arrays[name] for name in COLUMNS}))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _datetimes(stamps: Sequence[str]) -> list[datetime]:
    """The timestamps as datetimes (a request's rows share one: each parsed once)."""
    parsed = {s: datetime.fromisoformat(s) for s in set(stamps)}
    return [parsed[s] for s in stamps]


def dicts_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A part's frame from one dict per row, as polars infers it (the sampler's way before
    value arrays, and the fallback for values of another type)."""
    import polars as pl

    return pl.DataFrame(
        rows,
        schema_overrides={
            "timestamp": pl.Datetime("us", "UTC"),
            "mean_logprob": pl.Float64,
            "completion_chars": pl.Int64,
        },
        infer_schema_length=None,
    )
