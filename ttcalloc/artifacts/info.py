"""``ttcalloc info``: what an artifact is and where it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ttcalloc.artifacts.io import parquet_files, read_json_artifact, read_meta, short_error
from ttcalloc.artifacts.policy_file import (
    CASCADE_LEARNER,
    check_policy,
    read_cascade_policy,
    refuse_budget_folders,
)
from ttcalloc.artifacts.sample_replays import describe_values
from ttcalloc.artifacts.schemas import POLICY, REPORT
from ttcalloc.common.errors import ArtifactError, MissingInputError
from ttcalloc.common.redact import redact_data

JSON_FILES = {"policy.json": POLICY, "report.json": REPORT}


def _json_path(path: Path) -> Path | None:
    refuse_budget_folders(path)
    if path.is_file() and path.name in JSON_FILES:
        return path
    for name in JSON_FILES:
        if path.is_dir() and (path / name).is_file():
            return path / name
    return None


def describe_json(path: Path) -> dict[str, Any]:
    """What a policy folder or report folder holds: its JSON summary and provenance."""
    data = read_json_artifact(path, JSON_FILES[path.name])
    notes: list[str] = []
    if path.name == "policy.json" and data.get("learner") == CASCADE_LEARNER:
        read_cascade_policy(path.parent)
        summary, notes = _cascade_summary(data)
    elif path.name == "policy.json":
        check_policy(data, path)
        summary, notes = _policy_summary(data)
    elif isinstance(data.get("policies"), dict):  # a cascade report: rows per policy name
        summary = {
            "budgets": data.get("budgets"),
            "cost_unit": data.get("cost_unit"),
            "policies": sorted(data["policies"]),
            "rows": sum(len(p.get("rows", [])) for p in data["policies"].values()),
            "recalibrated": data.get("recalibrated"),
        }
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
        "notes": notes,
        "provenance": data.get("provenance", {}),
    }


def _cascade_summary(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What a cascade's policy.json says: its models in order, caps, and how often it reaches
    each model on the train replays."""
    cas = data.get("cascade") or {}
    metrics = data.get("metrics") or {}
    summary = {
        "learner": data.get("learner"),
        "budget": data.get("budget"),
        "cost_unit": data.get("cost_unit"),
        "models": cas.get("models"),
        "caps": cas.get("caps"),
        "answer": cas.get("answer"),
        "prompt_kinds": bool(cas.get("prompt_kinds", False)),
    }
    reached = metrics.get("reached") or {}
    notes = (
        ["reaches (train replays): " + ", ".join(f"{m} {float(v):.0%}" for m, v in reached.items())]
        if reached
        else []
    )
    variants = data.get("prompt_variants") or []
    if isinstance(variants, list) and variants:
        shown = [f"{v.get('name')} ({v.get('kind')})" for v in variants if isinstance(v, dict)]
        notes.append("prompt variants, drawn in turn: " + ", ".join(shown))
    return summary, notes


def _policy_summary(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What a policy.json says about the policy, and notes in words (adaptive: its signals)."""
    summary = {
        "learner": data.get("learner"),
        "budget": data.get("budget"),
        "cost_unit": data.get("cost_unit"),
    }
    notes = []
    adaptive = data.get("adaptive")
    if isinstance(adaptive, dict):
        values = [str(v) for v in adaptive.get("sample_values", [])]
        for key in ("cap", "checkpoints", "strategy"):
            summary[key] = adaptive.get(key)
        summary["sample_values"] = values
        summary["state_features"] = data.get("state_features")
        available = (data.get("metrics") or {}).get("sample_values_available")
        notes.append(describe_values(values, [str(v) for v in available] if available else None))
    else:
        summary["mu"] = data.get("mu")
        summary["actions"] = [a.get("name") for a in data.get("actions", [])]
        notes.append(describe_mu(data.get("mu"), str(data.get("cost_unit") or "unit")))
    summary["features"] = data.get("features")
    summary["model_files"] = data.get("model_files")
    # how its training samples were asked for and graded: run's defaults (None: unknown)
    summary["grader"] = data.get("grader")
    summary["prompt"] = data.get("prompt")
    summary["strategy"] = data.get("strategy", summary.get("strategy"))
    metrics = data.get("metrics", {})
    for key in ("oof_expected_cost", "oof_accuracy", "gain_vs_uniform", "train_problems"):
        summary[key] = metrics.get(key)
    return summary, notes


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
    columns: dict[str, str] = {}  # every part's, in order: older parts may lack newer columns
    for f in files:
        try:
            footer = pq.read_metadata(f)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise ArtifactError(f"{f}: not a readable Parquet file ({short_error(exc)})") from None
        rows += footer.num_rows
        schema = footer.schema.to_arrow_schema()
        for name in schema.names:
            columns.setdefault(name, str(schema.field(name).type))
    return {
        "path": str(path),
        "artifact": meta.get("artifact", "unknown (no ttcalloc metadata)"),
        "schema_version": meta.get("schema_version"),
        "rows": rows,
        "parts": len(files),
        "columns": columns,
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
        for note in info.get("notes", []):
            err_console.print(escape(note))
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
        if "grading" in prov:  # import: who graded, and how the file's grades were checked
            err_console.print(f"  grading: {escape(repr(prov['grading']))}")
        for name, inp in prov.get("inputs", {}).items():
            err_console.print(f"  input {name}: {escape(inp['path'])} ({inp['fingerprint']})")


def describe_mu(mu: Any, unit: str) -> str:
    """In words: what a static policy's multiplier mu means (a price; <= 0: the budget is slack)."""
    if not isinstance(mu, (int, float)):
        return "mu: not recorded"
    if mu <= 0:
        return (
            "mu <= 0: the budget does not bind; every question gets the action its scores "
            "rank best (cost is not traded off)"
        )
    return (
        f"mu = {mu:.4g}: the price of cost; the policy gives up {mu:.4g} of expected accuracy "
        f"to save one {unit.rstrip('s')} per question"
    )
