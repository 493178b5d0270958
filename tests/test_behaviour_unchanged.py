"""The artifacts of two whole pipelines, digested and compared with stored digests.

Refactors must not change what the stages write.  Each artifact is reduced to its content
(Parquet: the rows, without the provenance metadata; JSON: without provenance, request and
timestamps) and hashed; ``tests/golden/artifact_digests.json`` holds the digests of the code
before a refactor.  A deliberate change of behaviour regenerates them:

    TTCALLOC_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_behaviour_unchanged.py
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_DATA
from helpers import run_cli

GOLDEN = Path(__file__).parent / "golden" / "artifact_digests.json"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
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


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, float):
        return repr(value)
    return value


def _digest(path: Path) -> str:
    import pyarrow.dataset as ds

    if path.is_dir() and (path / "policy.json").exists():
        return _digest(path / "policy.json")
    if path.is_dir() and (path / "report.json").exists():
        return _digest(path / "report.json")
    if path.suffix == ".json":
        text = json.dumps(_scrub(json.loads(path.read_text())), sort_keys=True)
    else:
        table = ds.dataset(str(path), format="parquet").to_table()
        text = json.dumps(
            {"columns": table.column_names, "rows": _scrub(table.to_pylist())}, sort_keys=True
        )
    return hashlib.sha256(text.encode()).hexdigest()


def _run(*args: Any) -> None:
    res = run_cli(*args)
    assert res.exit_code == 0, f"{args[0]}: {res.stderr}"


def _sim_pipeline(tmp: Path) -> dict[str, Path]:
    p = {n: tmp / n for n in ("problems.parquet", "samples", "curves.parquet", "alloc.parquet")}
    _run(
        "data",
        "jsonl",
        "--source",
        EXAMPLES / "arithmetic.jsonl",
        "--id-field",
        "id",
        "--meta-field",
        "kind",
        "--test-frac",
        "0.5",
        "--out",
        p["problems.parquet"],
    )
    _run(
        "sample",
        p["problems.parquet"],
        "--model",
        "sim/medium",
        "--n",
        "16",
        "--no-progress",
        "--out",
        p["samples"],
    )
    _run(
        "estimate",
        p["samples"],
        "--problems",
        p["problems.parquet"],
        "--ks",
        "1,2,4,8",
        "--cost",
        "samples",
        "--out",
        p["curves.parquet"],
    )
    _run(
        "solve",
        p["curves.parquet"],
        "--problems",
        p["problems.parquet"],
        "--budgets",
        "1.5,2",
        "--out",
        p["alloc.parquet"],
    )
    for learner in ("imitate", "plugin"):
        p[f"policy-{learner}"] = tmp / f"policy-{learner}"
        _run(
            "train",
            p["alloc.parquet"],
            "--problems",
            p["problems.parquet"],
            "--budget",
            "2",
            "--learner",
            learner,
            "--folds",
            "3",
            "--out",
            p[f"policy-{learner}"],
        )
    p["report"] = tmp / "report"
    _run(
        "evaluate",
        p["policy-imitate"],
        p["policy-plugin"],
        "--no-plot",
        "--bootstrap",
        "200",
        "--out",
        p["report"],
    )
    p["plan.parquet"] = tmp / "plan.parquet"
    _run("allocate", p["policy-imitate"], p["problems.parquet"], "--out", p["plan.parquet"])
    return p


def _svamp_pipeline(tmp: Path) -> dict[str, Path]:
    if not (SHARED_DATA / "svamp_codex_pot_30samples.parquet").exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    p = {
        n: tmp / n
        for n in ("problems.parquet", "samples.parquet", "curves.parquet", "alloc.parquet")
    }
    _run(
        "data",
        "jsonl",
        "--source",
        SHARED_DATA / "svamp_problems.jsonl",
        "--id-field",
        "id",
        "--test-frac",
        "0.3",
        "--out",
        p["problems.parquet"],
    )
    _run(
        "import",
        SHARED_DATA / "svamp_codex_pot_30samples.parquet",
        "--problems",
        p["problems.parquet"],
        "--out",
        p["samples.parquet"],
    )
    _run(
        "estimate",
        p["samples.parquet"],
        "--ks",
        "1,2,4,8",
        "--holdout",
        "0.5",
        "--cost",
        "samples",
        "--out",
        p["curves.parquet"],
    )
    _run("solve", p["curves.parquet"], "--budgets", "2", "--out", p["alloc.parquet"])
    p["policy"] = tmp / "policy"
    _run(
        "train",
        p["alloc.parquet"],
        "--problems",
        p["problems.parquet"],
        "--learner",
        "imitate",
        "--out",
        p["policy"],
    )
    p["report"] = tmp / "report"
    _run("evaluate", p["policy"], "--no-plot", "--bootstrap", "200", "--out", p["report"])
    return p


PIPELINES = {"sim": _sim_pipeline, "svamp": _svamp_pipeline}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_artifacts_unchanged(name: str, tmp_path: Path) -> None:
    paths = PIPELINES[name](tmp_path)
    got = {k: _digest(v) for k, v in sorted(paths.items())}
    stored = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("TTCALLOC_UPDATE_GOLDEN"):
        stored[name] = got
        GOLDEN.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    assert name in stored, f"no digests for {name}: regenerate with TTCALLOC_UPDATE_GOLDEN=1"
    changed = [k for k in got if got[k] != stored[name].get(k)]
    assert not changed, f"{name}: artifacts changed: {changed}"
