"""The sampler's journal and parts: value arrays per request, a journal of the earlier format
(a dict per row) still resumed, and parts built column by column equal to the dicts' frame."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fake_openai import fake_openai
from helpers import sum_problems

from ttcalloc.artifacts import io
from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.artifacts.validation import validate
from ttcalloc.backends import Choice, Recorded, Request
from ttcalloc.sampler.journal import Journal, recover
from ttcalloc.sampler.rows import COLUMNS, dicts_frame, part_frame, request_rows
from ttcalloc.stages.sample import SampleOptions, sample_problems

GOLD = {"answer": "7", "grader": "numeric"}


def _request(pid: str, n: int, first: int = 0) -> Request:
    return Request(pid, first, n, [{"role": "user", "content": "q"}], seed=100 + first)


def _columns(values: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return list(zip(*values, strict=True))


def _mixed_rows() -> list[tuple[Any, ...]]:
    """Rows of every kind: right, wrong, repeated, unanswered, failed, unlabeled, recorded."""
    key = "sk-secret-12345678"
    a = request_rows(
        GOLD,
        "openai/m",
        _request("a", 5),
        [
            Choice("so #### 7", "stop", 30, 6, 0.001, -0.25),
            Choice("so #### 8", "length", 30, 6, 0.001, None),
            Choice("so #### 7", "stop", 30, 6, 0.001, -0.5),  # the same text: graded once
            Choice(None, "stop", None, None, None, None),
            None,
        ],
        [None, None, None, None, "HTTP 500 InternalServerError"],
        0.125,
        [key],
    ).values
    unlabeled = request_rows(
        {"answer": None, "grader": "numeric"},
        "openai/m",
        _request("b", 2, first=3),
        [Choice(f"echo {key} #### 7", "stop", 10, 2, None, None), None],
        [None, f"boom {key}"],
        1.5,
        [key],
    ).values
    replayed = request_rows(
        GOLD,
        "replay:x",
        _request("c", 1),
        [Recorded(None, "stop", 5, 1, None, None, pred_answer="7", completion_chars=12)],
        [None],
        0.0,
        [],
    ).values
    return a + unlabeled + replayed


def test_a_part_built_column_wise_equals_the_frame_built_from_dicts() -> None:
    values = _mixed_rows()
    rows = [dict(zip(COLUMNS, v, strict=True)) for v in values]
    for row in rows:
        row["timestamp"] = datetime.fromisoformat(row["timestamp"])
    built = validate(part_frame(_columns(values)), SAMPLES, "values")
    before = validate(dicts_frame(rows), SAMPLES, "dicts")
    assert built.equals(before) and built.schema == before.schema
    by = {(r["problem_id"], r["sample_idx"]): r for r in built.iter_rows(named=True)}
    assert [by[("a", i)]["correct"] for i in range(5)] == [True, False, True, False, None]
    assert by[("a", 0)]["pred_answer"] == "7" and by[("a", 4)]["error"] is not None
    assert by[("b", 3)]["correct"] is None and "sk-secret" not in by[("b", 3)]["response"]
    assert "sk-secret" not in by[("b", 4)]["error"]
    assert by[("c", 0)]["completion_chars"] == 12 and by[("c", 0)]["correct"] is True
    # a value of an unexpected type (an odd server's float token count): the dicts' frame
    odd = [(*values[0][:6], 30.5, *values[0][7:])]
    odd_rows = [dict(rows[0], prompt_tokens=30.5)]
    assert part_frame(_columns(odd)).equals(dicts_frame(odd_rows))


def test_sample_rows_are_the_value_arrays_as_dicts() -> None:
    choices: list[Choice | None] = [Choice("#### 7", "stop", 3, 1, None, None), None]
    got = request_rows(GOLD, "m", _request("p", 2), choices, [None, "failed"], 0.5, [])
    rows = list(request_rows(GOLD, "m", _request("p", 2), choices, [None, "failed"], 0.5, []))
    assert list(rows[0]) == list(COLUMNS) and len(got) == 2
    assert isinstance(rows[0]["timestamp"], datetime) and rows[0]["timestamp"].tzinfo
    assert got[1] == dict(rows[1], timestamp=got.now) and got[0:1] == [got[0]]
    assert [r["correct"] for r in got] == [True, None]


def test_the_journal_holds_value_arrays_and_a_cut_line_is_dropped(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "t1", {"model": "openai/m"}, {})
    values = _mixed_rows()
    journal.append(values[:5])
    journal.append(values[5:])
    assert journal.fh is not None
    journal.fh.close()
    lines = journal.path.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["columns"] == list(COLUMNS) and len(lines) == 3
    assert [len(json.loads(line)) for line in lines[1:]] == [5, 3]  # one line per request
    assert all(isinstance(r, list) for r in json.loads(lines[1]))
    with journal.path.open("a") as fh:  # killed while writing a request's line
        fh.write(lines[1][: len(lines[1]) // 2])
    assert recover(tmp_path) == 8 and not journal.path.exists()
    recovered = io.read_artifact(tmp_path, SAMPLES).df.sort("problem_id", "sample_idx")
    expected = validate(part_frame(_columns(values)), SAMPLES, "values").sort(
        "problem_id", "sample_idx"
    )
    assert recovered.equals(expected)


@pytest.mark.parametrize("stamp", ["2026-12-03 10:00:00.123456+00:00", "2026-12-03 10:00:00+00:00"])
def test_a_journal_of_the_earlier_format_resumes(tmp_path: Path, stamp: str) -> None:
    """A folder a killed run of an earlier version left (a journal of dicts: a request of one
    sample as one dict, of several as a list, then a line the kill cut) resumes: its samples
    become a part and only the others are requested."""
    problems = sum_problems(tmp_path)
    out = tmp_path / "s"
    out.mkdir()

    def row(pid: str, idx: int, text: str, answer: str) -> dict[str, Any]:
        return {
            "problem_id": pid, "model": "openai/fake", "sample_idx": idx, "response": text,
            "pred_answer": answer, "correct": answer == str(2 * int(pid) + 1),
            "prompt_tokens": 20, "completion_tokens": 4, "cost_usd": None,
            "mean_logprob": -0.5, "completion_chars": len(text), "latency_s": 0.25,
            "finish_reason": "stop", "error": None, "seed": 7 + idx, "timestamp": stamp,
        }  # fmt: skip

    header = {"params": {"model": "openai/fake"}, "inputs": {"problems": str(problems)}}
    lines = [
        json.dumps(header),
        json.dumps(row("0", 0, "from the old journal #### 1", "1")),
        json.dumps([row("1", 0, "old #### 3", "3"), row("1", 1, "old #### 9", "9")]),
        json.dumps([row("2", 0, "cut #### 5", "5"), row("2", 1, "cut #### 5", "5")])[:40],
    ]
    (out / ".journal-20261203T100000000000-1-abcdef.jsonl").write_text("\n".join(lines))
    with fake_openai() as server:
        opts = SampleOptions(
            model="openai/fake", api_base=server.base, n=2, progress=False, requests_per_batch=1
        )
        result = sample_problems(problems, out, opts)
        asked = len(server.requests)
    assert result.written == 24 - 3 and asked == 21 and result.total_samples == 24
    df = io.read_artifact(out, SAMPLES).df
    ok = df.filter(pl.col("error").is_null())
    assert ok.height == 24 and not ok.select("problem_id", "sample_idx").is_duplicated().any()
    old = df.filter(pl.col("response").str.contains("old")).sort("problem_id", "sample_idx")
    assert old.select("problem_id", "sample_idx", "correct").rows() == [
        ("0", 0, True),
        ("1", 0, True),
        ("1", 1, False),
    ]
    assert (
        old["timestamp"].to_list() == [datetime.fromisoformat(stamp).astimezone(timezone.utc)] * 3
    )
    assert not list(out.glob(".journal-*"))
