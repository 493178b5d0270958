"""``ttcalloc info``: what an artifact is and where it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ttcalloc.errors import MissingInputError
from ttcalloc.io import parquet_files, read_meta


def describe(path: Path) -> dict[str, Any]:
    """Kind, rows, columns and provenance of a Parquet artifact, read from its footer only."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path}: file not found")
    files = parquet_files(path)
    meta = read_meta(files[0])
    rows = 0
    for f in files:
        rows += pq.read_metadata(f).num_rows
    schema = pq.read_schema(files[0])
    return {
        "path": str(path),
        "artifact": meta.get("artifact", "unknown (no ttcalloc metadata)"),
        "schema_version": meta.get("schema_version"),
        "rows": rows,
        "parts": len(files),
        "columns": {name: str(schema.field(name).type) for name in schema.names},
        "provenance": {k: v for k, v in meta.items() if k not in ("artifact", "schema_version")},
    }


def render(info: dict[str, Any]) -> None:
    """Print ``describe``'s result on stderr."""
    from rich.markup import escape

    from ttcalloc.console import err_console

    prov = info["provenance"]
    err_console.print(
        f"[bold]{escape(info['path'])}[/bold]: {info['artifact']} "
        f"(schema v{info['schema_version']}), {info['rows']} rows in {info['parts']} part(s)"
    )
    err_console.print("columns: " + ", ".join(f"{k} {v}" for k, v in info["columns"].items()))
    if prov:
        err_console.print(
            f"written by ttcalloc {prov.get('tool_version')} `{prov.get('stage')}` "
            f"at {prov.get('created')}"
        )
        for key, value in prov.get("params", {}).items():
            err_console.print(f"  {key} = {escape(repr(value))}")
        for name, inp in prov.get("inputs", {}).items():
            err_console.print(f"  input {name}: {escape(inp['path'])} ({inp['fingerprint']})")
