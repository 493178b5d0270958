"""The artifacts of two whole pipelines, compared with stored fingerprints.

Refactors must not change what the stages write.  Each artifact's content is fingerprinted
(``tests/golden_artifacts.py``): everything but its floats exactly (ids, chosen actions,
decisions, counts, strings, shape), its floats to 1e-9 relative (``REL_TOL``), so the check
holds on any processor whatever BLAS kernel it runs.  A deliberate change of behaviour
regenerates the fingerprints (``tests/golden/artifacts.json`` and ``floats.parquet``):

    TTCALLOC_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_behaviour_unchanged.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import golden_artifacts as golden
import pytest
from conftest import SHARED_DATA
from helpers import run_cli

DIGESTS = Path(__file__).parent / "golden" / "artifacts.json"
FLOATS = Path(__file__).parent / "golden" / "floats.parquet"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


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
    _run(
        "solve",
        p["curves.parquet"],
        "--problems",
        p["problems.parquet"],
        "--budgets",
        "2",
        "--out",
        p["alloc.parquet"],
    )
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
    got = {k: golden.fingerprint(golden.content(v)) for k, v in sorted(paths.items())}
    if os.environ.get("TTCALLOC_UPDATE_GOLDEN"):
        golden.store(DIGESTS, FLOATS, name, got)
    stored = golden.load(DIGESTS, FLOATS, name)
    assert stored, f"no fingerprints for {name}: regenerate with TTCALLOC_UPDATE_GOLDEN=1"
    assert sorted(got) == sorted(stored), f"{name}: artifacts {sorted(got)} != {sorted(stored)}"
    changed = {k: diff for k in got if (diff := golden.differences(got[k], *stored[k]))}
    assert not changed, f"{name}: artifacts changed: {changed}"


def _value(x: float) -> Any:
    return {"rows": [{"problem_id": "1", "action": "maj@2", "p": x, "n": 3}]}


def test_a_last_bit_difference_passes_and_a_real_change_fails() -> None:
    """The comparison itself: BLAS-sized noise passes; a moved float or action fails."""
    base = golden.fingerprint(_value(0.8507158677461415))
    noise = golden.fingerprint(_value(0.850715867746141))  # seen between Haswell and SkylakeX
    assert golden.differences(noise, base.digest, base.floats) == []
    moved = golden.fingerprint(_value(0.8507168677461415))
    assert golden.differences(moved, base.digest, base.floats) == [
        ".rows[0].p: 0.8507168677461415 against 0.8507158677461415"
    ]
    action = golden.fingerprint(
        {"rows": [{"problem_id": "1", "action": "maj@4", "p": 0.85, "n": 3}]}
    )
    assert golden.differences(action, base.digest, base.floats) != []
    assert golden.close(float("nan"), float("nan")) and not golden.close(float("nan"), 0.0)
    assert not golden.close(1e-9, 0.0) and golden.close(1e-13, 0.0)
