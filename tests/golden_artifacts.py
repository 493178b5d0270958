"""Golden artifacts that do not depend on the machine's floating-point kernels.

An artifact is reduced to its content (Parquet: column names and rows, without the provenance
metadata; JSON: without provenance, request and timestamps) and split in two:

- the *skeleton*: the content with every float replaced by a placeholder.  Everything that is
  not a float (problem ids, chosen actions, decisions, counts, flags, strings, column names,
  the number and position of the floats) is compared exactly, through a SHA-256 digest;
- the *floats*, in the order they appear, compared one by one to ``REL_TOL`` relative and
  ``ABS_TOL`` absolute tolerance (NaN equals NaN).

Why: the last bits of a float depend on the BLAS kernel OpenBLAS picks for the processor
(a matrix product in the bootstrap sums in another order on Haswell than on SkylakeX), so a
digest of ``repr(float)`` passed on one machine and failed on another.  Differences seen
between kernels are below 1e-15 relative; a change of behaviour moves a float by far more
than 1e-9, or changes the skeleton.

The digests live in ``tests/golden/artifacts.json`` and the floats in
``tests/golden/floats.parquet`` (one row per pipeline and artifact, the values as a list).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

REL_TOL = 1e-9
ABS_TOL = 1e-12
FLOAT = "<float>"
VOLATILE = {
    "provenance",
    "request",
    "created",
    "created_at",
    "xgboost_version",
    "path",
    "out",
    "timestamp",
    "latency_s",
}


def content(path: Path) -> Any:
    """What an artifact holds, without provenance, paths and timestamps (floats kept)."""
    if path.is_dir() and (path / "policy.json").exists():
        return content(path / "policy.json")
    if path.is_dir() and (path / "report.json").exists():
        return content(path / "report.json")
    if path.suffix == ".json":
        return _scrub(json.loads(path.read_text()))
    table = ds.dataset(str(path), format="parquet").to_table()
    return {"columns": table.column_names, "rows": _scrub(table.to_pylist())}


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


@dataclass(frozen=True)
class Fingerprint:
    """An artifact's exact part (digest of the skeleton) and its floats with their places."""

    digest: str
    floats: list[float]
    places: list[str]


def fingerprint(value: Any) -> Fingerprint:
    """Split ``value`` into the digest of its skeleton and its floats, in order."""
    floats: list[float] = []
    places: list[str] = []

    def skeleton(v: Any, where: str) -> Any:
        if isinstance(v, dict):
            return {k: skeleton(x, f"{where}.{k}") for k, x in v.items()}
        if isinstance(v, list):
            return [skeleton(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, float):
            floats.append(v)
            places.append(where)
            return FLOAT
        return v

    text = json.dumps(skeleton(value, ""), sort_keys=True, default=str)
    return Fingerprint(hashlib.sha256(text.encode()).hexdigest(), floats, places)


def close(a: float, b: float) -> bool:
    """Equal within the stated tolerance (NaN equals NaN, infinities must match)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def differences(got: Fingerprint, digest: str, stored: list[float], limit: int = 3) -> list[str]:
    """How ``got`` differs from the stored digest and floats (empty: the same)."""
    if got.digest != digest:
        return ["non-float content changed (ids, actions, decisions, counts, strings or shape)"]
    if len(got.floats) != len(stored):
        return [f"{len(got.floats)} floats against {len(stored)} stored"]
    out = [
        f"{place}: {new!r} against {old!r}"
        for place, new, old in zip(got.places, got.floats, stored, strict=True)
        if not close(new, old)
    ]
    if len(out) > limit:
        out = [*out[:limit], f"... {len(out) - limit} more"]
    return out


def load(digests: Path, floats: Path, pipeline: str) -> dict[str, tuple[str, list[float]]]:
    """The stored digest and floats of every artifact of ``pipeline`` (empty if none)."""
    if not digests.exists() or not floats.exists():
        return {}
    stored = json.loads(digests.read_text()).get(pipeline, {})
    values = {
        row["artifact"]: row["values"]
        for row in pq.read_table(floats).to_pylist()
        if row["pipeline"] == pipeline
    }
    return {name: (digest, values.get(name, [])) for name, digest in stored.items()}


def store(digests: Path, floats: Path, pipeline: str, got: dict[str, Fingerprint]) -> None:
    """Replace ``pipeline``'s stored fingerprints with ``got`` (other pipelines kept).

    An artifact whose content matches the stored one within the tolerance keeps its stored
    floats, so regenerating on another processor rewrites only what really changed.
    """
    before = load(digests, floats, pipeline)
    got = {
        name: Fingerprint(fp.digest, before[name][1], fp.places)
        if name in before and not differences(fp, *before[name])
        else fp
        for name, fp in got.items()
    }
    all_digests = json.loads(digests.read_text()) if digests.exists() else {}
    all_digests[pipeline] = {name: fp.digest for name, fp in sorted(got.items())}
    digests.write_text(json.dumps(all_digests, indent=2, sort_keys=True) + "\n")
    rows = pq.read_table(floats).to_pylist() if floats.exists() else []
    rows = [r for r in rows if r["pipeline"] != pipeline]
    rows += [
        {"pipeline": pipeline, "artifact": name, "values": fp.floats}
        for name, fp in sorted(got.items())
    ]
    rows.sort(key=lambda r: (r["pipeline"], r["artifact"]))
    schema = pa.schema(
        [("pipeline", pa.string()), ("artifact", pa.string()), ("values", pa.list_(pa.float64()))]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), floats, compression="zstd")
