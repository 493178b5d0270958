"""`ttcalloc evaluate` end to end on simulated policies: the report at matched cost, --budgets
and recalibration, bootstrap seeds, the CLI's JSON and errors, the replays' halves, `info` on
report folders, a report folder replaced whole, and the real Codex report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers import run_cli, sim_pipeline

from ttcalloc.artifacts.schemas import METRICS
from ttcalloc.common.errors import OutputError
from ttcalloc.core import replays as sequential
from ttcalloc.stages.evaluate import EvaluateOptions, PolicySpec, evaluate_policies
from ttcalloc.stages.train import TrainOptions, train_policy

# ---------------------------------------------------------------- the stage, end to end


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    paths = sim_pipeline(tmp_path_factory.mktemp("evaluate"), 300, seed=2)
    tmp, problems = paths["tmp"], paths["problems"]
    for b in (1.5, 2.5):
        train_policy(
            tmp / "alloc.parquet", problems, tmp / f"p{b}", TrainOptions(budget=b, folds=3)
        )
    return {"problems": problems, "tmp": tmp}


def test_report_has_every_policy_at_matched_cost(trained: dict[str, Path], tmp_path: Path) -> None:
    tmp = trained["tmp"]
    specs = [
        PolicySpec.parse(f"learned={tmp / 'p1.5'}"),
        PolicySpec.parse(f"learned={tmp / 'p2.5'}"),
    ]
    result = evaluate_policies(specs, tmp_path / "report", EvaluateOptions(n_boot=300))
    report = result.report
    assert report["budgets"] == [1.5, 2.5] and report["budget"] is None
    names = {r["policy"] for r in report["policies"]}
    assert names == {
        "uniform",
        "random",
        "length",
        "esc",
        "adaptive",
        "learned",
        "oracle-fit",
        "oracle",
    }
    for b in (1.5, 2.5):
        rows = {r["policy"]: r for r in report["policies"] if r["budget"] == b}
        learned = rows["learned"]
        # baselines are tuned to the learned policy's realized cost; uniform and random hit it
        for name in ("uniform", "random"):
            assert rows[name]["cost"] == pytest.approx(learned["cost"], abs=1e-9)
        # the oracle on the scoring curves is never below a one-action-per-problem policy
        for name in ("uniform", "random", "length", "learned", "oracle-fit"):
            assert rows[name]["oracle_accuracy"] >= rows[name]["accuracy"] - 1e-12
            assert rows[name]["regret"] >= -1e-12
        assert rows["oracle"]["upper_bound"] and rows["oracle"]["regret"] == 0
        assert rows["uniform"]["gain_vs_uniform"] == 0.0
        lo, hi = learned["gain_vs_uniform_ci"]
        assert lo <= learned["gain_vs_uniform"] <= hi
        assert 0.0 <= learned["imitation_accuracy"] <= 1.0
        assert learned["bound_holds"] and learned["regret_vs_labels"] <= learned["bound"] + 1e-12
        assert sum(map(sum, learned["confusion"]["matrix"])) == learned["problems"]
        assert learned["params"]["recalibrated"] is False
    out = tmp_path / "report"
    assert (out / "accuracy_vs_budget.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "| oracle (upper bound) |" in md and "## Budget 2.5" in md
    glossary = md.split("## Glossary", 1)[1]  # what a practitioner needs without the paper
    for term in (
        "maj@k",
        "cost matching",
        "regret",
        "eval half",
        "mu, price",
        "not distinguish",
        "ahead of / behind",
    ):
        assert term in glossary
    metrics = pl.read_parquet(out / "metrics.parquet")
    assert metrics.height == len(report["policies"])
    assert set(c.name for c in METRICS.columns) <= set(metrics.columns)
    assert json.loads((out / "report.json").read_text())["budgets"] == [1.5, 2.5]


def test_budgets_flag_meets_each_budget_and_recalibrates(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    tmp = trained["tmp"]
    result = evaluate_policies(
        [PolicySpec.parse(str(tmp / "p1.5"))],
        tmp_path / "r",
        EvaluateOptions(budgets=(1.2, 1.5, 3.0), n_boot=200, plot=False),
    )
    rows = result.report["policies"]
    for b in (1.2, 1.5, 3.0):
        uni = next(r for r in rows if r["policy"] == "uniform" and r["budget"] == b)
        assert abs(uni["cost"] - b) <= 1e-9
        pol = next(r for r in rows if r["policy"] == "p1.5" and r["budget"] == b)
        assert pol["params"]["recalibrated"] is (b != 1.5)
    assert not (tmp_path / "r" / "accuracy_vs_budget.png").exists()


def test_bootstrap_intervals_are_deterministic_by_seed(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    tmp = trained["tmp"]
    opts = EvaluateOptions(n_boot=200, plot=False, baselines=("uniform",))
    a = evaluate_policies([PolicySpec.parse(str(tmp / "p1.5"))], tmp_path / "a", opts)
    b = evaluate_policies([PolicySpec.parse(str(tmp / "p1.5"))], tmp_path / "b", opts)
    assert [r["gain_vs_uniform_ci"] for r in a.report["policies"]] == [
        r["gain_vs_uniform_ci"] for r in b.report["policies"]
    ]


def test_cli_json_and_errors(trained: dict[str, Path], tmp_path: Path) -> None:
    tmp = trained["tmp"]
    ok = run_cli(
        "evaluate",
        tmp / "p1.5",
        "--out",
        tmp_path / "r",
        "--bootstrap",
        "200",
        "--json",
        "--no-plot",
    )
    assert ok.exit_code == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert {"budget", "budgets", "policies"} <= set(report)
    for row in report["policies"]:
        assert {"accuracy", "cost", "gain_vs_uniform", "gain_vs_uniform_ci"} <= set(row)
    assert "gain vs uniform" in ok.stderr
    none = run_cli(
        "evaluate", "--curves", tmp / "curves.parquet", "--problems", trained["problems"]
    )
    assert none.exit_code == 2 and "--budgets" in none.stderr
    missing = run_cli("evaluate", tmp_path / "nope")
    assert missing.exit_code == 1 and "run `ttcalloc train` first" in missing.stderr
    bad = run_cli("evaluate", tmp / "p1.5", "--baselines", "uniform,oracle2")
    assert bad.exit_code == 2 and "--baselines 'oracle2'" in bad.stderr
    low = run_cli("evaluate", tmp / "p1.5", "--budgets", "0.5,2", "--out", tmp_path / "low")
    assert low.exit_code == 2 and "--budgets 0.5: below the minimum mean cost 1" in low.stderr
    assert not (tmp_path / "low").exists()
    no_curves = run_cli("evaluate", tmp / "p1.5", "--curves", tmp_path / "c.parquet")
    assert no_curves.exit_code == 1 and "run `ttcalloc estimate` first" in no_curves.stderr


def test_without_samples_the_early_stopping_baselines_are_left_out(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    tmp = trained["tmp"]
    # curves whose recorded samples file no longer exists
    table = pq.read_table(tmp / "curves.parquet")
    meta = json.loads(table.schema.metadata[b"ttcalloc"])
    meta["inputs"]["samples"] = {"path": str(tmp_path / "moved-away"), "fingerprint": "sha256:0"}
    table = table.replace_schema_metadata({b"ttcalloc": json.dumps(meta).encode()})
    pq.write_table(table, tmp_path / "curves.parquet")
    opts = EvaluateOptions(budgets=(2.0,), n_boot=200, plot=False)
    result = evaluate_policies(
        [], tmp_path / "r", opts, tmp_path / "curves.parquet", trained["problems"]
    )
    names = {r["policy"] for r in result.report["policies"]}
    assert "esc" not in names and "uniform" in names
    assert any("moved-away is gone" in n for n in result.report["notes"])
    # a samples file named on the command line must exist
    gone = run_cli(
        "evaluate",
        "--budgets",
        "2",
        "--curves",
        tmp / "curves.parquet",
        "--problems",
        trained["problems"],
        "--samples",
        tmp_path / "absent.parquet",
        "--out",
        tmp_path / "r2",
    )
    assert gone.exit_code == 1 and "run `ttcalloc sample" in gone.stderr


@pytest.mark.shared_data
def test_real_codex_report(codex: dict[str, Path], tmp_path: Path) -> None:
    train_policy(codex["allocation"], codex["problems"], tmp_path / "pol", TrainOptions())
    report = evaluate_policies(
        [PolicySpec.parse(str(tmp_path / "pol"))], tmp_path / "r", EvaluateOptions(n_boot=500)
    ).report
    rows = {r["policy"]: r for r in report["policies"]}
    assert report["problems"]["test"] > 150 and not report["in_sample"]
    for name in ("uniform", "random", "length", "pol", "oracle-fit"):
        assert rows[name]["regret"] >= 0
    assert {"esc", "adaptive"} <= set(rows)  # the imported samples replay
    assert abs(rows["uniform"]["cost"] - rows["pol"]["cost"]) <= 1e-9


def test_replays_use_the_same_halves_as_the_curves(trained: dict[str, Path]) -> None:
    from ttcalloc.stages.evaluate import load_inputs

    tmp = trained["tmp"]
    loaded = load_inputs(tmp / "curves.parquet", trained["problems"], None, EvaluateOptions())
    d = loaded.data
    assert d.test_replays is not None and d.train_replays is not None
    # one sample, cycled through every sample of the half: exactly maj@1 of that half
    for replays, dense in ((d.test_replays, d.test), (d.train_replays, d.train)):
        acc, cost = sequential.esc(replays, window=2, cap=1)
        assert np.allclose(acc, dense.acc[:, dense.actions.index("maj@1")], atol=1e-12)
        assert np.allclose(cost, 1.0)
    assert loaded.score_half == "eval" and loaded.fit_half == "fit"


def test_recalibrate_on_test_questions_meets_each_budget(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    tmp = trained["tmp"]
    result = evaluate_policies(
        [PolicySpec.parse(f"learned={tmp / 'p1.5'}"), PolicySpec.parse(f"learned={tmp / 'p2.5'}")],
        tmp_path / "r",
        EvaluateOptions(budgets=(1.5, 2.5), recalibrate=True, n_boot=200, plot=False),
    )
    for row in result.report["policies"]:
        if row["kind"] == "learned":
            assert row["params"]["recalibrated"] == "test questions"
            # samples are the cost unit: realized == expected, so at most one action step off
            assert row["budget"] - 0.1 <= row["cost"] <= row["budget"] + 1e-9


def test_info_describes_policy_and_report_folders(trained: dict[str, Path], tmp_path: Path) -> None:
    tmp = trained["tmp"]
    evaluate_policies(
        [PolicySpec.parse(str(tmp / "p1.5"))],
        tmp_path / "r",
        EvaluateOptions(n_boot=200, plot=False, baselines=("uniform",)),
    )
    policy = json.loads(run_cli("info", tmp / "p1.5", "--json").stdout)
    assert policy["artifact"] == "policy" and policy["summary"]["budget"] == 1.5
    assert policy["summary"]["actions"] == ["maj@1", "maj@2", "maj@4"]
    report = run_cli("info", tmp_path / "r", "--json")
    info = json.loads(report.stdout)
    assert info["artifact"] == "report" and info["summary"]["budgets"] == [1.5]
    assert "oracle" in info["summary"]["policies"] and "input curves" in report.stderr


def test_a_report_folder_is_replaced_whole_or_not_at_all(
    trained: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """metrics.parquet and report.md are written, then report.json fails: the old report is as
    it was (no new file beside the old report.json), no temporary folder is left; a folder
    that holds no report.json is never replaced."""
    spec = [PolicySpec.parse(str(trained["tmp"] / "p1.5"))]
    out = tmp_path / "reports" / "report"
    evaluate_policies(spec, out, EvaluateOptions(n_boot=100, plot=False))
    before = {f.name: f.read_bytes() for f in out.iterdir()}

    def fail(path: Path, *args: object) -> None:
        assert (path.parent / "report.md").exists(), "the other files are written first"
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ttcalloc.stages.evaluate.records.write_json_artifact", fail)
    with pytest.raises(OutputError, match=f"{out}: cannot write .no space left"):
        evaluate_policies(spec, out, EvaluateOptions(n_boot=200, plot=False))
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    assert [f.name for f in out.parent.iterdir()] == ["report"]
    monkeypatch.undo()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    res = run_cli("evaluate", trained["tmp"] / "p1.5", "--no-plot", "--out", mine)
    assert res.exit_code != 0 and "without report.json" in res.stderr, res.stderr
    assert [f.name for f in mine.iterdir()] == ["notes.txt"]


def test_the_cost_axis_stops_near_what_the_policies_spent() -> None:
    """A dear model's actions far past the budgets (gpt-4:maj@4 at $0.08 against $0.002-$0.006)
    no longer squeeze the policies into the left edge: the axis ends 15% past the largest of
    the budgets, the policies' costs and the strongest model's one sample; otherwise it is
    matplotlib's."""
    from ttcalloc.stages.evaluate.plot import x_right

    report = {
        "budgets": [0.002, 0.006],
        "policies": [{"cost": 0.0021}, {"cost": 0.0063}],
        "actions": [{"cost": 0.0197}, {"cost": 0.0788}],
        "strongest": {"cost": 0.0197},
    }
    frontiers = {"oracle": [[0.002, 0.8], [0.03, 0.9]], "uniform": []}
    assert x_right(report, frontiers) == pytest.approx(1.15 * 0.0197)
    near = report | {"actions": [{"cost": 0.01}], "strongest": None}
    assert x_right(near, {"oracle": [[0.002, 0.8]], "uniform": []}) is None
