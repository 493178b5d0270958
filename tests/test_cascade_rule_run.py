"""A cascade policy whose gains are the MoT rule (``train --learner cascade --rule mot``): its
policy file, ``run`` on recorded samples and on the fake OpenAI server, ``evaluate``, and the
errors a damaged file or a misused flag give."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import run_cli
from test_run_cascade import _check
from test_run_models import PRICE_FLAGS, two_model_curves

from ttcalloc.artifacts.io import read_artifact
from ttcalloc.artifacts.schemas import ANSWERS, SAMPLES

BUDGET = "0.003"


@pytest.fixture(scope="module")
def rule(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Problems (half hard), two-model samples in dollars, curves, a MoT-rule cascade."""
    tmp = tmp_path_factory.mktemp("rule")
    problems, samples, curves = two_model_curves(tmp)
    policy = tmp / "policy"
    r = run_cli(
        "train", curves, "--problems", problems, "--learner", "cascade", "--rule", "mot",
        "--budget", BUDGET, "--folds", "2", "--out", policy,
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "gains (out-of-fold accuracy)" in r.stderr and "MoT rule: cheap x" in r.stderr
    return {"problems": problems, "samples": samples, "policy": policy, "tmp": tmp}


def _run(c: dict[str, Path], out: Path, *extra: str) -> Any:
    return run_cli(
        "run", c["policy"], c["problems"], "--split", "test", "--budget", BUDGET,
        "--out", out, "--no-progress", *extra,
    )  # fmt: skip


def test_the_policy_file_holds_the_rule_and_no_model(rule: dict[str, Path]) -> None:
    meta = json.loads((rule["policy"] / "policy.json").read_text())
    cas = meta["cascade"]
    k = cas["rule"]["k"]
    assert cas["rule"] == {"kind": "mot", "first": 0, "k": k, "then": 1}
    assert cas["caps"] == [k, 1] and 1 <= k <= 4  # 8 samples: a fit half of 4
    assert meta["model_files"] == [] and meta["features"] == []
    choice = meta["metrics"]["rule_choice"]
    assert choice["chosen"] == "mot" and choice["how"] == "--rule mot"
    assert choice["oof_accuracy"]["learned"] is None  # nothing learned was fit
    assert choice["labels"] == {"mot": f"MoT rule: cheap x{k}"}
    assert choice["rules"]["mot"] == cas["rule"]
    assert meta["metrics"]["train_expected_cost"] == pytest.approx(float(BUDGET), rel=1e-6)
    assert meta["metrics"]["training_rows"] == 0
    assert meta["metrics"]["in_sample"]  # k and the cheap model were chosen on these replays


def test_run_follows_the_rule_on_recorded_samples(rule: dict[str, Path], tmp_path: Path) -> None:
    """At each question's calibrated price (``--no-pace``): ``k`` cheap samples, then one strong
    sample exactly when the cheap leader's share is below ``1 - price x strong dollars``."""
    from ttcalloc.learn.cascade import CascadePolicy
    from ttcalloc.learn.cascade_online import question_price

    policy = CascadePolicy.load(rule["policy"])
    k = policy.ladder.caps[0]
    spec = f"replay:{rule['samples']}"
    out = tmp_path / "a.parquet"
    r = _run(rule, out, "--model", f"cheap={spec}", "--model", f"strong={spec}", "--no-pace")
    assert r.exit_code == 0, r.stderr
    answers = read_artifact(out, ANSWERS).df
    drawn = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    _check(answers, drawn)
    escalated = 0
    for row in answers.iter_rows(named=True):
        mine = drawn.filter(pl.col("problem_id") == row["problem_id"])
        cheap = mine.filter(pl.col("model") == "cheap")["pred_answer"].to_list()
        assert len(cheap) == k
        votes = Counter(a for a in cheap if a is not None)
        share = max(votes.values(), default=0) / k
        price = question_price(policy, row["question"])
        up = share < 1 - price * policy.unit_cost[1]
        assert (row["model"] == "strong") == up, (row["problem_id"], share, price)
        assert mine.filter(pl.col("model") == "strong").height == int(up)
        escalated += up
    assert 0 < escalated < answers.height


def test_paced_on_the_fake_server(rule: dict[str, Path], tmp_path: Path) -> None:
    from fake_openai import fake_openai

    out = tmp_path / "a.parquet"
    with fake_openai() as server:
        r = _run(
            rule, out, "--model", "cheap=openai/cheap", "--model", "strong=openai/strong",
            "--api-base", server.base, *PRICE_FLAGS, "--concurrency", "4",
        )  # fmt: skip
        requests = len(server.requests)
    assert r.exit_code == 0, r.stderr
    answers = read_artifact(out, ANSWERS).df
    drawn = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    _check(answers, drawn)
    assert requests == drawn.height
    k = json.loads((rule["policy"] / "policy.json").read_text())["cascade"]["rule"]["k"]
    per = drawn.filter(pl.col("model") == "cheap").group_by("problem_id").len()["len"]
    assert (per == k).all()


def test_evaluate_recalibrated_meets_the_budget(rule: dict[str, Path], tmp_path: Path) -> None:
    r = run_cli(
        "evaluate", f"mot={rule['policy']}", "--problems", rule["problems"], "--recalibrate",
        "--out", tmp_path / "report", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)["policies"]["mot"]["rows"]
    mine = next(x for x in rows if x["method"] == "cascade")
    assert mine["cost"] == pytest.approx(float(BUDGET), rel=1e-6)
    k = json.loads((rule["policy"] / "policy.json").read_text())["cascade"]["rule"]["k"]
    assert mine["gains"] == f"MoT rule: cheap x{k}"
    assert f"cascade (MoT rule: cheap x{k})" in (tmp_path / "report" / "report.md").read_text()


def _run_tampered(
    c: dict[str, Path], policy: Path, out: Path, edit: Callable[[dict[str, Any]], None]
) -> tuple[int, list[str]]:
    """``run`` on a copy of ``policy`` whose policy.json ``edit`` changed (the simulated
    backend): its exit code and the ``error:`` lines of its stderr."""
    import shutil

    folder = out / "policy"
    shutil.copytree(policy, folder)
    meta = json.loads((folder / "policy.json").read_text())
    edit(meta)
    (folder / "policy.json").write_text(json.dumps(meta))
    r = run_cli(
        "run", folder, c["problems"], "--split", "test", "--budget", BUDGET, "--out",
        out / "a.parquet", "--no-progress", "--model", "cheap=sim/weak", "--model",
        "strong=sim/strong", *PRICE_FLAGS,
    )  # fmt: skip
    return r.exit_code, [line for line in r.stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"k": 9}, "cascade.rule.k"),
        ({"then": 5}, "cascade.rule.then"),
        ({"then": 0}, "cascade.rule.then"),
        ({"kind": "oracle"}, "cascade.rule.kind"),
        ({"first": -1}, "cascade.rule.first"),
    ],
)
def test_a_damaged_rule_is_refused_in_one_line(
    rule: dict[str, Path], tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    code, errors = _run_tampered(
        rule, rule["policy"], tmp_path, lambda m: m["cascade"]["rule"].update(change)
    )
    assert code != 0
    assert len(errors) == 1 and f"policy.json: {field}:" in errors[0], errors


def test_rule_is_a_cascade_flag(rule: dict[str, Path], tmp_path: Path) -> None:
    curves = rule["tmp"] / "curves.parquet"
    for args, says in [
        (["--learner", "stop", "--rule", "mot"], "--rule is for --learner cascade"),
        (["--learner", "cascade", "--rule", "oracle"], "--rule 'oracle': expected one of"),
    ]:
        r = run_cli("train", curves, "--problems", rule["problems"], "--budget", BUDGET,
                    "--out", tmp_path / "p", *args)  # fmt: skip
        assert r.exit_code != 0 and says in r.stderr, r.stderr
        assert not (tmp_path / "p").exists()


@pytest.fixture(scope="module")
def single(rule: dict[str, Path]) -> Path:
    """The best single model as a cascade policy (``--rule single``), on the same curves."""
    policy = rule["tmp"] / "single"
    r = run_cli(
        "train", rule["tmp"] / "curves.parquet", "--problems", rule["problems"], "--learner",
        "cascade", "--rule", "single", "--budget", BUDGET, "--folds", "2", "--out", policy,
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    return policy


def test_the_best_single_model_as_a_policy(
    rule: dict[str, Path], single: Path, tmp_path: Path
) -> None:
    """``--rule single``: one model's uniform allocation as gains; ``run`` draws that model
    only, a hull point's number of samples per question; ``evaluate`` names it."""
    policy = single
    meta = json.loads((policy / "policy.json").read_text())
    got = meta["cascade"]["rule"]
    assert got["kind"] == "single" and meta["model_files"] == []
    name = meta["cascade"]["models"][got["model"]]
    assert meta["cascade"]["caps"][got["model"]] == got["ks"][-1]
    spec = f"replay:{rule['samples']}"
    out = tmp_path / "a.parquet"
    c = {**rule, "policy": policy}
    ran = _run(c, out, "--model", f"cheap={spec}", "--model", f"strong={spec}", "--no-pace")
    assert ran.exit_code == 0, ran.stderr
    drawn = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    assert set(drawn["model"].to_list()) == {name}
    per = drawn.group_by("problem_id").len()["len"].to_list()
    assert set(per) <= set(got["ks"]) and len(per) == read_artifact(out, ANSWERS).df.height
    ev = run_cli("evaluate", f"one={policy}", "--problems", rule["problems"], "--out",
                 tmp_path / "report", "--json")  # fmt: skip
    assert ev.exit_code == 0, ev.stderr
    row = next(
        x for x in json.loads(ev.stdout)["policies"]["one"]["rows"] if x["method"] == "cascade"
    )
    assert row["gains"] == f"{name} only, up to x{got['ks'][-1]}"


def test_a_damaged_single_rule_is_refused_in_one_line(
    rule: dict[str, Path], single: Path, tmp_path: Path
) -> None:
    for i, (change, field) in enumerate(
        [
            ({"ks": [2, 3]}, "cascade.rule.ks"),
            ({"accs": [0.5]}, "cascade.rule.ks"),
            ({"accs": "x"}, "cascade.rule.ks"),
            ({"model": 7}, "cascade.rule.model"),
            ({"flat_dollars": "yes"}, "cascade.rule.flat_dollars"),
        ]
    ):
        out = tmp_path / f"bad{i}"
        out.mkdir()
        code, errors = _run_tampered(
            rule, single, out, lambda m, change=change: m["cascade"]["rule"].update(change)
        )
        assert code != 0 and len(errors) == 1, (change, errors)
        assert f"policy.json: {field}" in errors[0], (change, errors)


def test_a_rule_with_model_files_is_refused(rule: dict[str, Path], tmp_path: Path) -> None:
    def add_files(meta: dict[str, Any]) -> None:
        meta["model_files"] = ["gain-0.ubj"]  # and the file is there, in the copy
        (tmp_path / "policy" / "gain-0.ubj").write_bytes(b"{}")

    code, errors = _run_tampered(rule, rule["policy"], tmp_path, add_files)
    assert code != 0 and len(errors) == 1, errors
    assert "policy.json: model_files: a rule has no model files" in errors[0], errors
