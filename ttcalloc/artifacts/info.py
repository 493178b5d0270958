"""``ttcalloc info``: what an artifact is and where it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ttcalloc.artifacts.io import parquet_files, read_json_artifact, read_meta, short_error
from ttcalloc.artifacts.policy_file import check_policy
from ttcalloc.artifacts.schemas import POLICY, REPORT
from ttcalloc.common.errors import ArtifactError, MissingInputError
from ttcalloc.common.redact import redact_data

JSON_FILES = {"policy.json": POLICY, "report.json": REPORT}


def _json_path(path: Path) -> Path | None:
    if path.is_file() and path.name in JSON_FILES:
        return path
    for name in JSON_FILES:
        if path.is_dir() and (path / name).is_file():
            return path / name
    return None


def describe_json(path: Path) -> dict[str, Any]:
    """What a policy folder or report folder holds: its JSON summary and provenance."""
    data = read_json_artifact(path, JSON_FILES[path.name])
    if path.name == "policy.json":
        check_policy(data, path)
        summary = {
            "learner": data.get("learner"),
            "budget": data.get("budget"),
            "cost_unit": data.get("cost_unit"),
            "mu": data.get("mu"),
            "actions": [a.get("name") for a in data.get("actions", [])],
            "features": data.get("features"),
            "model_files": data.get("model_files"),
        }
        metrics = data.get("metrics", {})
        for key in ("oof_expected_cost", "oof_accuracy", "gain_vs_uniform", "train_problems"):
            summary[key] = metrics.get(key)
    else:
        policies = data.get("policies", [])
        summary = {
            "budgets": data.get("budgets"),
            "cost_unit": data.get("cost_unit"),
            "scored_on": data.get("scored_on"),
            "policies": sorted({p.get("policy") for p in policies}),
            "rows": len(policies),
            "plot": data.get("plot"),
        }
    return {
        "path": str(path.parent),
        "artifact": data.get("artifact", JSON_FILES[path.name].name),
        "schema_version": data.get("schema_version"),
        "summary": summary,
        "provenance": data.get("provenance", {}),
    }


def describe(path: Path) -> dict[str, Any]:
    """Kind, rows, columns and provenance of an artifact, credentials redacted (an artifact
    written before redaction may hold one)."""
    return dict(redact_data(_describe(Path(path))))


def _describe(path: Path) -> dict[str, Any]:
    """Kind, rows, columns and provenance of an artifact (Parquet: from its footer only)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path}: file not found")
    json_path = _json_path(path)
    if json_path is not None:
        return describe_json(json_path)
    files = parquet_files(path)
    meta = read_meta(files[0])
    rows = 0
    for f in files:
        try:
            rows += pq.read_metadata(f).num_rows
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise ArtifactError(f"{f}: not a readable Parquet file ({short_error(exc)})") from None
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

    from ttcalloc.common.console import err_console

    prov = info["provenance"]
    if "summary" in info:
        err_console.print(
            f"[bold]{escape(info['path'])}[/bold]: {info['artifact']} "
            f"(schema v{info['schema_version']})"
        )
        for key, value in info["summary"].items():
            err_console.print(f"  {key} = {escape(repr(value))}")
        if prov:
            err_console.print(f"written by ttcalloc {prov.get('tool_version')}")
        for name, inp in prov.get("inputs", {}).items():
            err_console.print(f"  input {name}: {escape(inp['path'])} ({inp['fingerprint']})")
        return
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
