"""``run --hard-budget`` in dollars over two models (a static policy's ``MODEL:maj@k`` actions)
against a server that counts more prompt tokens than litellm's tokenizer: the fake server here
reports one prompt token per prompt character (about 4x the estimate), so a sample of either
model can cost more than its model's reserved worst case.  Before each model's worst case rose to
the most its samples cost, the run only warned: $0.131813 paid under a $0.13 cap (budget 0.005,
26 questions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import run_cli
from test_run_models import PRICE_FLAGS, PRICES, two  # noqa: F401 (the `two` fixture)

from ttcalloc.artifacts.io import read_artifact
from ttcalloc.artifacts.schemas import ANSWERS, SAMPLES
from ttcalloc.stages.run.ledger import ModelLedger

MODELS = ["--model", "cheap=openai/cheap", "--model", "strong=openai/strong"]


def test_a_model_ledger_raises_one_models_worst_case_in_flight_too() -> None:
    ledger = ModelLedger(
        total=20.0, worst=1.0, floor=1, worsts={"cheap": 1.0, "strong": 4.0}, cheapest="cheap"
    )
    ledger.open(["a", "b", "c", "d"], [0, 0, 0, 0])
    assert ledger.assign("a", "strong") and ledger.assign("b", "cheap")
    assert ledger.admit("a", 2) == 2 and ledger.admit("b", 1) == 1
    assert ledger.reserved == 9.0
    assert not ledger.raise_worst_of("a", 4.0)  # no more than reserved: nothing changes
    ledger.settle_for("a", 1, 6.0)  # one of a's samples cost 6: strong's worst case rises
    assert ledger.raise_worst_of("a", 6.0)
    assert ledger.worst_for("a") == 6.0 and ledger.worst_for("c") == 1.0
    assert ledger.reserved == 7.0  # a's other sample (6) and b's (1) in flight
    ledger.settle_for("b", 1, 3.0)  # cheap overran: the floor of c and d (unassigned) rises
    assert ledger.raise_worst_of("b", 3.0) and ledger.worst == 3.0
    assert ledger.worst_for("c") == 3.0 and ledger.worst_for("a") == 6.0
    # spent 9 + reserved 6 + owed 2 x 3 > 20: floors alone, while they fit
    assert not ledger.feasible() and not ledger.assign("c", "strong")
    assert ledger.admit("c", 2) == 1 and ledger.admit("d", 1) == 0
    ledger.settle_for("a", 1, 6.0)
    ledger.settle_for("c", 1, 2.0)  # 3 left: d's floor fits, nothing beyond it
    assert ledger.admit("d", 2) == 1
    ledger.settle_for("d", 1, 3.0)
    assert ledger.spent == 20.0 and ledger.reserved == 0.0


def _run(
    two: dict[str, Path],  # noqa: F811
    tmp_path: Path,
    budget: str,
    concurrency: int,
    split: list[str],
) -> tuple[Any, pl.DataFrame, float]:
    from fake_openai import fake_openai

    out = tmp_path / "a.parquet"
    with fake_openai(tokens_per_char=1.0) as server:
        r = run_cli(
            "run", two["policy"], two["problems"], *split, "--budget", budget,
            "--out", out, "--no-progress", "--hard-budget", "--max-tokens", "16",
            "--api-base", server.base, *MODELS, *PRICE_FLAGS, "--concurrency", concurrency,
        )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    samples = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    return r, read_artifact(out, ANSWERS).df, float(samples["cost_usd"].sum())


@pytest.mark.parametrize("budget", ["0.0045", "0.005", "0.0065"])
@pytest.mark.parametrize(
    ("concurrency", "split"), [(1, ["--split", "test"]), (4, ["--split", "test"]), (8, [])]
)
def test_hard_budget_in_dollars_over_two_models_holds_when_the_server_counts_more(
    two: dict[str, Path],  # noqa: F811
    tmp_path: Path,
    budget: str,
    concurrency: int,
    split: list[str],
) -> None:
    r, df, paid = _run(two, tmp_path, budget, concurrency, split)
    cap = float(budget) * df.height
    strong = int((df["model"] == "strong").sum())
    print(f"budget={budget} c={concurrency} q={df.height}: cap {cap:.6f}, paid {paid:.6f}, "
          f"min samples {df['samples'].min()}, strong {strong}/{df.height}")  # fmt: skip
    assert set(df["model"].drop_nulls().to_list()) <= set(PRICES)
    assert paid <= cap + 1e-12, (paid, cap)
    assert df["cost_usd"].sum() <= cap + 1e-12
    assert df["samples"].min() >= 1  # every question answered
    warned = [line for line in r.stderr.splitlines() if "more than the" in line]
    assert len(warned) == 1 and "reserve the most a sample has cost" in warned[0], r.stderr
