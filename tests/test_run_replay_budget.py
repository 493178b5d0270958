"""``run --hard-budget`` on ``replay:``: recorded samples are served as drawn, whatever
``--max-tokens`` says, so a sample's worst case is at least the dearest recorded sample of the
questions asked; the hard budget then holds (budget x questions, every question its floor) in
tokens and in dollars over two models, even when the replayed samples run far longer than
``--max-tokens`` and than the samples the policy was trained on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import run_cli
from test_run import trained_fixture  # noqa: F401 (the `trained` fixture)
from test_run_budget import trained_tokens  # noqa: F401 (the `trained_tokens` fixture)
from test_run_models import PRICE_FLAGS, PRICES, two  # noqa: F401 (the `two` fixture)

from ttcalloc.artifacts.io import read_artifact, write_artifact
from ttcalloc.artifacts.schemas import ANSWERS, SAMPLES


def _longer(samples: Path, out: Path, times: float) -> Path:
    """``samples`` re-written with ``times`` their completion tokens (and dollars to match, at
    :data:`PRICES` where the model has one)."""
    df = read_artifact(samples, SAMPLES).df
    tokens = (pl.col("completion_tokens") * times).round().cast(df["completion_tokens"].dtype)
    df = df.with_columns(tokens.alias("completion_tokens"))
    if set(df["model"].unique().to_list()) <= set(PRICES):
        pin = pl.col("model").replace_strict({m: p[0] for m, p in PRICES.items()})
        pout = pl.col("model").replace_strict({m: p[1] for m, p in PRICES.items()})
        cost = (pl.col("prompt_tokens") * pin + pl.col("completion_tokens") * pout) / 1e6
        df = df.with_columns(cost.cast(pl.Float64).alias("cost_usd"))
    write_artifact(df, out, SAMPLES, stage="test")
    return out


@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_hard_budget_in_tokens_holds_on_replayed_samples_longer_than_max_tokens(
    trained: dict[str, Path],
    trained_tokens: dict[str, Any],  # noqa: F811
    tmp_path: Path,
    learner: str,
) -> None:
    recorded = _longer(trained["tmp"] / "samples", tmp_path / "long.parquet", 1.5)
    most = read_artifact(recorded, SAMPLES).df.select(
        pl.col("prompt_tokens") + pl.col("completion_tokens")
    )
    budget = 600  # above the dearest recorded sample, which --max-tokens 16 is far below
    assert most.max().item() < budget and most.mean().item() > 16 + 130
    out = tmp_path / "a.parquet"
    r = run_cli(
        "run", trained_tokens[learner], trained["problems"], "--split", "test",
        "--model", f"replay:{recorded}", "--budget", budget, "--hard-budget",
        "--max-tokens", "16", "--out", out, "--no-progress", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    df = read_artifact(out, ANSWERS).df
    assert json.loads(r.stdout)["cost_unit"] == "tokens"
    assert df["cost"].sum() <= budget * df.height + 1e-6, (df["cost"].sum(), budget * df.height)
    assert df["samples"].min() >= 1  # every question got its floor
    assert "more than the" not in r.stderr  # no sample cost more than was reserved for it


def test_hard_budget_in_tokens_on_replay_is_refused_when_the_dearest_sample_does_not_fit(
    trained: dict[str, Path],
    trained_tokens: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    recorded = _longer(trained["tmp"] / "samples", tmp_path / "long.parquet", 3.0)
    out = tmp_path / "a.parquet"
    r = run_cli(
        "run", trained_tokens["imitate"], trained["problems"], "--split", "test",
        "--model", f"replay:{recorded}", "--budget", 400, "--hard-budget",
        "--max-tokens", "16", "--out", out, "--no-progress",
    )  # fmt: skip
    assert r.exit_code != 0
    assert "--hard-budget" in r.stderr and "dearest recorded sample" in r.stderr, r.stderr
    assert not out.exists()


@pytest.mark.parametrize("budget", ["0.004", "0.01"])
def test_hard_budget_in_dollars_holds_on_two_replayed_models_longer_than_max_tokens(
    two: dict[str, Path],  # noqa: F811
    tmp_path: Path,
    budget: str,
) -> None:
    recorded = _longer(two["samples"], tmp_path / "long.parquet", 5.0)
    spec = f"replay:{recorded}"
    out = tmp_path / "a.parquet"
    r = run_cli(
        "run", two["policy"], two["problems"], "--split", "test", "--budget", budget,
        "--out", out, "--no-progress", "--hard-budget", "--max-tokens", "16",
        "--model", f"cheap={spec}", "--model", f"strong={spec}", *PRICE_FLAGS,
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    df = read_artifact(out, ANSWERS).df
    total = df["cost_usd"].sum()
    assert total <= float(budget) * df.height + 1e-12, (total, float(budget) * df.height)
    assert df["samples"].min() >= 1  # every question got its floor


def test_replay_reports_the_dearest_recorded_sample_of_the_questions_asked(tmp_path: Path) -> None:
    from test_run_models import sample_row

    from ttcalloc.backends import SamplingParams
    from ttcalloc.backends.replay import ReplayBackend

    rows = [sample_row("a", "m", i, "1", True, 0.001 * (i + 1)) for i in range(2)]
    rows.append(sample_row("b", "m", 0, "1", True, 0.5) | {"completion_tokens": 900})
    # no dollars recorded: priced at the model's price, its completion from its characters
    rows.append(sample_row("c", "m", 0, "1", True, 0.0) | {"cost_usd": None, "response": "x" * 400,
                                                            "completion_tokens": None})  # fmt: skip
    path = tmp_path / "s.parquet"
    write_artifact(pl.DataFrame(rows), path, SAMPLES, stage="test")
    backend = ReplayBackend(f"replay:{path}", SamplingParams(price_in=1.0, price_out=1000.0))
    assert backend.most_cost("samples", ["a"]) == 1.0
    assert backend.most_cost("usd", ["a"]) == pytest.approx(0.002)
    assert backend.most_cost("tokens", ["a"]) == 150.0
    assert backend.most_cost("completion-tokens", ["a", "b"]) == 900.0
    assert backend.most_cost("tokens", ["a", "b"]) == 930.0
    assert backend.most_cost("usd", ["a", "b"]) == pytest.approx(0.5)
    assert backend.most_cost("usd", ["c"]) == pytest.approx((30 * 1.0 + 100 * 1000.0) / 1e6)
    assert backend.most_cost("tokens", ["unknown"]) == 0.0
