"""``ttcalloc run`` under its budget: the hard budget is never exceeded, in samples and in tokens
(with truncated samples), and a rerun decides as the first run did; adaptive policies track the
budget in synchronous rounds whose decisions do not depend on the order samples arrive in."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import make_questions, run_cli, train_both, write_jsonl
from test_run import (
    _answers,
    _arith,
    _same_answers,
    trained_fixture,  # noqa: F401 (the `trained` fixture)
)

from ttcalloc.artifacts.io import read_artifact
from ttcalloc.artifacts.schemas import SAMPLES


@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_hard_budget_is_never_exceeded(
    trained: dict[str, Path], tmp_path: Path, learner: str
) -> None:
    from fake_openai import fake_openai

    q = _arith(tmp_path, 20)
    with fake_openai(wrong_every=2) as server:
        r = run_cli(
            "run", trained[learner], q, "--model", "openai/fake", "--api-base", server.base,
            "--budget", "1.2", "--hard-budget", "--concurrency", "4", "--out",
            tmp_path / "a.parquet", "--no-progress", "--json",
        )  # fmt: skip
        sent = len(server.requests)
    assert r.exit_code == 0, r.stderr
    df = _answers(tmp_path / "a.parquet")
    assert df["samples"].sum() <= 1.2 * 20 and sent <= 1.2 * 20
    assert df["samples"].min() >= 1 and df["final_answer"].null_count() == 0


@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_a_hard_budget_rerun_answers_as_the_first_run(
    trained: dict[str, Path], tmp_path: Path, learner: str
) -> None:
    q = write_jsonl(tmp_path / "q.jsonl", make_questions(40, seed=2))
    args = ["--model", "sim/medium", "--budget", "1.3", "--hard-budget", "--no-progress"]
    out = tmp_path / "h.parquet"
    r = run_cli("run", trained[learner], q, *args, "--out", out, "--compare", "uniform")
    assert r.exit_code == 0, r.stderr
    # the comparison is read with evaluate's words (40 questions are called few), or says that
    # both scored alike on every question (an interval [0, 0])
    verdict = re.search(r"\(paired bootstrap 95%\): the policy (.+)", r.stderr)
    assert verdict, r.stderr
    assert verdict[1] == "scores as uniform does on every question" or re.fullmatch(
        r"is (ahead of|behind|not distinguishable from) uniform \(with 40 questions only large "
        r"differences show\)",
        verdict[1],
    ), verdict[1]
    first = _answers(out)
    assert first["cost"].sum() <= 1.3 * 40
    # uniform's extra samples are in the folder now: the rerun must not count them
    r = run_cli("run", trained[learner], q, *args, "--out", out, "--json", "--force")
    assert r.exit_code == 0, r.stderr
    again = _answers(out)
    assert again["samples"].to_list() == first["samples"].to_list()
    assert again["final_answer"].to_list() == first["final_answer"].to_list()
    assert again["decisions"].to_list() == first["decisions"].to_list()
    assert json.loads(r.stdout)["sampling"]["requests"] == 0


# --- adaptive budget tracking in synchronous rounds -----------------------------------------

ARRIVALS: list[tuple[str, int]] = []
DELAY_SEED = [0]


def _register_shuffling_backend() -> None:
    """``shuffle/<skill>``: the simulated backend, each request delayed by a seeded random
    0-10 ms, so the order in which samples arrive changes with DELAY_SEED."""
    import asyncio
    import contextlib
    import random

    from ttcalloc.backends.registry import REGISTRY, register
    from ttcalloc.backends.simulated import SimulatedBackend

    if "shuffle" in REGISTRY:
        return

    class Shuffling(SimulatedBackend):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            rng = random.Random(f"{DELAY_SEED[0]}:{request.problem_id}:{request.first_idx}")
            await asyncio.sleep(rng.random() * 0.01)
            ARRIVALS.append((request.problem_id, request.first_idx))
            return await super().complete(request)

    @register("shuffle")
    @contextlib.asynccontextmanager
    async def _factory(model, params):  # type: ignore[no-untyped-def]
        yield Shuffling(model, params)


def test_adaptive_decisions_do_not_depend_on_arrival_order_and_track_the_budget(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    _register_shuffling_backend()
    q = write_jsonl(tmp_path / "q.jsonl", make_questions(80, seed=21))
    frames, orders = [], []
    for seed in (1, 2):
        DELAY_SEED[0] = seed
        ARRIVALS.clear()
        out = tmp_path / f"a{seed}.parquet"
        r = run_cli(
            "run", trained["stop"], q, "--model", "shuffle/medium", "--budget", "1.5",
            "--concurrency", "8", "--out", out, "--no-progress", "--json",
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        frames.append(_answers(out))
        orders.append(list(ARRIVALS))
        result = json.loads(r.stdout)
        # the realized mean cost meets the budget (the last round may overshoot by one sample)
        assert 1.5 * 0.9 <= result["mean_cost"] <= 1.5 + 1 / 80 + 1e-9, result["mean_cost"]
        rounds = result["rounds"]
        assert [x["round"] for x in rounds] == list(range(1, len(rounds) + 1))
        assert "round 1:" in r.stderr and "continue at price" in r.stderr
    assert orders[0] != orders[1] and sorted(orders[0]) == sorted(orders[1])
    _same_answers(frames[0], frames[1])
    # every decision of a round is taken at that round's one price
    for decisions in frames[0]["decisions"].to_list():
        for d in json.loads(decisions):
            price = rounds[d["after"] - 1]["price"]
            if "price" in d:
                crit = math.inf if d["critical"] is None else d["critical"]
                assert d["price"] == pytest.approx(price)
                assert crit >= price if not d["stop"] else crit <= price


@pytest.fixture(scope="module")
def trained_tokens(trained: dict[str, Path]) -> dict[str, Any]:
    """Policies whose cost unit is tokens (prompt + completion), from the same samples."""
    from ttcalloc.stages.estimate import EstimateOptions, estimate_curves
    from ttcalloc.stages.solve import SolveOptions, solve_allocation

    tmp = trained["tmp"] / "tokens"
    tmp.mkdir()
    curves = tmp / "curves.parquet"
    estimate_curves(
        trained["tmp"] / "samples", curves, EstimateOptions(ks=(1, 2, 4), cost="tokens"),
        trained["problems"],
    )  # fmt: skip
    one = pl.read_parquet(curves).filter(pl.col("k") == 1)["cost"].mean()
    budget = round(1.6 * float(one))
    solve_allocation(
        curves, tmp / "alloc.parquet", SolveOptions(budgets=(budget,)), trained["problems"]
    )
    out: dict[str, Any] = {"budget": budget}
    out.update(train_both(tmp / "alloc.parquet", trained["problems"], budget, tmp))
    return out


@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_hard_budget_in_tokens_with_truncated_samples(
    trained_tokens: dict[str, Any], tmp_path: Path, learner: str
) -> None:
    n, budget = 60, trained_tokens["budget"]
    q = write_jsonl(tmp_path / "q.jsonl", make_questions(n, seed=13))
    out = tmp_path / "a.parquet"
    r = run_cli(
        "run", trained_tokens[learner], q, "--model", "sim/medium", "--budget", budget,
        "--hard-budget", "--max-tokens", "160", "--out", out, "--no-progress", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["cost_unit"] == "tokens"
    df = _answers(out)
    samples = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    # the sim honours --max-tokens: long completions are cut, without an answer
    cut = samples.filter(pl.col("finish_reason") == "length")
    assert cut.height > 0 and cut["completion_tokens"].max() == 160
    assert cut["pred_answer"].null_count() == cut.height
    assert samples["completion_tokens"].max() <= 160
    # never above budget x questions, and every question got at least its one sample
    assert df["cost"].sum() <= budget * n + 1e-6, (df["cost"].sum(), budget * n)
    assert float(samples.select(pl.col("prompt_tokens") + pl.col("completion_tokens")).sum()
                 .item()) <= budget * n + 1e-6  # fmt: skip
    assert df["samples"].min() >= 1
    assert df["cost"].sum() >= 0.7 * budget * n  # the budget was used, not left idle


def test_a_static_policy_in_tokens_under_a_hard_budget_decides_alike_on_a_rerun_and_any_concurrency(
    trained_tokens: dict[str, Any], tmp_path: Path
) -> None:
    """Issue 25: in token units a sample's cost is not its expected cost, so a mu recalibrated
    on realized spend depended on which samples had arrived when a question started."""
    n, budget = 200, trained_tokens["budget"]
    q = write_jsonl(tmp_path / "q.jsonl", make_questions(n, seed=31))
    base = ["--model", "sim/medium", "--budget", budget, "--hard-budget", "--max-tokens", "160",
            "--no-progress", "--json"]  # fmt: skip
    frames, drawn = [], []
    for concurrency in (1, 8):
        out = tmp_path / f"c{concurrency}.parquet"
        r = run_cli("run", trained_tokens["imitate"], q, *base, "--concurrency", concurrency,
                    "--out", out)  # fmt: skip
        assert r.exit_code == 0, r.stderr
        frames.append(_answers(out))
        drawn.append(json.loads(r.stdout)["sampling"]["written"])
        assert frames[-1]["cost"].sum() <= budget * n + 1e-6
    # a rerun on the folder the first run filled decides as it did, and pays for nothing
    again = run_cli("run", trained_tokens["imitate"], q, *base, "--concurrency", "1",
                    "--out", tmp_path / "c1.parquet", "--force")  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["sampling"]["requests"] == 0
    cols = ["problem_id", "final_answer", "samples", "cost", "action", "decisions"]
    assert _answers(tmp_path / "c1.parquet").select(cols).equals(frames[0].select(cols))
    assert frames[0].select(cols).equals(frames[1].select(cols))
    assert drawn[0] == drawn[1]
