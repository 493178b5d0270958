"""Recorded dollar costs next to prices: what `estimate` says and records, and what `import` says.

A newcomer's two-model file (gpt-4 with a recorded cost on every row, llama-2-13b with one on the
rows that record tokens and neither on the others) imported, then estimated with `--price`: the
recorded costs are kept, and `estimate` says whose price was not applied (or applied to which
share), the curves' provenance counts the samples each price priced, the "no price" error counts
the samples that need one, and the note says how the token-less rows were charged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import run_cli, write_jsonl

from ttcalloc.artifacts import io
from ttcalloc.artifacts.prices import parse_price_flags, with_dollars
from ttcalloc.artifacts.schemas import CURVES
from ttcalloc.stages import data

QUESTIONS = [{"id": i, "question": "q" * 40, "answer": str(i)} for i in range(4)]


def _rows() -> list[dict[str, object]]:
    """gpt-4: 2 samples of each question, tokens and a cost at $30/$60 on every row;
    llama-2-13b: 4 each, tokens and a cost at $0.25/$0.25 on 3, neither on the 4th."""
    rows: list[dict[str, object]] = []
    for q in range(4):
        for d in range(2):
            rows.append(
                {"qid": q, "model_name": "gpt-4", "answer": str(q), "is_correct": True}
                | {"prompt_tokens": 100, "completion_tokens": 50}
                | {"cost_usd": (100 * 30 + 50 * 60) / 1e6, "prompt_style": "cot", "draw": d}
            )
        for d in range(4):
            tokens = d < 3
            rows.append(
                {"qid": q, "model_name": "llama-2-13b", "answer": str(q + d % 2)}
                | {"is_correct": d % 2 == 0, "prompt_style": "cot", "draw": d}
                | {"prompt_tokens": 100 if tokens else None}
                | {"completion_tokens": 80 if tokens else None}
                | {"cost_usd": 180 * 0.25 / 1e6 if tokens else None}
            )
    return rows


@pytest.fixture
def imported(tmp_path: Path) -> dict[str, Path]:
    problems = tmp_path / "problems.parquet"
    data.build_problems(write_jsonl(tmp_path / "p.jsonl", QUESTIONS), problems, "jsonl")
    src = tmp_path / "newcomer.parquet"
    pl.DataFrame(_rows(), strict=False).write_parquet(src)
    out = tmp_path / "samples.parquet"
    r = run_cli("import", src, "--problems", problems, "--id-field", "qid", "--out", out)
    assert r.exit_code == 0, r.stderr
    return {"problems": problems, "samples": out}


def _estimate(paths: dict[str, Path], out: Path, *flags: str) -> Any:
    return run_cli(
        "estimate", paths["samples"], "--problems", paths["problems"], "--ks", "1",
        "--holdout", "0", "--out", out, *flags,
    )  # fmt: skip


def _warnings(stderr: str, word: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning:" in line and word in line]


def test_a_price_the_recorded_costs_override_is_said_and_not_claimed(
    imported: dict[str, Path], tmp_path: Path
) -> None:
    r = _estimate(imported, tmp_path / "c.parquet", "--price", "gpt-4=10,20",
                  "--price", "llama-2-13b=0.25,0.25")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    gpt4 = _warnings(r.stderr, "gpt-4")
    assert len(gpt4) == 1, r.stderr
    said = "--price gpt-4 is not applied: all 8 of its samples carry a recorded dollar cost"
    assert said in gpt4[0]
    assert "3.00x" in gpt4[0] and "--cost-field ''" in gpt4[0]
    llama = _warnings(r.stderr, "llama-2-13b")
    assert len(llama) == 1, r.stderr
    assert "--price llama-2-13b priced 4 of its 16 samples; the other 12 carry" in llama[0]
    assert "1.00x" in llama[0]
    params = io.read_artifact(tmp_path / "c.parquet", CURVES).meta["params"]
    assert params["samples_priced"] == {
        "gpt-4": {"priced": 0, "recorded": 8},
        "llama-2-13b": {"priced": 4, "recorded": 12},
    }
    df = io.read_artifact(tmp_path / "c.parquet", CURVES).df
    gpt4_cost = df.filter(pl.col("model") == "gpt-4")["cost"].unique().to_list()
    assert gpt4_cost == pytest.approx([6000 / 1e6])  # the recorded $30/$60, kept


def test_no_warning_without_a_given_price(imported: dict[str, Path], tmp_path: Path) -> None:
    r = _estimate(imported, tmp_path / "c.parquet", "--price", "llama-2-13b=0.25,0.25")
    assert r.exit_code == 0, r.stderr
    assert not _warnings(r.stderr, "gpt-4"), r.stderr  # its price: none given, none needed


def test_no_price_error_counts_the_samples_without_a_recorded_cost(
    imported: dict[str, Path], tmp_path: Path
) -> None:
    r = _estimate(imported, tmp_path / "c.parquet")
    assert r.exit_code != 0, r.stdout
    assert (
        "no price for model 'llama-2-13b' (4 of its 16 samples have no recorded dollar cost)"
        in r.stderr
    ), r.stderr
    assert r.stderr.count("\n") == 1, r.stderr


def test_token_less_rows_are_said_to_be_charged_the_mean_and_the_question(
    imported: dict[str, Path], tmp_path: Path
) -> None:
    """No character column at all: the llama rows without tokens are charged the model's mean
    completion and the question's characters / 4 for the prompt, and the note says just that."""
    r = _estimate(imported, tmp_path / "c.parquet", "--price", "llama-2-13b=0.25,0.25")
    assert r.exit_code == 0, r.stderr
    note = next(line for line in r.stderr.splitlines() if line.startswith("dollar costs:"))
    assert "estimated from characters" not in note.split("llama-2-13b:")[1], note
    assert "prompt tokens estimated from the question's characters" in note, note
    assert "mean completion" in note, note
    params = io.read_artifact(tmp_path / "c.parquet", CURVES).meta["params"]
    assert params["cost_from"]["llama-2-13b"] == "mean_length+question_chars+recorded"


def test_with_dollars_names_each_way_of_finding_tokens() -> None:
    table = parse_price_flags(["m=1,1"])
    samples = pl.DataFrame(
        {
            "problem_id": ["0"] * 3,
            "model": ["m"] * 3,
            "prompt_tokens": [10, None, 10],
            "completion_tokens": [5, None, None],
            "completion_chars": [None, None, 40],
        },
        strict=False,
    )
    questions = pl.DataFrame({"problem_id": ["0"], "question": ["q" * 80]})
    done = with_dollars(samples, table, questions)
    assert done.how["m"] == "characters+mean_length+question_chars+tokens"
    assert done.samples["cost_usd"].to_list() == pytest.approx([15e-6, 27.5e-6, 20e-6])
    assert done.priced == {"m": (3, 0)}


def test_a_prices_file_entry_not_applied_is_named_with_the_file(
    imported: dict[str, Path], tmp_path: Path
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(
        '{"gpt-4": {"input": 30, "output": 60}, "llama-2-13b": {"input": 0.25, "output": 0.25}}'
    )
    r = _estimate(imported, tmp_path / "c.parquet", "--prices", str(prices))
    assert r.exit_code == 0, r.stderr
    (gpt4,) = _warnings(r.stderr, "gpt-4")
    assert f"gpt-4's price in --prices {prices} is not applied: all 8" in gpt4, gpt4
    assert "(1.00x what the price gives" in gpt4, gpt4
