"""``ttcalloc run`` on a static policy over two models (actions ``MODEL:maj@k``) under one dollar
budget: on the simulated backend as two models, on the fake OpenAI server under two model names,
and on ``replay:`` of a two-model samples file; each question draws from its action's model, the
dollars add up from the prices, the hard budget in dollars holds, a missing model or price is a
one-line error, and a killed run resumes without drawing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from helpers import run_cli, write_jsonl

from ttcalloc.artifacts.io import read_artifact, write_artifact
from ttcalloc.artifacts.schemas import ANSWERS, PROBLEMS, SAMPLES
from ttcalloc.backends.replay import order

ROOT = Path(__file__).resolve().parents[1]
PRICES = {"cheap": (1.0, 2.0), "strong": (30.0, 60.0)}  # dollars per million in, out tokens
PRICE_FLAGS = ["--price", "cheap=1,2", "--price", "strong=30,60"]
BUDGET = "0.004"  # dollars per question: about half the questions on the strong model
SIM = ["--model", "cheap=sim/weak", "--model", "strong=sim/strong"]


def _question(i: int, hard: bool) -> dict[str, str]:
    """Easy: small sums in a short question; hard: long numbers in a long question."""
    if hard:
        a, b = 10_000 + 7 * i, 20_000 + 13 * i
        filler = " The numbers come from a long ledger of a shop." * 3
        return {"question": f"Q{i}:{filler} What is {a}+{b}?", "answer": f"#### {a + b}"}
    return {"question": f"Q{i}: What is {i}+{i + 1}?", "answer": f"#### {2 * i + 1}"}


def _samples(problems: pl.DataFrame, n: int = 8) -> pl.DataFrame:
    """Synthetic samples of two models: cheap is right on easy questions 90% of the time and
    on hard ones 20%; strong 95% on both; 30 prompt and 120 completion tokens each, dollars
    at :data:`PRICES`."""
    rng = np.random.default_rng(0)
    rows = []
    for pid, question, answer in problems.select("problem_id", "question", "answer").iter_rows():
        hard = "ledger" in question
        gold = answer
        for model, p in (("cheap", 0.2 if hard else 0.9), ("strong", 0.95)):
            pin, pout = PRICES[model]
            for i in range(n):
                right = bool(rng.random() < p)
                pred = gold if right else str(int(gold) + 1 + int(rng.integers(0, 2)))
                rows.append(sample_row(pid, model, i, pred, right, (30 * pin + 120 * pout) / 1e6))
    return pl.DataFrame(rows)


def sample_row(
    pid: str, model: str, i: int, pred: str, right: bool, cost: float
) -> dict[str, object]:
    """One sample's row: 30 prompt and 120 completion tokens, ``cost`` dollars."""
    return {
        "problem_id": pid,
        "model": model,
        "sample_idx": i,
        "response": f"So #### {pred}",
        "pred_answer": pred,
        "correct": right,
        "prompt_tokens": 30,
        "completion_tokens": 120,
        "cost_usd": cost,
    }


def two_model_curves(tmp: Path, n: int = 8) -> tuple[Path, Path, Path]:
    """In ``tmp``: problems (80, half hard, test share 0.3), their two-model samples
    (:func:`_samples`, ``n`` of each model) and the curves estimated from them in dollars
    (maj@1, 2, 4)."""
    from ttcalloc.stages import data
    from ttcalloc.stages.estimate import EstimateOptions, estimate_curves

    rows = [_question(i, hard=i % 2 == 1) for i in range(80)]
    problems = tmp / "problems.parquet"
    data.build_problems(
        write_jsonl(tmp / "q.jsonl", rows), problems, "gsm8k", data.DataOptions(test_frac=0.3)
    )
    samples = tmp / "samples.parquet"
    write_artifact(
        _samples(read_artifact(problems, PROBLEMS).df, n), samples, SAMPLES, stage="test"
    )
    curves = tmp / "curves.parquet"
    estimate_curves(samples, curves, EstimateOptions(ks=(1, 2, 4), cost="usd"), problems)
    return problems, samples, curves


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Problems (half hard), two-model samples, usd curves, the oracle at the budget and an
    imitate policy trained on it."""
    from ttcalloc.stages.solve import SolveOptions, solve_allocation
    from ttcalloc.stages.train import TrainOptions, train_policy

    tmp = tmp_path_factory.mktemp("models")
    problems, samples, curves = two_model_curves(tmp)
    alloc = tmp / "alloc.parquet"
    solve_allocation(curves, alloc, SolveOptions(budgets=(float(BUDGET),)), problems)
    policy = tmp / "policy"
    train_policy(
        alloc, problems, policy, TrainOptions(budget=float(BUDGET), folds=2, n_estimators=20)
    )
    return {"problems": problems, "samples": samples, "policy": policy, "tmp": tmp}


def _run(two: dict[str, Path], out: Path, *extra: str) -> Any:
    return run_cli(
        "run", two["policy"], two["problems"], "--split", "test", "--budget", BUDGET,
        "--out", out, "--no-progress", *extra,
    )  # fmt: skip


def _answers(path: Path) -> pl.DataFrame:
    return read_artifact(path, ANSWERS).df


def _drawn(folder: Path) -> pl.DataFrame:
    return read_artifact(folder, SAMPLES).df


def _check_models_and_dollars(answers: pl.DataFrame, drawn: pl.DataFrame) -> None:
    """Each question's samples are of its action's model, k of them; each sample's dollars are
    its tokens at its model's price; each answer's dollars are its samples' sum."""
    assert set(answers["model"].to_list()) <= set(PRICES)
    for row in answers.iter_rows(named=True):
        model, _, base = row["action"].rpartition(":")
        assert model == row["model"], row
        mine = drawn.filter(pl.col("problem_id") == row["problem_id"])
        assert set(mine["model"].to_list()) == {model}, row
        assert mine.height == row["samples"] == int(base.split("@")[1])
        assert row["cost_usd"] == pytest.approx(mine["cost_usd"].sum(), rel=1e-9)
        assert row["cost"] == pytest.approx(row["cost_usd"], rel=1e-9)
    for s in drawn.iter_rows(named=True):
        pin, pout = PRICES[s["model"]]
        want = (s["prompt_tokens"] * pin + s["completion_tokens"] * pout) / 1e6
        assert s["cost_usd"] == pytest.approx(want, rel=1e-9), s


def test_policy_file_lists_models_and_accepts_model_actions(two: dict[str, Path]) -> None:
    from ttcalloc.artifacts.policy_file import action_models, parse_action, read_policy_file

    info = read_policy_file(two["policy"])
    assert info["cost_unit"] == "usd"
    assert action_models([a["name"] for a in info["actions"]]) == ["cheap", "strong"]
    assert parse_action("gpt-4:maj@4") == ("gpt-4", "maj", 4)
    assert parse_action("a:b:maj@2") == ("a:b", "maj", 2)
    for bad in (":maj@1", "x\x07y:maj@1", "m:maj@0", "m:vote@2"):
        assert parse_action(bad) is None, bad


def test_a_bad_model_name_in_policy_json_is_one_line(two: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    from ttcalloc.artifacts.policy_file import read_policy_file
    from ttcalloc.common.errors import ArtifactError

    folder = tmp_path / "p"
    shutil.copytree(two["policy"], folder)
    data = json.loads((folder / "policy.json").read_text())
    data["actions"][0]["name"] = "che\x1bap:maj@1"
    (folder / "policy.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=r"actions\[0\]\.name") as exc:
        read_policy_file(folder)
    assert "\n" not in str(exc.value)


def test_split_model_flags() -> None:
    from ttcalloc.common.errors import InputError
    from ttcalloc.stages.run.models import split_model_flags

    assert split_model_flags(["sim/medium"]) == ("sim/medium", ())
    assert split_model_flags(["replay:a=b.parquet"]) == ("replay:a=b.parquet", ())
    label, pairs = split_model_flags(["a=sim/weak", "b=replay:x=y.parquet"])
    assert pairs == (("a", "sim/weak"), ("b", "replay:x=y.parquet"))
    assert label == "a=sim/weak, b=replay:x=y.parquet"
    for bad in (["a=sim/weak", "sim/strong"], ["a=x", "a=y"], ["=sim/weak"], ["sim/a", "sim/b"]):
        with pytest.raises(InputError, match="--model"):
            split_model_flags(bad)


def test_on_the_simulated_backend_as_two_models(two: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "a.parquet"
    r = _run(two, out, *SIM, *PRICE_FLAGS, "--json")
    assert r.exit_code == 0, r.stderr
    answers, drawn = _answers(out), _drawn(tmp_path / "a-samples.parquet")
    _check_models_and_dollars(answers, drawn)
    assert set(answers["model"].to_list()) == {"cheap", "strong"}  # both models answer
    result = json.loads(r.stdout)
    assert result["mean_usd"] == pytest.approx(answers["cost_usd"].mean(), rel=1e-9)
    shares = result["models"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["strong"] == pytest.approx((answers["model"] == "strong").mean())
    assert "; questions per model: cheap" in r.stderr
    assert "per question; questions per model" not in r.stderr  # the dollars said once
    # the strong model is the more accurate on the hard (long) questions
    hard = answers.filter(pl.col("question").str.contains("ledger"))
    assert (hard["model"] == "strong").mean() > (answers["model"] == "strong").mean() - 1e-9


def test_hard_budget_in_dollars_holds_across_models(two: dict[str, Path], tmp_path: Path) -> None:
    for budget in ("0.002", BUDGET):
        out = tmp_path / f"h{budget}.parquet"
        r = run_cli(
            "run", two["policy"], two["problems"], "--split", "test", "--budget", budget,
            "--out", out, "--no-progress", "--hard-budget", "--max-tokens", "300",
            *SIM, *PRICE_FLAGS,
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        answers = _answers(out)
        _check_models_and_dollars(answers, _drawn(tmp_path / f"h{budget}-samples.parquet"))
        assert answers["cost_usd"].sum() <= float(budget) * answers.height + 1e-12
        assert (answers["samples"] >= 1).all()  # every question got a sample


def test_on_the_fake_server_under_two_model_names(two: dict[str, Path], tmp_path: Path) -> None:
    from fake_openai import fake_openai

    out = tmp_path / "a.parquet"
    with fake_openai() as server:
        r = _run(
            two, out, "--model", "cheap=openai/cheap", "--model", "strong=openai/strong",
            "--api-base", server.base, *PRICE_FLAGS, "--concurrency", "4",
        )  # fmt: skip
        requests = list(server.requests)
    assert r.exit_code == 0, r.stderr
    answers, drawn = _answers(out), _drawn(tmp_path / "a-samples.parquet")
    _check_models_and_dollars(answers, drawn)
    # every request was sent under the model its question's action names
    by_question = {q: m for q, m in answers.select("question", "model").iter_rows()}
    asked = [(p["model"], p["messages"][-1]["content"]) for p in requests]
    assert len(asked) == drawn.height
    for model, content in asked:
        owner = [q for q in by_question if q in content]
        assert len(owner) == 1 and by_question[owner[0]] == model, (model, content)
    assert answers["correct"].all()  # the fake server adds right


def test_on_replay_of_a_two_model_samples_file(two: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "a.parquet"
    spec = f"replay:{two['samples']}"
    r = _run(two, out, "--model", f"cheap={spec}", "--model", f"strong={spec}", "--seed", "3")
    assert r.exit_code == 0, r.stderr
    answers, drawn = _answers(out), _drawn(tmp_path / "a-samples.parquet")
    _check_models_and_dollars(answers, drawn)
    recorded = read_artifact(two["samples"], SAMPLES).df
    for (pid, model), group in drawn.group_by("problem_id", "model"):
        pool = recorded.filter((pl.col("problem_id") == pid) & (pl.col("model") == model))
        pool = pool.sort("sample_idx")
        perm = order(3, str(pid), pool.height)
        want = pool[[int(perm[i]) for i in group.sort("sample_idx")["sample_idx"].to_list()]]
        got = group.sort("sample_idx")
        assert got["pred_answer"].to_list() == want["pred_answer"].to_list()
        assert got["cost_usd"].to_list() == want["cost_usd"].to_list()


def test_replay_of_a_file_of_several_models_names_the_model_that_lacks_a_sample(
    two: dict[str, Path],
) -> None:
    from ttcalloc.backends.base import FatalError, SamplingParams
    from ttcalloc.backends.replay import MODEL_KEY, ReplayBackend

    backend = ReplayBackend(f"replay:{two['samples']}", SamplingParams(extra={MODEL_KEY: "strong"}))
    with pytest.raises(FatalError, match=r"question 'nope' has no samples of strong in "):
        backend.choice("nope", 0)
    pid = next(iter(backend.pools))
    with pytest.raises(FatalError, match=r"has no recorded sample of strong left in "):
        backend.choice(pid, len(backend.pools[pid]))


def test_a_missing_model_or_price_is_one_line(two: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "a.parquet"
    cases = [
        (["--model", "cheap=sim/weak", *PRICE_FLAGS], "no backend for the policy's model 'strong'"),
        ([*SIM, "--price", "cheap=1,2"], "no price for model 'strong'"),
        (["--model", "sim/weak", *PRICE_FLAGS], "give --model NAME=SPEC for each"),
        ([*SIM, "--model", "other=sim/weak", *PRICE_FLAGS], "the policy has no model 'other'"),
        ([*SIM, *PRICE_FLAGS, "--price-in", "1"], "--price NAME=IN,OUT"),
        ([*SIM, *PRICE_FLAGS, "--compare", "uniform"], "several models"),
    ]
    for args, message in cases:
        r = _run(two, out, *args)
        assert r.exit_code != 0, (args, r.stderr)
        errors = [line for line in r.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and message in errors[0], (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert not out.exists() and not (tmp_path / "a-samples.parquet").exists()


def test_a_price_for_no_model_of_the_policy_is_one_line(
    two: dict[str, Path], tmp_path: Path
) -> None:
    """``--price NAME=IN,OUT`` naming no model of the policy (a typo) is refused, as an
    unknown ``--model NAME`` is; a ``--prices`` file may price other models (a shared table)."""
    out = tmp_path / "a.parquet"
    r = _run(two, out, *SIM, *PRICE_FLAGS, "--price", "gpt-5=1,2")
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.stderr
    assert lines[0] == (
        "error: --price gpt-5=1,2: the policy has no model 'gpt-5' (its models: cheap, strong)"
    )
    assert not out.exists() and not (tmp_path / "a-samples.parquet").exists()
    r = _run(two, out, *SIM, *PRICE_FLAGS, "--prompt-tokens", "stron=500")  # a typo too
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.exit_code == 2 and lines == [
        "error: --prompt-tokens stron=500: the policy has no model 'stron' (its models: cheap, "
        "strong)"
    ], r.stderr
    table = {m: {"input": i, "output": o} for m, (i, o) in {**PRICES, "gpt-5": (1, 2)}.items()}
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(table))
    r = _run(two, out, *SIM, "--prices", prices)
    assert r.exit_code == 0, r.stderr


def _runner(two: dict[str, Path], out: Path, base: str) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "ttcalloc", "run", str(two["policy"]), str(two["problems"]),
        "--split", "test", "--budget", BUDGET, "--model", "cheap=openai/cheap", "--model",
        "strong=openai/strong", "--api-base", base, *PRICE_FLAGS, "--out", str(out),
        "--concurrency", "2", "--flush-every", "1000", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test-dummy-key"}
    return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)


def test_a_killed_run_resumes_without_drawing_twice(two: dict[str, Path], tmp_path: Path) -> None:
    from fake_openai import fake_openai
    from fake_openai_control import held_openai, wait_held

    out = tmp_path / "a.parquet"
    # the 11th request is held: the kill lands mid-run however slow the machine
    with held_openai(hold_from=11, delay_s=0.05) as server:
        proc = _runner(two, out, server.base)
        wait_held(server, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        first = len(server.requests)
        assert not out.exists() and first >= 11
        server.release()
        again = _runner(two, out, server.base)
        _, err = again.communicate(timeout=180)
        assert again.returncode == 0, err
        total = len(server.requests)
    answers, drawn = _answers(out), _drawn(tmp_path / "a-samples.parquet")
    assert not drawn.select("problem_id", "model", "sample_idx").is_duplicated().any()
    assert total - drawn.height <= 2, f"{total - drawn.height} samples paid twice"
    assert answers["samples"].sum() == drawn.height
    _check_models_and_dollars(answers, drawn)
    # and the answers are those of a run never interrupted
    with fake_openai() as server:
        ref = _run(
            two, tmp_path / "ref.parquet", "--model", "cheap=openai/cheap", "--model",
            "strong=openai/strong", "--api-base", server.base, *PRICE_FLAGS,
        )  # fmt: skip
    assert ref.exit_code == 0, ref.stderr
    cols = ["problem_id", "final_answer", "samples", "action", "model"]
    assert answers.select(cols).equals(_answers(tmp_path / "ref.parquet").select(cols))


def test_prices_recorded_with_the_curves_are_the_default(
    two: dict[str, Path], tmp_path: Path
) -> None:
    """Curves whose provenance records the price table (``params["prices"]``, as ``estimate``
    writes for dollar curves): a policy trained on them runs without --price, at those prices;
    a --price flag wins over them."""
    from ttcalloc.artifacts.schemas import CURVES
    from ttcalloc.stages.solve import SolveOptions, solve_allocation
    from ttcalloc.stages.train import TrainOptions, train_policy

    art = read_artifact(two["tmp"] / "curves.parquet", CURVES)
    table = {m: {"input": i, "output": o, "prompt_tokens": None, "source": "test"}
             for m, (i, o) in PRICES.items()}  # fmt: skip
    standard = {"artifact", "schema_version", "tool", "tool_version", "stage", "params",
                "inputs", "created"}  # fmt: skip
    curves = tmp_path / "curves.parquet"
    write_artifact(
        art.df, curves, CURVES, stage="estimate",
        params=dict(art.meta.get("params") or {}) | {"prices": table},
        inputs={"samples": two["samples"]},
        extra_meta={k: v for k, v in art.meta.items() if k not in standard},
    )  # fmt: skip
    alloc, policy = tmp_path / "alloc.parquet", tmp_path / "policy"
    solve_allocation(curves, alloc, SolveOptions(budgets=(float(BUDGET),)), two["problems"])
    train_policy(
        alloc, two["problems"], policy, TrainOptions(budget=float(BUDGET), folds=2, n_estimators=20)
    )
    out = tmp_path / "a.parquet"
    r = run_cli(
        "run", policy, two["problems"], "--split", "test", "--budget", BUDGET, "--out", out,
        "--no-progress", *SIM,
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    _check_models_and_dollars(_answers(out), _drawn(tmp_path / "a-samples.parquet"))
    # a flag wins over the recorded price
    r = run_cli(
        "run", policy, two["problems"], "--split", "test", "--budget", BUDGET, "--out",
        tmp_path / "b.parquet", "--no-progress", *SIM, "--price", "cheap=2,4",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    drawn = _drawn(tmp_path / "b-samples.parquet").filter(pl.col("model") == "cheap")
    want = (drawn["prompt_tokens"] * 2 + drawn["completion_tokens"] * 4) / 1e6
    assert np.allclose(drawn["cost_usd"].to_numpy(), want.to_numpy(), rtol=1e-9)


def test_a_rerun_is_skipped_and_another_backend_for_a_model_is_refused(
    two: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "a.parquet"
    assert _run(two, out, *SIM, *PRICE_FLAGS).exit_code == 0
    again = _run(two, out, *SIM, *PRICE_FLAGS)
    assert again.exit_code == 0 and "up to date" in again.stderr, again.stderr
    swapped = ["--model", "cheap=sim/medium", "--model", "strong=sim/strong"]
    r = _run(two, out, *swapped, *PRICE_FLAGS)
    assert r.exit_code != 0 and "holds samples of model 'cheap' drawn from sim/weak" in r.stderr


def test_max_cost_caps_the_dollars_across_models(two: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "a.parquet"
    r = _run(two, out, *SIM, *PRICE_FLAGS, "--max-cost", "0.02", "--max-tokens", "300")
    assert r.exit_code == 1 and "--max-cost" in r.stderr, r.stderr  # stopped, what arrived kept
    drawn = _drawn(tmp_path / "a-samples.parquet")
    assert 0 < drawn["cost_usd"].sum() <= 0.02
    assert set(drawn["model"].to_list()) <= set(PRICES)


def test_one_model_takes_its_price_from_price_flags(tmp_path: Path) -> None:
    """A single-model policy: ``--price SPEC=IN,OUT`` for the --model string prices it (as
    --price-in/--price-out), and an entry for another model is a one-line error."""
    from helpers import small_imitate_policy

    policy = small_imitate_policy(tmp_path)
    problems = tmp_path / "problems.parquet"
    base = ["run", policy, problems, "--split", "test", "--budget", "1.5", "--no-progress"]
    out = tmp_path / "a.parquet"
    r = run_cli(*base, "--out", out, "--model", "sim/medium", "--price", "sim/medium=3,7")
    assert r.exit_code == 0, r.stderr
    drawn = _drawn(tmp_path / "a-samples.parquet")
    want = (drawn["prompt_tokens"] * 3 + drawn["completion_tokens"] * 7) / 1e6
    assert np.allclose(drawn["cost_usd"].to_numpy(), want.to_numpy(), rtol=1e-9)
    r = run_cli(*base, "--out", tmp_path / "b.parquet", "--model", "sim/medium", "--price", "x=1,1")
    assert r.exit_code != 0 and "no price for model 'sim/medium'" in r.stderr
    r = run_cli(*base, "--out", tmp_path / "c.parquet", "--model", "sim/medium",
                "--price", "sim/medium=3,7", "--price", "x=1,1")  # fmt: skip
    assert r.exit_code == 2 and r.stderr.count("error:") == 1, r.stderr
    assert "--price x=1,1: the run has no model 'x' (its model: sim/medium)" in r.stderr
    assert not (tmp_path / "c.parquet").exists()
