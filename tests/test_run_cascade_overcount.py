"""``run --hard-budget`` of a learned cascade over two models in dollars against a server that
counts more prompt tokens than litellm's tokenizer (the fake server at one prompt token per
prompt character, about 4x the estimate): a sample can cost more than its model's reserved
worst case.  Before each model's worst case rose to the most its samples cost (and the round's
queued samples waited, fell back or were cut), the run did not even warn: $0.057378 paid under a
$0.052 cap (budget 0.002, 26 questions), $0.411203 under $0.40 (budget 0.005, 80 questions).
Not held, before or after: budget 0.0005 on 26 questions ($0.013922 of $0.013), whose only strong
sample, the first of that model, cost more than its reserve and the room left."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from helpers import run_cli
from test_run_cascade import cascade  # noqa: F401 (the `cascade` fixture)
from test_run_models import PRICE_FLAGS

from ttcalloc.artifacts.io import read_artifact
from ttcalloc.artifacts.schemas import ANSWERS, SAMPLES

MODELS = ["--model", "cheap=openai/cheap", "--model", "strong=openai/strong"]


@pytest.mark.parametrize("budget", ["0.001", "0.002", "0.003", "0.005"])
@pytest.mark.parametrize(("concurrency", "split"), [(4, ["--split", "test"]), (8, [])])
def test_a_cascades_hard_budget_in_dollars_holds_when_the_server_counts_more(
    cascade: dict[str, Path],  # noqa: F811
    tmp_path: Path,
    budget: str,
    concurrency: int,
    split: list[str],
) -> None:
    from fake_openai import fake_openai

    out = tmp_path / "a.parquet"
    with fake_openai(tokens_per_char=1.0) as server:
        r = run_cli(
            "run", cascade["policy"], cascade["problems"], *split, "--budget", budget,
            "--budget-unit", "usd", "--hard-budget", "--max-tokens", "16", "--out", out,
            "--no-progress", "--api-base", server.base, *MODELS, *PRICE_FLAGS,
            "--concurrency", concurrency,
        )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    df = read_artifact(out, ANSWERS).df
    paid = float(read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df["cost_usd"].sum())
    cap = float(budget) * df.height
    strong = int((df["model"] == "strong").sum())
    print(f"budget={budget} c={concurrency} q={df.height}: cap {cap:.6f}, paid {paid:.6f}, "
          f"min samples {df['samples'].min()}, strong {strong}")  # fmt: skip
    assert paid <= cap + 1e-12, (paid, cap)
    assert df["samples"].min() >= 1  # every question answered
    warned = [line for line in r.stderr.splitlines() if "more than the" in line]
    assert len(warned) == 1 and "reserve the most a sample has cost" in warned[0], r.stderr
    assert pl.Series(df["cost_usd"]).sum() <= cap + 1e-12


def test_after_an_overrun_a_cascade_decides_alike_at_concurrency_1_and_on_a_rerun(
    cascade: dict[str, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    from fake_openai import fake_openai

    out = tmp_path / "a.parquet"
    args = [
        "run", cascade["policy"], cascade["problems"], "--budget", "0.005", "--budget-unit",
        "usd", "--hard-budget", "--max-tokens", "16", "--out", out, "--no-progress", "--json",
        *MODELS, *PRICE_FLAGS,
    ]  # fmt: skip
    cols = ["problem_id", "final_answer", "samples", "cost", "action", "decisions"]
    runs = []
    for concurrency in (8, 1):
        with fake_openai(tokens_per_char=1.0) as server:
            r = run_cli(
                *args, "--api-base", server.base, "--concurrency", concurrency, "--force",
                "--samples-out", tmp_path / f"s{concurrency}",
            )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        runs.append(read_artifact(out, ANSWERS).df.select(cols))
    again = run_cli(
        *args, "--api-base", "http://127.0.0.1:9/v1", "--force", "--samples-out", tmp_path / "s1"
    )
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["sampling"]["requests"] == 0
    runs.append(read_artifact(out, ANSWERS).df.select(cols))
    assert runs[0].equals(runs[1]) and runs[1].equals(runs[2])
    assert any("cut_by_hard_budget" in d for d in runs[0]["decisions"].to_list())
    assert "reserve the most a sample has cost" in again.stderr  # held samples charged alike
