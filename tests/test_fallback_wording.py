"""A static learner that falls back to uniform allocation: `train`'s warning, its summary table
and `evaluate` tell one story (the gain shown is the hash's pick, not the features')."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli
from test_train_held_out import _featureless

from ttcalloc.common.wording import signed
from ttcalloc.stages.train import fallback_warning


def test_the_warning_names_the_gain_the_table_shows() -> None:
    text = fallback_warning(2.0, -0.0012, 0.0068)
    assert "falls back to uniform allocation" in text
    assert "(+0.0068 out of fold here" in text and "not what the features know" in text
    assert "(fallback)" in text  # the mark evaluate's tables carry
    assert "+0.0068" not in fallback_warning(2.0, -0.0012, None)


def test_train_and_evaluate_agree_on_a_fallback(tmp_path: Path) -> None:
    paths = _featureless(tmp_path, n=600)
    policy = tmp_path / "imitate"
    trained = run_cli(
        "train", paths["alloc"], "--problems", paths["problems"], "--learner", "imitate",
        "--budget", "2", "--out", policy,
    )  # fmt: skip
    assert trained.exit_code == 0, trained.stderr
    metrics = json.loads((policy / "policy.json").read_text())["metrics"]
    assert metrics["shrink_fallback"] is True
    shown = signed(metrics["gain_vs_uniform"])
    err = " ".join(trained.stderr.split())  # rich wraps long lines
    assert "falls back to uniform allocation" in err
    assert f"({shown} out of fold here" in err  # the warning quotes the table's figure ...
    assert "fell back to uniform allocation" in err  # ... whose title says so
    row = next(line for line in trained.stderr.splitlines() if "gain vs uniform" in line)
    assert "(fallback: the hash's pick)" in row and shown in row

    out = tmp_path / "report"
    evaluated = run_cli(
        "evaluate", policy, "--budgets", "2", "--baselines", "uniform", "--bootstrap", "200",
        "--out", out,
    )  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.stderr
    assert (
        "imitate*" in evaluated.stderr and "* fell back to uniform allocation" in evaluated.stderr
    )
    report = json.loads((out / "report.json").read_text())
    rec = next(r for r in report["policies"] if r["policy"] == "imitate")
    assert rec["params"]["uniform_fallback"] is True
    note = next(n for n in report["notes"] if n.startswith("imitate at 2"))
    assert "fell back to uniform allocation when trained" in note
    assert "not what the features know" in note
    md = (out / "report.md").read_text()
    assert "| imitate (fallback) |" in md and "**(fallback)**" in md


@pytest.mark.parametrize("fallback", [False, True])
def test_only_a_fallback_is_marked(fallback: bool) -> None:
    from ttcalloc.stages.evaluate.render import label

    rec = {"policy": "imitate", "upper_bound": False, "params": {"uniform_fallback": fallback}}
    assert label(rec) == ("imitate (fallback)" if fallback else "imitate")
