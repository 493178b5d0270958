"""The folder of Parquet parts: what it already holds, the rows of a request, atomic parts."""

from __future__ import annotations

import collections
import os
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.artifacts.io import read_artifact, read_meta, write_artifact
from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.backends import Recorded
from ttcalloc.common.errors import InputError
from ttcalloc.common.redact import mask_echo, redact
from ttcalloc.sampler.journal import Journal
from ttcalloc.sampler.options import CONSISTENT
from ttcalloc.text import grading

if TYPE_CHECKING:
    import polars as pl

    from ttcalloc.backends import Choice, Request


class PartWriter:
    """Buffers sample rows and writes them as atomic Parquet parts; every row is first
    appended to the run's journal, so a kill loses none that was added."""

    def __init__(
        self,
        folder: Path,
        params: dict[str, Any],
        inputs: dict[str, Path],
        every: int,
        seconds: float,
    ) -> None:
        self.folder, self.params, self.inputs = folder, params, inputs
        self.every, self.seconds = every, seconds
        self.rows: list[dict[str, Any]] = []
        self.last = time.monotonic()
        self.seq = 0
        # sortable by time; pid and a random suffix keep concurrent runs apart
        now = datetime.now(timezone.utc)
        self.tag = f"{now:%Y%m%dT%H%M%S%f}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.journal = Journal(folder, self.tag, params, inputs)

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.journal.append(rows)
        self.rows.extend(rows)
        if len(self.rows) >= self.every or time.monotonic() - self.last >= self.seconds:
            self.flush()

    def flush(self) -> None:
        import polars as pl

        self.last = time.monotonic()
        if not self.rows:
            return
        df = pl.DataFrame(
            self.rows,
            schema_overrides={
                "timestamp": pl.Datetime("us", "UTC"),
                "mean_logprob": pl.Float64,
                "completion_chars": pl.Int64,
            },
            infer_schema_length=None,
        )
        path = self.folder / f"part-{self.tag}-{self.seq:05d}.parquet"
        write_artifact(df, path, SAMPLES, stage="sample", params=self.params, inputs=self.inputs)
        self.journal.clear()
        self.seq += 1
        self.rows = []


def existing_samples(
    out: Path, model: str, params: dict[str, Any], flag: str = "--out"
) -> pl.DataFrame | None:
    """Samples already in the folder for this model (after superseding), checking settings;
    ``flag`` names the folder in errors (``run``'s is ``--samples-out``)."""
    import polars as pl

    if out.exists() and not out.is_dir():
        raise InputError(f"{flag} {out}: exists and is a file; it must be a folder of parts")
    if not out.exists() or not any(out.glob("part-*.parquet")):
        return None
    for part in sorted(out.glob("part-*.parquet")):
        before = read_meta(part).get("params", {})
        if before.get("model") != model:
            continue
        for key in CONSISTENT:
            if key in before and before[key] != params[key]:
                raise InputError(
                    f"{flag} {out}: holds samples of {model} drawn with {key}={before[key]!r}, "
                    f"not {params[key]!r}; use the same settings or another {flag}"
                )
        break
    df = read_artifact(out, SAMPLES).df
    return df.filter(pl.col("model") == model)


def done_indices(existing: pl.DataFrame | None) -> dict[str, set[int]]:
    """Sample indices received without error, per problem (failed ones are to be retried)."""
    done: dict[str, set[int]] = collections.defaultdict(set)
    if existing is not None:
        ok = existing.filter(existing["error"].is_null())
        for pid, idx in ok.select("problem_id", "sample_idx").iter_rows():
            done[pid].add(idx)
    return done


def folder_samples(out: Path) -> int:
    """How many samples the folder holds (every model, after superseding)."""
    if out.exists() and any(out.glob("part-*.parquet")):
        return read_artifact(out, SAMPLES).df.height
    return 0


def sample_rows(
    problem: Mapping[str, Any],
    model: str,
    request: Request,
    choices: list[Choice | None],
    errors: list[str | None],
    latency: float,
    secrets: list[str],
) -> list[dict[str, Any]]:
    """The samples rows of one request, graded against the problem's gold answer; a credential
    in use (``secrets``: :func:`ttcalloc.common.redact.echoed`, read once per run) that the
    server echoed back in a completion or an error is masked."""
    now = datetime.now(timezone.utc)
    out = []
    for j, (choice, error) in enumerate(zip(choices, errors, strict=True)):
        pred = correct = None
        chars = len(choice.text) if choice and choice.text is not None else None
        if isinstance(choice, Recorded):  # served again: its answer and length as recorded
            chars = choice.completion_chars
        if choice is not None and error is None:
            if isinstance(choice, Recorded):
                pred = choice.pred_answer
            else:
                pred = grading.extract_answer(choice.text, problem["grader"])
            if problem["answer"] is not None:  # unlabeled: correct stays null
                correct = grading.is_correct(pred, problem["answer"], problem["grader"])
        out.append(
            {
                "problem_id": request.problem_id,
                "model": model,
                "sample_idx": request.first_idx + j,
                "response": _masked(choice.text if choice else None, secrets),
                "pred_answer": _masked(pred, secrets),
                "correct": correct,
                "prompt_tokens": choice.prompt_tokens if choice else None,
                "completion_tokens": choice.completion_tokens if choice else None,
                "cost_usd": choice.cost_usd if choice else None,
                "mean_logprob": choice.mean_logprob if choice else None,
                "completion_chars": chars,
                "latency_s": latency,
                "finish_reason": _masked(choice.finish_reason if choice else None, secrets),
                "error": None if error is None else redact(mask_echo(error, secrets)),
                "seed": request.seed + j,
                "timestamp": now,
            }
        )
    return out


def _masked(text: str | None, secrets: list[str]) -> str | None:
    return None if text is None else mask_echo(text, secrets)
