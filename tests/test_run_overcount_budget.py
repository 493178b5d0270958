"""``run --hard-budget`` against a server that counts more prompt tokens than litellm's tokenizer
(a chat template, another tokenizer): a sample then costs more than its reserved worst case.
The fake server here reports one prompt token per prompt character (about 4x the estimate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import make_questions, run_cli, write_jsonl
from test_run import trained_fixture  # noqa: F401 (the `trained` fixture)
from test_run_budget import trained_tokens  # noqa: F401 (the `trained_tokens` fixture)

from ttcalloc.artifacts.io import read_artifact
from ttcalloc.artifacts.schemas import ANSWERS, SAMPLES
from ttcalloc.core.vote import Ledger


def test_a_ledger_raises_its_worst_case_and_then_admits_floors_alone_while_they_fit() -> None:
    ledger = Ledger(total=10.0, worst=1.0, floor=1)
    ledger.open(["a", "b", "c", "d"], [0, 0, 0, 0])
    assert ledger.admit("a", 2) == 2 and ledger.admit("b", 1) == 1
    assert not ledger.raise_worst(1.0)  # no more than reserved: nothing changes
    ledger.settle(2, 6.0)  # a's two samples cost 3 each: 4 more than reserved
    assert ledger.raise_worst(3.0) and ledger.worst == 3.0
    assert ledger.reserved == 3.0  # b's sample in flight, reserved at 3 now
    # spent 6 + reserved 3 + owed 2 x 3 > 10: c gets its floor only if it fits (it does not)
    assert not ledger.feasible() and ledger.admit("c", 2) == 0
    ledger.settle(1, 1.0)  # b cost 1: 3 left, one floor sample fits, and nothing beyond floors
    assert ledger.admit("c", 2) == 1 and ledger.admit("d", 1) == 0
    ledger.settle(1, 3.0)
    assert ledger.spent == 10.0


def _overcounted(
    trained: dict[str, Path], policy: Path, tmp_path: Path, budget: int, concurrency: int
) -> tuple[Any, pl.DataFrame, float]:
    from fake_openai import fake_openai

    out = tmp_path / "a.parquet"
    with fake_openai(tokens_per_char=1.0) as server:
        r = run_cli(
            "run", policy, trained["problems"], "--split", "test", "--model", "openai/fake",
            "--api-base", server.base, "--budget", budget, "--hard-budget", "--max-tokens", "16",
            "--concurrency", concurrency, "--out", out, "--no-progress", "--json",
        )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    samples = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    paid = float(samples.select(pl.col("prompt_tokens") + pl.col("completion_tokens")).sum().item())
    return r, read_artifact(out, ANSWERS).df, paid


@pytest.mark.parametrize("learner", ["imitate", "stop"])
@pytest.mark.parametrize("budget", [371, 600])
@pytest.mark.parametrize("concurrency", [1, 4])
def test_hard_budget_in_tokens_holds_when_the_server_counts_more_prompt_tokens(
    trained: dict[str, Path],
    trained_tokens: dict[str, Any],  # noqa: F811
    tmp_path: Path,
    learner: str,
    budget: int,
    concurrency: int,
) -> None:
    r, df, paid = _overcounted(trained, trained_tokens[learner], tmp_path, budget, concurrency)
    cap = budget * df.height
    print(f"{learner} budget={budget} c={concurrency}: cap {cap}, answers {df['cost'].sum()}, "
          f"paid {paid}, min samples {df['samples'].min()}")  # fmt: skip
    assert json.loads(r.stdout)["cost_unit"] == "tokens"
    assert df["cost"].sum() <= cap + 1e-6, (df["cost"].sum(), cap)
    assert paid <= cap + 1e-6, (paid, cap)
    assert df["samples"].min() >= 1  # every question got its floor
    # said in one line, in the adaptive driver's words
    warned = [line for line in r.stderr.splitlines() if "more than the" in line]
    assert len(warned) == 1 and "reserve the most a sample has cost" in warned[0], r.stderr


@pytest.mark.parametrize("budget", [371, 600])
def test_a_static_policy_on_60_questions_at_concurrency_8_holds_the_hard_budget(
    trained_tokens: dict[str, Any],  # noqa: F811
    tmp_path: Path,
    budget: int,
) -> None:
    """Several questions in flight at once (a recalibration every 3 questions, not every one)."""
    from fake_openai import fake_openai

    q = write_jsonl(tmp_path / "q.jsonl", make_questions(60, seed=5))
    out = tmp_path / "a.parquet"
    with fake_openai(tokens_per_char=1.0) as server:
        r = run_cli(
            "run", trained_tokens["imitate"], q, "--model", "openai/fake", "--api-base",
            server.base, "--budget", budget, "--hard-budget", "--max-tokens", "16",
            "--concurrency", "8", "--out", out, "--no-progress", "--json",
        )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    df = read_artifact(out, ANSWERS).df
    samples = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    paid = float(samples.select(pl.col("prompt_tokens") + pl.col("completion_tokens")).sum().item())
    print(f"60q budget={budget} c=8: cap {budget * 60}, paid {paid}, "
          f"min samples {df['samples'].min()}, samples {df['samples'].sum()}")  # fmt: skip
    assert paid <= budget * 60 + 1e-6, (paid, budget * 60)
    assert df["samples"].min() >= 1


def test_a_rerun_after_an_overrun_decides_as_the_first_run(
    trained: dict[str, Path],
    trained_tokens: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    _, first, _ = _overcounted(trained, trained_tokens["imitate"], tmp_path, 371, 4)
    again = run_cli(
        "run", trained_tokens["imitate"], trained["problems"], "--split", "test", "--model",
        "openai/fake", "--api-base", "http://127.0.0.1:9/v1", "--budget", 371, "--hard-budget",
        "--max-tokens", "16", "--out", tmp_path / "a.parquet", "--no-progress", "--json",
        "--force",
    )  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["sampling"]["requests"] == 0
    cols = ["problem_id", "final_answer", "samples", "cost", "action", "decisions"]
    assert read_artifact(tmp_path / "a.parquet", ANSWERS).df.select(cols).equals(first.select(cols))
    assert "reserve the most a sample has cost" in again.stderr  # held samples charged alike


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_the_worst_case_prompt_is_the_longest_of_every_variant(tmp_path: Path, seed: int) -> None:
    """A sample's worst case is reserved at the longest prompt whichever variant it draws: a
    review found only sample 0's variant counted, so a run whose later samples took a 500-token
    variant paid 645 tokens under a 520 cap (depending on --seed)."""
    from ttcalloc.sampler.options import SampleOptions
    from ttcalloc.stages.run.budget import every_prompt
    from ttcalloc.stages.run.items import Item
    from ttcalloc.text.variants import parse_variant

    long = tmp_path / "long.txt"
    long.write_text("Think very carefully. " * 200 + "{question}\n")
    variants = (parse_variant("cot=numeric"), parse_variant(f"long={long}"))
    so = SampleOptions(model="openai/fake", seed=seed, prompt_variants=variants, progress=False)
    problem = {"answer": "1", "grader": "numeric"}
    items = [
        Item({"problem_id": f"q{i}", "question": f"What is {i}+1?", **problem}, {})
        for i in range(3)
    ]
    texts = [" ".join(m["content"] for m in msgs) for msgs in every_prompt(so, None, items)]
    for i in range(3):
        mine = [t for t in texts if f"What is {i}+1?" in t]
        assert len(mine) == 2 and sum("Think very carefully." in t for t in mine) == 1, mine
    one = every_prompt(SampleOptions(model="openai/fake", progress=False), None, items)
    assert len(one) == 3  # one prompt: each question once
