"""The folder of Parquet parts: what it already holds, and atomic parts of the rows received."""

from __future__ import annotations

import collections
import os
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.artifacts.io import read_artifact, read_meta, write_artifact
from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.common.errors import InputError
from ttcalloc.sampler.journal import Journal
from ttcalloc.sampler.options import CONSISTENT
from ttcalloc.sampler.rows import COLUMNS, part_frame

if TYPE_CHECKING:
    import polars as pl


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
        self.columns: list[list[Any]] = [[] for _ in COLUMNS]  # the rows not yet in a part
        self.last = time.monotonic()
        self.seq = 0
        # sortable by time; pid and a random suffix keep concurrent runs apart
        now = datetime.now(timezone.utc)
        self.tag = f"{now:%Y%m%dT%H%M%S%f}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.journal = Journal(folder, self.tag, params, inputs)

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        """Journal and buffer a request's rows (value arrays: :mod:`~ttcalloc.sampler.rows`)."""
        if not rows:
            return
        self.journal.append(rows)
        for column, values in zip(self.columns, zip(*rows, strict=True), strict=True):
            column.extend(values)
        if len(self.columns[0]) >= self.every or time.monotonic() - self.last >= self.seconds:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if not self.columns[0]:
            return
        df = part_frame(self.columns)
        path = self.folder / f"part-{self.tag}-{self.seq:05d}.parquet"
        write_artifact(df, path, SAMPLES, stage="sample", params=self.params, inputs=self.inputs)
        self.journal.clear()
        self.seq += 1
        self.columns = [[] for _ in COLUMNS]


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
            if key in before and before[key] != params.get(key):
                was, now = _shown(key, before[key]), _shown(key, params.get(key))
                raise InputError(
                    f"{flag} {out}: holds samples of {model} drawn with {key}={was}, "
                    f"not {now}; use the same settings or another {flag}"
                )
        break
    df = read_artifact(out, SAMPLES).df
    return df.filter(pl.col("model") == model)


def _shown(key: str, value: Any) -> str:
    """A setting as an error names it (prompt variants: NAME=LABEL each, not their texts)."""
    if key == "prompt_variants" and isinstance(value, list):
        return ",".join(
            f"{v.get('name')}={v.get('label')}" if isinstance(v, dict) else repr(v) for v in value
        )
    return repr(value)


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
