"""Reading input files (JSONL, JSON, CSV, Parquet) and downloading URL sources into the cache."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.artifacts.io import atomic_path
from ttcalloc.common.errors import ArtifactError, InputError, MissingInputError
from ttcalloc.common.settings import cache_dir

if TYPE_CHECKING:
    import polars as pl

FORMATS = ("jsonl", "json", "csv", "parquet")
_URL = re.compile(r"^https?://", re.IGNORECASE)


def is_url(source: str) -> bool:
    return bool(_URL.match(source))


def resolve(source: str | Path, *, refresh: bool = False, progress: bool = True) -> Path:
    """A local path for ``source``: the file itself, or a cached download of a URL.

    Downloads go to ``$TTCALLOC_HOME/cache/downloads`` under a name derived from the URL, so a
    second call reads the cached copy (``refresh=True`` downloads again).
    """
    text = str(source)
    if not is_url(text):
        path = Path(text).expanduser()
        if not path.exists():
            raise MissingInputError(f"{path}: file not found")
        return path
    name = Path(text.split("?", 1)[0].rstrip("/")).name or "download"
    key = hashlib.sha256(text.encode()).hexdigest()[:12]
    target = cache_dir("downloads") / f"{key}-{name}"
    if target.exists() and not refresh:
        return target
    _download(text, target, progress=progress)
    return target


def _download(url: str, target: Path, *, progress: bool) -> None:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    from ttcalloc.common.console import err_console

    request = urllib.request.Request(url, headers={"User-Agent": "ttcalloc"})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp, atomic_path(target) as tmp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with (
                Progress(
                    TextColumn("downloading {task.description}"),
                    BarColumn(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    console=err_console,
                    disable=not progress or not sys.stderr.isatty(),
                    transient=True,
                ) as bar,
                tmp.open("wb") as fh,
            ):
                task = bar.add_task(target.name.split("-", 1)[-1], total=total)
                while True:
                    block = resp.read(1 << 16)
                    if not block:
                        break
                    fh.write(block)
                    bar.advance(task, len(block))
    except urllib.error.HTTPError as exc:
        raise InputError(f"{url}: download failed (HTTP {exc.code} {exc.reason})") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"{url}: download failed ({reason})") from exc


def detect_format(path: Path, fmt: str | None = None) -> str:
    """The file format from ``fmt`` or the file extension."""
    if fmt:
        if fmt not in FORMATS:
            raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    for s in reversed(suffixes):
        ext = s.lstrip(".")
        if ext in ("jsonl", "ndjson"):
            return "jsonl"
        if ext in FORMATS:
            return ext
    if path.is_dir() and any(path.glob("*.parquet")):
        return "parquet"
    raise InputError(
        f"{path}: unknown format (expected .jsonl, .json, .csv or .parquet; or pass --format)"
    )


def read_records(path: Path, fmt: str | None = None) -> list[dict[str, Any]]:
    """Read a file of records (one dict per row); JSONL errors name the line."""
    kind = detect_format(path, fmt)
    if kind == "jsonl":
        records: list[dict[str, Any]] = []
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                line = _utf8(raw, path, f"line {lineno}")
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ArtifactError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
                if not isinstance(obj, dict):
                    raise ArtifactError(f"{path}:{lineno}: expected a JSON object per line")
                records.append(obj)
        return records
    if kind == "json":
        try:
            data = json.loads(_utf8(path.read_bytes(), path, "the file"))
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
        if isinstance(data, dict):
            # {"data": [...]} and similar single-list wrappers
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else [data]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ArtifactError(f"{path}: expected a JSON list of objects")
        return data
    return read_frame(path, kind).to_dicts()


def _utf8(raw: bytes, path: Path, where: str) -> str:
    """``raw`` decoded as UTF-8; bytes that are not UTF-8 are one error naming the file and
    ``where`` (its line), and the byte's offset in it."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArtifactError(
            f"{path}: {where}: not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None


def read_frame(path: Path, fmt: str | None = None) -> pl.DataFrame:
    """Read a file as a polars DataFrame (any supported format)."""
    import polars as pl

    kind = detect_format(path, fmt)
    try:
        if kind == "parquet":
            if path.is_dir():
                files = sorted(path.glob("*.parquet"))
                return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
            return pl.read_parquet(path)
        if kind == "csv":
            return pl.read_csv(path, infer_schema_length=10000)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"{path}: cannot read as {kind} ({first})") from exc
    records = read_records(path, kind)
    if not records:
        return pl.DataFrame()
    try:
        return pl.from_dicts(records, infer_schema_length=None)
    except Exception as exc:
        raise ArtifactError(f"{path}: records do not form a table ({exc})") from exc
