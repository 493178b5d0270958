"""The batch journal of a samples folder: ``<folder>/.batches.json``.

Every batch a run submits has an entry, written (atomically, fsynced) at each step before the
next: the custom ids it holds (before the file is uploaded), its input file id (once
uploaded), its batch id (as soon as ``create`` returns).  A rerun re-attaches to every entry,
and never puts a custom id an entry holds into another batch.  An entry is removed once its
results are in parts.

The one window the journal cannot close: killed after the provider created a batch and before
its id was written.  The entry then has a file id and no batch id; the rerun lists the
provider's batches and re-attaches to the one tagged with the entry's key (batch metadata) or
created from its file, and creates one only when none is found.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ttcalloc.artifacts.io import atomic_path
from ttcalloc.common.errors import InputError, OutputError, os_reason
from ttcalloc.common.redact import redact_data
from ttcalloc.sampler.options import CONSISTENT

STATE = ".batches.json"
VERSION = 1


@dataclass
class Entry:
    """One batch: its custom ids and how far its submission got."""

    key: str  # tags the batch (metadata) so a rerun finds it if its id was never written
    cids: list[str]
    attempt: int = 0  # 1: the failed or expired requests of an earlier batch, sent again
    worst: float | None = None  # worst-case dollars, reserved under --max-cost
    file_id: str | None = None
    batch_id: str | None = None
    status: str = "planned"  # planned, uploaded, then the provider's status
    submitted_at: float | None = None  # epoch seconds


@dataclass
class BatchState:
    """The batch journal of one folder (one run holds the folder's lock at a time)."""

    path: Path
    model: str
    params: dict[str, Any]
    entries: list[Entry] = field(default_factory=list)

    @classmethod
    def load(cls, folder: Path, model: str, params: dict[str, Any]) -> BatchState:
        """The folder's journal; one whose batches were submitted with other settings is a
        one-line error (their results could not join these parts)."""
        path = folder / STATE
        if not path.exists():
            return cls(path, model, params)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            version = data.get("version")
            if isinstance(version, int) and version > VERSION:
                raise InputError(
                    f"{path}: a batch journal of a newer ttcalloc (version {version}; this one "
                    f"reads {VERSION}); upgrade to collect its batches"
                )
            entries = [_entry(e, i) for i, e in enumerate(data["entries"])]
            before, was = data["params"], data["model"]
            if not isinstance(before, dict):
                raise ValueError("params is not an object")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: unreadable batch journal ({exc})") from None
        if entries and was != model:
            raise InputError(
                f"{path}: holds {len(entries)} batches of {was}, not {model}; rerun with "
                f"--model {was} --batch to collect them first"
            )
        for key in CONSISTENT:
            if entries and key in before and before[key] != params.get(key):
                raise InputError(
                    f"{path}: holds batches submitted with {key}={before[key]!r}, not "
                    f"{params.get(key)!r}; rerun with the same settings to collect them"
                )
        return cls(path, model, params, entries)

    def held(self) -> Iterator[str]:
        """The custom ids the journal's batches hold."""
        for e in self.entries:
            yield from e.cids

    def add(self, cids: list[str], attempt: int, worst: float | None) -> Entry:
        entry = Entry(key=f"ttc-{uuid.uuid4().hex}", cids=cids, attempt=attempt, worst=worst)
        self.entries.append(entry)
        return entry

    def remove(self, entry: Entry) -> None:
        self.entries.remove(entry)

    def save(self) -> None:
        """Write the journal atomically and durably (fsynced file and folder); an empty
        journal is removed."""
        if not self.entries:
            try:
                self.path.unlink(missing_ok=True)
            except OSError as exc:
                raise OutputError(f"{self.path}: cannot remove ({os_reason(exc)})") from None
            return
        data = {
            "version": VERSION,
            "model": self.model,
            "params": redact_data(self.params),
            "entries": [asdict(e) for e in self.entries],
        }
        text = json.dumps(data, indent=1)
        with atomic_path(self.path) as tmp, tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:  # some file systems cannot sync a folder; the rename is done
            pass


def _entry(raw: Any, i: int) -> Entry:
    """Entry ``i`` of a journal, its fields' types checked (ValueError names the field)."""
    if not isinstance(raw, dict):
        raise ValueError(f"entries[{i}] is not an object")
    entry = Entry(**raw)
    texts = {"key": entry.key, "status": entry.status}
    optional = {"file_id": entry.file_id, "batch_id": entry.batch_id}
    bad = [k for k, v in texts.items() if not isinstance(v, str)]
    bad += [k for k, v in optional.items() if v is not None and not isinstance(v, str)]
    if not (isinstance(entry.cids, list) and all(isinstance(c, str) for c in entry.cids)):
        bad.append("cids")
    if not isinstance(entry.attempt, int) or entry.attempt not in (0, 1):
        bad.append("attempt")
    for k, v in {"worst": entry.worst, "submitted_at": entry.submitted_at}.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            bad.append(k)
    if bad:
        raise ValueError(f"entries[{i}].{bad[0]} has the wrong type or value")
    return entry


def pending_batches(folder: Path) -> int:
    """How many batches the folder's journal holds (0 when none)."""
    path = folder / STATE
    if not path.is_file():
        return 0
    try:
        return len(json.loads(path.read_text(encoding="utf-8")).get("entries", []))
    except (OSError, ValueError, AttributeError):
        return 1  # unreadable: treat as holding batches, so nothing is paid twice
