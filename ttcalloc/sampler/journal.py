"""What makes a sample folder safe to kill: one run at a time, and every finished sample on disk.

- :func:`hold`: an exclusive ``fcntl`` lock on ``<folder>/.lock`` for the whole run; a second
  run on the same folder stops at once ("another run holds ...") instead of paying again.
- :class:`Journal`: each finished sample is appended (one JSON line per request, flushed to the
  OS) to ``<folder>/.journal-<run>.jsonl`` before it is counted, and the journal is emptied once its
  rows are in an atomic Parquet part.  The header line names the columns; a request's line is
  the list of its rows' value arrays (journals of earlier versions, a row or a list of rows as
  dicts per line, are read too).  A ``kill -9`` loses only the requests in flight; the
  next run folds what the journal holds into a part (:func:`recover`) before planning.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ttcalloc.artifacts.io import read_artifact, write_artifact
from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.common.errors import InputError, OutputError, os_reason
from ttcalloc.common.redact import redact_data
from ttcalloc.sampler.rows import COLUMNS

LOCK = ".lock"
PREFIX = ".journal-"
_ENCODE = json.JSONEncoder(default=str).encode  # one encoder for every line


@contextlib.contextmanager
def _locked(lock: Path, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` (created if need be; its folder must exist)
    for the block; held by another process: one :class:`InputError` line, ``busy``."""
    try:
        fh = lock.open("a")
    except OSError as exc:
        raise OutputError(f"{lock}: cannot write ({os_reason(exc)})") from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(busy) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _mkdir(folder: Path, lock: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{lock}: cannot write ({os_reason(exc)})") from None


@contextlib.contextmanager
def hold(folder: Path) -> Iterator[None]:
    """Hold the folder's lock for the block; another run holding it is a one-line error.

    A folder the block created and left empty (the run failed before any sample) is removed.
    """
    path = folder / LOCK
    created = not folder.exists()
    _mkdir(folder, path)
    busy = f"another run holds {folder} (lock {path}); wait for it to end or use another --out"
    with _locked(path, busy):
        try:
            yield
        finally:
            if created and [p.name for p in folder.iterdir()] == [LOCK]:
                path.unlink()
                folder.rmdir()


@contextlib.contextmanager
def hold_file(path: Path) -> Iterator[None]:
    """Hold a lock on an output file (``.NAME.lock`` beside it) for the block: two runs writing
    the same file (``run``'s answers, whatever their samples folders) cannot both pay and then
    replace each other's; the second is a one-line error before any request."""
    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    _mkdir(path.parent, lock)
    created = not lock.exists()
    busy = f"another run is writing {path} (lock {lock}); wait for it to end or use another --out"
    with _locked(lock, busy):
        try:
            yield
        finally:
            if created:
                with contextlib.suppress(OSError):
                    lock.unlink()


class Journal:
    """The finished samples of this run not yet in a part: a header naming the columns, then one
    JSON line per request, the list of its rows' value arrays."""

    def __init__(self, folder: Path, tag: str, params: dict[str, Any], inputs: dict[str, Path]):
        self.path = folder / f"{PREFIX}{tag}.jsonl"
        # the run's settings (--api-base may hold a key): never on disk unmasked, even for the
        # lifetime of a run or after a kill
        header = {
            "params": params,
            "inputs": {k: str(v) for k, v in inputs.items()},
            "columns": list(COLUMNS),
        }
        self.header = redact_data(header)
        self.fh: BinaryIO | None = None

    def append(self, rows: list[tuple[Any, ...]]) -> None:
        """Write a request's ``rows`` (value arrays in :data:`COLUMNS` order) through to the OS
        (they survive the process being killed)."""
        try:
            if self.fh is None:
                self.fh = self.path.open("ab", buffering=0)  # each write straight to the OS
                _write(self.fh, json.dumps(self.header).encode() + b"\n")
            # one line per request, its rows as value arrays (a fifth of the encoding time of a
            # dict per row); a line cut short by a kill is that request's, in flight
            _write(self.fh, (_ENCODE(rows) + "\n").encode())
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write ({os_reason(exc)})") from None

    def clear(self) -> None:
        """The rows are in a part now: start afresh."""
        if self.fh is not None:
            with contextlib.suppress(OSError):
                self.fh.close()
            self.fh = None
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot remove ({os_reason(exc)})") from None


def _write(fh: BinaryIO, data: bytes) -> None:
    """All of ``data`` to an unbuffered file (a raw write may take less than it is given)."""
    view = memoryview(data)
    while view:
        written = fh.write(view)
        if not written:
            raise OSError(errno.EIO, "nothing written")
        view = view[written:]


def pending_journals(folder: Path) -> list[Path]:
    """The journals a killed run left in ``folder`` (samples not yet in a part)."""
    return sorted(folder.glob(f"{PREFIX}*.jsonl")) if folder.is_dir() else []


def recover(folder: Path) -> int:
    """Fold the journals a killed run left in ``folder`` into parts; how many samples that adds.

    Call it with the folder's lock held: then no journal belongs to a live run.  Rows already
    in a part (the run died between writing the part and emptying its journal) are skipped.
    """
    import polars as pl

    journals = pending_journals(folder)
    added = 0
    for path in journals:
        header, rows = _read(path)
        rows = _not_in_parts(folder, rows)
        if rows:
            df = pl.DataFrame(rows, infer_schema_length=None).with_columns(
                pl.col("timestamp").str.to_datetime(time_zone="UTC", time_unit="us")
            )
            inputs = {k: Path(v) for k, v in header.get("inputs", {}).items() if Path(v).exists()}
            part = folder / f"part-{path.stem.removeprefix(PREFIX)}-recovered.parquet"
            write_artifact(
                df, part, SAMPLES, stage="sample", params=header.get("params"), inputs=inputs
            )
            added += len(rows)
        path.unlink()
    return added


def _read(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and rows (as dicts) of a journal; a line cut short by the kill is dropped.

    A line is a request's rows as value arrays (the header names their columns) or, written by
    earlier versions, one row or a list of rows as dicts.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    if not parsed:
        return {}, []
    header = parsed[0] if isinstance(parsed[0], dict) else {}
    columns = header.get("columns")
    rows = []
    for line in parsed[1:]:  # a request's rows, or (earlier versions) a row as a dict
        for r in line if isinstance(line, list) else [line]:
            if isinstance(r, list) and isinstance(columns, list) and len(r) == len(columns):
                r = dict(zip(columns, r, strict=True))
            if isinstance(r, dict) and "problem_id" in r:
                rows.append(r)
    return header, rows


def _not_in_parts(folder: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows or not any(folder.glob("part-*.parquet")):
        return rows
    df = read_artifact(folder, SAMPLES).df.select("problem_id", "model", "sample_idx", "error")
    have = {(p, m, i): e is None for p, m, i, e in df.iter_rows()}
    keep, seen = [], set()
    for r in rows:
        key = (r["problem_id"], r["model"], r["sample_idx"])
        ok = r.get("error") is None
        if key in seen or (key in have and (have[key] or not ok)):
            continue
        seen.add(key)
        keep.append(r)
    return keep
