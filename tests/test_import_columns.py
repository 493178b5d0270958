"""`ttcalloc import` says which column became which field, and names the columns it ignored."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from helpers import run_cli, write_jsonl

from ttcalloc.stages import data

QUESTIONS = [{"id": i, "question": f"question {i}", "answer": str(i)} for i in range(2)]
ROWS = [
    {"qid": q, "model_name": "gpt-4", "answer": str(q), "is_correct": True}
    | {"prompt_tokens": 100, "completion_tokens": 50, "cost_usd": 0.006}
    | {"prompt_style": "cot", "draw": d}
    for q in range(2)
    for d in range(2)
]


def _import(tmp_path: Path, *flags: str) -> tuple[object, Path]:
    problems = tmp_path / "problems.parquet"
    data.build_problems(write_jsonl(tmp_path / "p.jsonl", QUESTIONS), problems, "jsonl")
    src = tmp_path / "newcomer.parquet"
    pl.DataFrame(ROWS).write_parquet(src)
    out = tmp_path / "samples.parquet"
    r = run_cli("import", src, "--problems", problems, "--id-field", "qid", "--out", out, *flags)
    return r, out


def _line(stderr: str, start: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(start)]
    assert len(lines) == 1, stderr
    return lines[0]


def test_the_summary_shows_the_mapping_and_the_ignored_columns(tmp_path: Path) -> None:
    r, _ = _import(tmp_path)
    assert r.exit_code == 0, r.stderr
    read = _line(r.stderr, "columns read:")
    for pair in ("qid -> problem_id", "model_name -> model", "answer -> pred_answer",
                 "is_correct -> correct", "cost_usd -> cost_usd"):  # fmt: skip
        assert pair in read, read
    ignored = _line(r.stderr, "ignored columns: prompt_style, draw (")
    for flag in ("--variant-field", "--sample-idx-field"):
        assert flag in ignored, ignored
    assert "--cost-field" not in ignored and "--id-field" not in ignored, ignored


def test_a_field_mapped_to_nothing_leaves_its_column_ignored(tmp_path: Path) -> None:
    r, _ = _import(tmp_path, "--cost-field", "", "--variant-field", "prompt_style", "--json")
    assert r.exit_code == 0, r.stderr
    assert "cost_usd ->" not in _line(r.stderr, "columns read:")
    assert "prompt_style -> prompt_variant" in _line(r.stderr, "columns read:")
    ignored = _line(r.stderr, "ignored columns: cost_usd, draw (")
    assert "--cost-field" in ignored and "--variant-field" not in ignored, ignored
    assert json.loads(r.stdout)["ignored_columns"] == ["cost_usd", "draw"]


def test_nothing_ignored_says_nothing(tmp_path: Path) -> None:
    r, _ = _import(tmp_path, "--variant-field", "prompt_style", "--sample-idx-field", "draw")
    assert r.exit_code == 0, r.stderr
    assert "ignored columns" not in r.stderr, r.stderr
