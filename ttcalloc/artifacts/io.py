"""Reading and writing artifacts: atomic Parquet writes with provenance, validated reads.

Every write goes to a temporary file in the destination folder and is renamed into place, so a
crash or a bad input never leaves a partial or corrupted artifact behind.  The Parquet key-value
metadata ``ttcalloc`` holds JSON provenance: artifact name and schema version, tool version, the
stage and its parameters, and fingerprints of the stage's inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc import __version__
from ttcalloc.artifacts import recording
from ttcalloc.artifacts.missing import missing_message
from ttcalloc.artifacts.schemas import JsonSchema, Schema, commands
from ttcalloc.artifacts.validation import validate, validate_json
from ttcalloc.common.errors import (
    ArtifactError,
    DataError,
    InputError,
    MissingInputError,
    OutputError,
    os_reason,
)
from ttcalloc.common.redact import redact_data

if TYPE_CHECKING:
    import polars as pl

META_KEY = b"ttcalloc"


@dataclass(frozen=True)
class Artifact:
    """A validated table and the provenance stored with it (empty when written by another tool)."""

    df: pl.DataFrame
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, Any]:
        params = self.meta.get("params", {})
        return params if isinstance(params, dict) else {}


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-wide, so never toggle it later


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file is removed whatever happens; an OS error (no permission, disk full, a
    read-only file system) becomes an :class:`OutputError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({os_reason(exc)})") from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give what open() would
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({os_reason(exc)})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _resolved(path: Path) -> Path:
    return Path(path).expanduser().resolve(strict=False)


def check_output(
    out: Path,
    inputs: Mapping[str, Path | str | None],
    *,
    folder: bool = False,
    flag: str = "--out",
) -> Path:
    """Refuse an output path that would overwrite, or be mixed with, one of the stage's inputs.

    Paths are compared after resolving symlinks and ``..``: the output may not be an input, lie
    inside an input folder, or be a folder holding an input.  A file output may not name an
    existing folder (nor a folder output a file), and no part of the path may be a file.
    """
    out = Path(out)
    target = _resolved(out)
    for name, given in inputs.items():
        if given is None or "://" in str(given):
            continue
        src = _resolved(Path(given))
        if target == src:
            why = f"is the {name} input"
        elif src in target.parents:
            why = f"is inside the {name} input {given}"
        elif target in src.parents:
            why = f"holds the {name} input {given}"
        else:
            continue
        raise InputError(
            f"{flag} {out}: {why}; writing there would destroy it, choose another path"
        )
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise InputError(f"{flag} {out}: {parent} is a file, not a folder")
    if folder and out.exists() and not out.is_dir():
        raise InputError(f"{flag} {out}: a file is there; give a folder path")
    if not folder and out.is_dir():
        raise InputError(f"{flag} {out}: a folder is there; give a file path")
    return out


def output_folder(path: Path) -> Path:
    """Create the output folder ``path`` (a policy or report); a file already there is a
    one-line error, not a traceback."""
    path = check_output(path, {}, folder=True)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the folder ({os_reason(exc)})") from None
    return path


@contextlib.contextmanager
def atomic_folder(path: Path, marker: str) -> Iterator[Path]:
    """Yield a new temporary folder beside ``path``; if the block succeeds, it becomes ``path``.

    A folder already at ``path`` is replaced only if it holds ``marker`` (e.g. ``policy.json``:
    one this stage wrote) or nothing; otherwise nothing is touched and the error names it.  The
    old folder is renamed aside, the new one renamed into place and the old one removed, so a
    kill never leaves new files under an old ``marker``: ``path`` holds the old folder or the
    new one (a kill between the two renames leaves the old one as ``.<name>.*.old`` beside it).
    If the block fails, the temporary folder is removed and ``path`` is untouched.
    """
    path = check_output(path, {}, folder=True)
    if path.is_dir() and any(path.iterdir()) and not (path / marker).exists():
        raise InputError(
            f"--out {path}: a folder without {marker} is there (not written by this stage); "
            "choose another path or remove it"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the folder ({os_reason(exc)})") from None
    try:
        try:
            yield tmp
        except OutputError as exc:  # name the folder the user asked for, not the temporary one
            raise OutputError(str(exc).replace(str(tmp), str(path))) from None
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; give what mkdir would
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old)  # onto the empty folder mkdtemp made
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({os_reason(exc)})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    """Write a JSON file atomically (pretty-printed, UTF-8, trailing newline)."""
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_json_artifact(path: Path, data: dict[str, Any], schema: JsonSchema) -> dict[str, Any]:
    """Validate a JSON artifact and write it atomically, with the request being recorded.

    Returns what was written (``data`` plus the request, when one is being recorded).
    """
    validate_json(data, schema, f"{path} (being written)")
    if (req := recording.current()) is not None:
        data = {**data, recording.KEY: req}
    data = redact_data(data)  # no credential is ever stored
    write_json(path, data)
    return data


def fingerprint(path: Path) -> str:
    """A short content hash of a file, or of all Parquet parts of a folder (sorted by name)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            digest.update(f.name.encode())
        with f.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


def _input_record(p: Path, at: Path | None) -> dict[str, str]:
    """How an input is recorded: the path as given, its content fingerprint, and (with ``at``,
    the file being written) its absolute path and its path relative to ``at``'s folder."""
    record = {"path": str(p), "fingerprint": fingerprint(p)}
    if at is not None:
        absolute = _resolved(p)
        record["absolute"] = str(absolute)
        record["relative"] = os.path.relpath(absolute, _resolved(Path(at)).parent)
    return record


def provenance(
    schema: Schema | JsonSchema,
    stage: str,
    params: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Path] | None = None,
    at: Path | None = None,
) -> dict[str, Any]:
    """The provenance record stored with an artifact (``at``: the file it is stored in)."""
    return {
        "artifact": schema.name,
        "schema_version": schema.version,
        "tool": "ttcalloc",
        "tool_version": __version__,
        "stage": stage,
        "params": dict(params or {}),
        "inputs": {name: _input_record(Path(p), at) for name, p in (inputs or {}).items()},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_artifact(
    df: pl.DataFrame,
    path: Path,
    schema: Schema,
    *,
    stage: str,
    params: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Path] | None = None,
    extra_meta: Mapping[str, Any] | None = None,
) -> pl.DataFrame:
    """Validate ``df`` against ``schema`` and write it atomically to ``path`` with provenance.

    Returns the normalized frame that was written.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    out = validate(df, schema, f"{path} (being written)")
    meta = provenance(schema, stage, params, inputs, at=path)
    if extra_meta:
        meta.update(extra_meta)
    if (req := recording.current()) is not None:
        meta[recording.KEY] = req
    meta = redact_data(meta)  # no credential (e.g. in --api-base or a URL) is ever stored
    table = out.to_arrow()
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()}
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return out


def recorded_input(meta: Mapping[str, Any], name: str, artifact: Path, flag: str) -> Path | None:
    """The input ``name`` that ``artifact`` recorded in its provenance ``meta``, found again.

    Looked for relative to the artifact (so a folder of artifacts can move), at its absolute
    path, then as recorded (older artifacts: relative to where the stage ran); the first with
    the recorded fingerprint wins.  None when it is nowhere; an error naming ``flag`` when the
    file is there but its content changed since (an explicit ``flag`` uses it anyway).
    """
    record = (meta.get("inputs") or {}).get(name)
    if not isinstance(record, dict) or not record.get("path"):
        return None
    artifact = Path(artifact)
    base = artifact if artifact.is_dir() else artifact.parent
    given = Path(str(record["path"]))
    candidates = [
        base / str(record["relative"]) if record.get("relative") else None,
        Path(str(record["absolute"])) if record.get("absolute") else None,
        given if given.is_absolute() else None,
        given,
    ]
    wanted = record.get("fingerprint")
    changed = None
    seen: set[Path] = set()
    for path in candidates:
        if path is None or not path.exists() or _resolved(path) in seen:
            continue
        seen.add(_resolved(path))
        if wanted is None or fingerprint(path) == wanted:
            return path
        changed = changed or path
    if changed is not None:
        raise ArtifactError(
            f"{artifact}: its {name} input {changed} has changed since it was recorded "
            f"(fingerprint {wanted}); pass {flag} to use another file"
        )
    return None


def same_unit(
    meta: Mapping[str, Any], other: Mapping[str, Any], path: Path, other_path: Path
) -> None:
    """Refuse to combine two artifacts whose costs are in different units (tokens vs samples)."""
    a, b = meta.get("cost_unit"), other.get("cost_unit")
    if a and b and a != b and "unknown" not in (a, b):
        raise InputError(
            f"{other_path}: costs are in {b}, but {path} is in {a}; use artifacts of one cost unit"
        )


def read_meta(path: Path) -> dict[str, Any]:
    """The ttcalloc provenance of a Parquet file ({} when it has none)."""
    import pyarrow.parquet as pq

    try:
        raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
    except Exception as exc:  # pyarrow raises several types for non-Parquet files
        raise ArtifactError(f"{path}: not a readable Parquet file ({short_error(exc)})") from exc
    if not raw:
        return {}
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return meta if isinstance(meta, dict) else {}


def short_error(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters)."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def parquet_files(path: Path) -> list[Path]:
    """The Parquet files of an artifact: the file itself, or the sorted parts of a folder."""
    if path.is_dir():
        parts = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
        if not parts:
            raise ArtifactError(f"{path}: folder has no .parquet parts")
        return parts
    return [path]


def require_exists(path: Path, schema: Schema | JsonSchema) -> None:
    """Fail with a hint naming the command that writes this artifact when ``path`` is missing."""
    if not Path(path).exists():
        raise MissingInputError(missing_message(Path(path), schema))


def read_artifact(path: Path, schema: Schema) -> Artifact:
    """Read and validate a tabular artifact (a Parquet file or a folder of Parquet parts)."""
    import polars as pl

    path = Path(path)
    require_exists(path, schema)
    files = parquet_files(path)
    meta = read_meta(files[0])
    kind = meta.get("artifact")
    if kind and kind != schema.name:
        raise ArtifactError(
            f"{path}: this is a {kind} file, expected {schema.name} "
            f"(written by {commands(schema.producer)})"
        )
    version = meta.get("schema_version")
    if isinstance(version, int) and version > schema.version:
        raise ArtifactError(
            f"{path}: {schema.name} schema v{version} is newer than this ttcalloc "
            f"(v{schema.version}); upgrade ttcalloc"
        )
    try:
        frames = [pl.read_parquet(f) for f in files]
        df = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    except Exception as exc:
        raise ArtifactError(f"{path}: not a readable Parquet file ({short_error(exc)})") from exc
    if len(frames) > 1 and schema.superseded_by_null and schema.superseded_by_null in df.columns:
        df = supersede(df, schema)
    return Artifact(validate(df, schema, str(path)), path, meta)


def supersede(df: pl.DataFrame, schema: Schema) -> pl.DataFrame:
    """One row per key: rows where ``schema.superseded_by_null`` is null win, then later rows."""
    import polars as pl

    col = schema.superseded_by_null
    assert col is not None
    return (
        df.with_row_index("_row")
        .sort([pl.col(col).is_null(), pl.col("_row")], descending=[True, True])
        .unique(subset=list(schema.key), keep="first", maintain_order=True)
        .sort("_row")
        .drop("_row")
    )


def read_json_artifact(path: Path, schema: JsonSchema) -> dict[str, Any]:
    """Read and validate a JSON artifact."""
    path = Path(path)
    require_exists(path, schema)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({short_error(exc)})") from exc
    return validate_json(data, schema, str(path))


def check_known_ids(
    df: pl.DataFrame, problems: pl.DataFrame, source: Path, problems_path: Path, hint: str
) -> None:
    """Fail when ``df`` has a problem_id that ``problems`` lacks (one line naming both files)."""
    import polars as pl

    extra = df.filter(~pl.col("problem_id").is_in(problems["problem_id"].implode()))
    if extra.height:
        raise DataError(
            f"{source}: problem_id {extra['problem_id'][0]!r} is not in {problems_path} ({hint})"
        )
