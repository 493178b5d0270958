"""``ttcalloc run`` with a learned cascade over two models: on the simulated backend as two
models, on the fake OpenAI server under two model names, and on ``replay:``; the answer votes
with the last model's samples, every model's dollars count, a rerun and another concurrency
decide alike, a hard budget in dollars holds, and a killed run resumes without paying twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import run_cli
from test_run_models import PRICE_FLAGS, PRICES, SIM, two_model_curves

from ttcalloc.artifacts.io import read_artifact, write_artifact
from ttcalloc.artifacts.schemas import ANSWERS, SAMPLES

ROOT = Path(__file__).resolve().parents[1]
BUDGET = "0.003"


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Problems (half hard), two-model samples in dollars, curves, a cascade trained at BUDGET."""
    from ttcalloc.stages.train_cascade import CascadeTrainOptions, train_cascade

    tmp = tmp_path_factory.mktemp("cascade")
    problems, samples, curves = two_model_curves(tmp)
    policy = tmp / "policy"
    train_cascade(
        curves,
        problems,
        policy,
        CascadeTrainOptions(budgets=(float(BUDGET),), folds=2, n_estimators=20, orders=8),
    )
    return {"problems": problems, "samples": samples, "policy": policy}


def _run(c: dict[str, Path], out: Path, *extra: str) -> Any:
    return run_cli(
        "run", c["policy"], c["problems"], "--split", "test", "--budget", BUDGET,
        "--out", out, "--no-progress", *extra,
    )  # fmt: skip


def _check(answers: pl.DataFrame, drawn: pl.DataFrame) -> None:
    """Each answer: its dollars are every sample its question drew (all models); its model is
    the last one its decisions drew from; its samples count every model's."""
    for row in answers.iter_rows(named=True):
        mine = drawn.filter(pl.col("problem_id") == row["problem_id"])
        assert row["cost_usd"] == pytest.approx(mine["cost_usd"].sum(), rel=1e-9), row
        assert row["samples"] == mine.height
        steps = json.loads(row["decisions"])
        nexts = [d["start"] for d in steps if "start" in d] + [
            d["next"] for d in steps if "next" in d
        ]
        assert nexts and nexts[-1] == row["model"]
        assert set(mine["model"].to_list()) == set(nexts)
    for s in drawn.iter_rows(named=True):  # each sample at its own model's price
        pin, pout = PRICES[s["model"]]
        want = (s["prompt_tokens"] * pin + s["completion_tokens"] * pout) / 1e6
        assert s["cost_usd"] == pytest.approx(want, rel=1e-9)


def test_policy_file_and_summary(cascade: dict[str, Path]) -> None:
    meta = json.loads((cascade["policy"] / "policy.json").read_text())
    assert meta["learner"] == "cascade" and meta["cascade"]["models"] == ["cheap", "strong"]
    assert meta["metrics"]["train_expected_cost"] == pytest.approx(float(BUDGET), rel=1e-6)
    # by default the learned gains, unless the best single model is clearly better out of fold
    choice = meta["metrics"]["rule_choice"]
    assert choice["considered"] == ["single"] and choice["how"].startswith("--rule guard")
    assert choice["chosen"] == "learned", choice
    assert "rule" not in meta["cascade"] and meta["model_files"]


def test_a_reordered_model_list_is_refused(cascade: dict[str, Path], tmp_path: Path) -> None:
    """policy.json's models in another order than training's would send each level's
    decisions to the other model: one line, before any request."""
    import shutil

    folder = tmp_path / "policy"
    shutil.copytree(cascade["policy"], folder)
    meta = json.loads((folder / "policy.json").read_text())
    meta["cascade"]["models"] = meta["cascade"]["models"][::-1]
    (folder / "policy.json").write_text(json.dumps(meta))
    r = _run({**cascade, "policy": folder}, tmp_path / "a.parquet", "--model", "cheap=sim/small")
    assert r.exit_code != 0 and not (tmp_path / "a.parquet").exists()
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "is not the order the policy was trained in" in lines[0], r.stderr


def test_on_the_simulated_backend_as_two_models(cascade: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "a.parquet"
    # at the calibrated prices: sim's samples cost more than the training ones (pacing would
    # stop every question after its first, costlier, round)
    r = _run(cascade, out, *SIM, *PRICE_FLAGS, "--concurrency", "8", "--no-pace")
    assert r.exit_code == 0, r.stderr
    answers = read_artifact(out, ANSWERS).df
    drawn = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    assert answers["final_answer"].null_count() == 0
    _check(answers, drawn)
    assert "cascade policy" in r.stderr
    # a rerun draws nothing and answers alike; concurrency 1 decides as concurrency 8
    again = _run(cascade, tmp_path / "b.parquet", *SIM, *PRICE_FLAGS, "--samples-out",
                 tmp_path / "a-samples.parquet", "--no-pace")  # fmt: skip
    assert again.exit_code == 0, again.stderr
    b = read_artifact(tmp_path / "b.parquet", ANSWERS).df
    assert b["decisions"].to_list() == answers["decisions"].to_list()
    one = _run(cascade, tmp_path / "c.parquet", *SIM, *PRICE_FLAGS, "--concurrency", "1",
               "--no-pace")  # fmt: skip
    assert one.exit_code == 0, one.stderr
    c = read_artifact(tmp_path / "c.parquet", ANSWERS).df
    assert c["decisions"].to_list() == answers["decisions"].to_list()
    assert c["final_answer"].to_list() == answers["final_answer"].to_list()


def test_on_replay_it_escalates_the_hard_questions(
    cascade: dict[str, Path], tmp_path: Path
) -> None:
    """On the recorded samples, the cheap model is right on easy questions: the cascade sends
    more of the hard (long) questions to the strong model than of the easy ones."""
    out = tmp_path / "a.parquet"
    spec = f"replay:{cascade['samples']}"
    r = _run(cascade, out, "--model", f"cheap={spec}", "--model", f"strong={spec}")
    assert r.exit_code == 0, r.stderr
    answers = read_artifact(out, ANSWERS).df
    drawn = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    _check(answers, drawn)
    hard = answers["question"].str.contains("ledger")
    strong = answers["model"] == "strong"
    assert (strong & hard).sum() > (strong & ~hard).sum()
    assert answers["cost_usd"].mean() < 2 * float(BUDGET)


def test_paced_rounds_meet_the_budget_and_decide_alike(
    cascade: dict[str, Path], tmp_path: Path
) -> None:
    """Pacing (the default) re-prices each round after the first: on the recorded samples (the training ones' costs) the
    mean dollars per question land within 5% of the budget, where each question at its
    calibrated price lands elsewhere; concurrency 1 and 8 take the same decisions."""
    spec = f"replay:{cascade['samples']}"
    models = ["--model", f"cheap={spec}", "--model", f"strong={spec}"]
    costs, decisions = {}, []
    for name, flags in {
        "paced": ["--concurrency", "8"],
        "paced1": ["--concurrency", "1"],
        "calibrated": ["--no-pace"],
    }.items():
        out = tmp_path / f"{name}.parquet"
        r = _run(cascade, out, *models, *flags)
        assert r.exit_code == 0, r.stderr
        answers = read_artifact(out, ANSWERS).df
        costs[name] = answers["cost_usd"].mean() / float(BUDGET)
        if name.startswith("paced"):
            decisions.append(answers["decisions"].to_list())
            assert "price" in r.stderr
    assert abs(costs["paced"] - 1) <= 0.05, costs
    assert abs(costs["calibrated"] - 1) > 0.05, costs  # the case pacing is for
    assert decisions[0] == decisions[1]


def test_a_slack_cascade_run_at_a_lower_budget_is_paced_to_it(
    cascade: dict[str, Path], tmp_path: Path
) -> None:
    """Trained at a budget above all it would buy, a cascade's price is 0 (slack); run at a
    lower budget it is paced to that budget from round 1 (it had no prices to pace on and spent
    what it bought in training)."""
    from ttcalloc.stages.train_cascade import CascadeTrainOptions, train_cascade

    slack = dict(cascade, policy=tmp_path / "slack")
    opts = CascadeTrainOptions(budgets=(0.5,), folds=2, n_estimators=20, orders=8)
    train_cascade(cascade["policy"].parent / "curves.parquet", cascade["problems"],
                  slack["policy"], opts)  # fmt: skip
    meta = json.loads((slack["policy"] / "policy.json").read_text())
    bought = meta["metrics"]["train_expected_cost"]
    assert meta["cascade"]["slack"] and bought > 2 * float(BUDGET), bought  # more than BUDGET
    spec = f"replay:{cascade['samples']}"
    out = tmp_path / "a.parquet"
    models = ["--model", f"cheap={spec}", "--model", f"strong={spec}"]
    r = _run(slack, out, *models, "--budget-unit", "usd")
    assert r.exit_code == 0, r.stderr
    answers = read_artifact(out, ANSWERS).df
    ratio = answers["cost_usd"].mean() / float(BUDGET)
    print(f"slack cascade paced at {BUDGET}: {ratio:.4f} of the budget")
    assert abs(ratio - 1) <= 0.02, ratio  # 1.0004; 0.955 when it took a pace ratio from price 0
    assert "price" in r.stderr
    assert "pace_ratio" not in meta["cascade"] or not meta["cascade"]["pace_ratio"]


def test_replayed_samples_without_costs_are_priced_as_estimate_prices_them(
    cascade: dict[str, Path], tmp_path: Path
) -> None:
    """An imported file may record no tokens and no dollars, only each completion's characters
    (the shared Date file does): ``run`` on ``replay:`` of it prices each sample at its model's
    price and ``--prompt-tokens``, as ``estimate`` did (characters / 4), instead of stopping."""
    from ttcalloc.artifacts.prices import price_table, with_dollars

    bare = read_artifact(cascade["samples"], SAMPLES).df.with_columns(
        pl.lit(None, dtype=pl.Int64).alias("prompt_tokens"),
        pl.lit(None, dtype=pl.Int64).alias("completion_tokens"),
        pl.lit(None, dtype=pl.Float64).alias("cost_usd"),
        pl.lit(480, dtype=pl.Int64).alias("completion_chars"),
    )
    path = tmp_path / "bare.parquet"
    write_artifact(bare, path, SAMPLES, stage="test")
    spec = f"replay:{path}"
    out = tmp_path / "a.parquet"
    lengths = ["--prompt-tokens", "cheap=30", "--prompt-tokens", "strong=30"]
    r = _run(cascade, out, "--model", f"cheap={spec}", "--model", f"strong={spec}",
             *PRICE_FLAGS, *lengths)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    drawn = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    table = price_table(tuple(PRICE_FLAGS[1::2]), None, ("cheap=30", "strong=30"))
    want = with_dollars(bare, table).samples.select("problem_id", "model", "cost_usd")
    got = drawn.select("problem_id", "model", "cost_usd").unique(["model"])
    for row in got.iter_rows(named=True):  # 30 prompt tokens and 120 completion tokens each
        pin, pout = PRICES[row["model"]]
        assert row["cost_usd"] == pytest.approx((30 * pin + 120 * pout) / 1e6, rel=1e-9)
        same = want.filter(pl.col("model") == row["model"])["cost_usd"]
        assert row["cost_usd"] == pytest.approx(same[0], rel=1e-9)
    no_lengths = _run(cascade, tmp_path / "b.parquet", "--model", f"cheap={spec}",
                      "--model", f"strong={spec}", *PRICE_FLAGS)  # fmt: skip
    assert no_lengths.exit_code != 0
    assert "records no prompt tokens to price it by; give --prompt-tokens" in no_lengths.stderr


def test_hard_budget_in_dollars_holds(cascade: dict[str, Path], tmp_path: Path) -> None:
    for budget in ("0.0008", "0.002"):
        out = tmp_path / f"h{budget}.parquet"
        r = run_cli(
            "run", cascade["policy"], cascade["problems"], "--split", "test", "--budget", budget,
            "--budget-unit", "usd", "--hard-budget", "--max-tokens", "300", "--out", out,
            "--no-progress", *SIM, *PRICE_FLAGS,
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        answers = read_artifact(out, ANSWERS).df
        assert answers["cost_usd"].sum() <= float(budget) * answers.height + 1e-12
        assert (answers["samples"] >= 1).all()


def test_on_the_fake_server_under_two_model_names(cascade: dict[str, Path], tmp_path: Path) -> None:
    from fake_openai import fake_openai

    out = tmp_path / "a.parquet"
    with fake_openai() as server:
        r = _run(
            cascade, out, "--model", "cheap=openai/cheap", "--model", "strong=openai/strong",
            "--api-base", server.base, *PRICE_FLAGS, "--concurrency", "4",
        )  # fmt: skip
        requests = list(server.requests)
    assert r.exit_code == 0, r.stderr
    answers = read_artifact(out, ANSWERS).df
    drawn = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    _check(answers, drawn)
    assert len(requests) == drawn.height
    sent = sorted(p["model"] for p in requests)
    assert sent == sorted(f"{m}" for m in drawn["model"].to_list())
    assert answers["correct"].all()  # the fake server adds right


def _runner(c: dict[str, Path], out: Path, base: str) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "ttcalloc", "run", str(c["policy"]), str(c["problems"]),
        "--split", "test", "--budget", BUDGET, "--model", "cheap=openai/cheap", "--model",
        "strong=openai/strong", "--api-base", base, *PRICE_FLAGS, "--out", str(out),
        "--concurrency", "2", "--flush-every", "1000", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test-dummy-key"}
    return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)


def test_a_killed_run_resumes_without_paying_twice(
    cascade: dict[str, Path], tmp_path: Path
) -> None:
    from fake_openai_control import held_openai, wait_held

    out = tmp_path / "a.parquet"
    # the 9th request is held: the kill lands mid-run however slow the machine
    with held_openai(hold_from=9, delay_s=0.05) as server:
        proc = _runner(cascade, out, server.base)
        wait_held(server, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert not out.exists() and len(server.requests) >= 9
        server.release()
        again = _runner(cascade, out, server.base)
        _, err = again.communicate(timeout=180)
        assert again.returncode == 0, err
        total = len(server.requests)
    drawn = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    assert not drawn.select("problem_id", "model", "sample_idx").is_duplicated().any()
    assert total - drawn.height <= 2, f"{total - drawn.height} samples paid twice"
    _check(read_artifact(out, ANSWERS).df, drawn)


def test_a_hard_budget_below_one_cheap_sample_each_is_refused(
    cascade: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "a.parquet"
    r = run_cli(
        "run", cascade["policy"], cascade["problems"], "--split", "test", "--budget", "0.0003", "--max-tokens", "4000",
        "--budget-unit", "usd", "--hard-budget", "--out", out, "--no-progress", *SIM,
        *PRICE_FLAGS,
    )  # fmt: skip
    assert r.exit_code != 0
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot guarantee every question 1 sample(s) of cheap" in errors[0]
    assert not out.exists()
