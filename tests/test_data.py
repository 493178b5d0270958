"""`ttcalloc data`: datasets into problems tables, stable splits, URL sources, bad input."""

from __future__ import annotations

import http.server
import threading
import typing
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from conftest import shared_file
from helpers import GSM8K_ROWS, run_cli, write_jsonl

from ttcalloc.artifacts.io import read_artifact
from ttcalloc.artifacts.schemas import PROBLEMS
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.stages import data


def test_gsm8k_gold_is_the_number_after_marks(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "g.jsonl", GSM8K_ROWS)
    result = data.build_problems(src, tmp_path / "p.parquet", "gsm8k")
    df = read_artifact(tmp_path / "p.parquet", PROBLEMS).df
    assert result.problems == 5
    assert df["answer"].to_list() == ["7", "10", "1250", "4.5", "144"]
    assert df["problem_id"].to_list() == ["0", "1", "2", "3", "4"]
    assert set(df["grader"]) == {"numeric"}


def test_math_answer_field_or_last_boxed(tmp_path: Path) -> None:
    rows = [
        {"problem": "p0", "answer": "\\frac{1}{2}", "level": 3, "subject": "Algebra"},
        {
            "problem": "p1",
            "solution": "so \\boxed{\\sqrt{2}}.",
            "level": "Level 5",
            "type": "Geometry",
        },
        {"problem": "p2", "solution": "x \\boxed{1} y \\boxed{\\{1,2\\}}", "level": "Level ?"},
    ]
    src = write_jsonl(tmp_path / "m.jsonl", rows)
    df = data.load_problems(src, "math")
    assert df["answer"].to_list() == ["\\frac{1}{2}", "\\sqrt{2}", "\\{1,2\\}"]
    assert df["level"].to_list() == [3, 5, None]
    assert df["subject"].to_list() == ["Algebra", "Geometry", None]
    assert "solution" not in df.columns  # the worked solution would leak the answer


def test_problems_frame_from_records_in_memory() -> None:
    options = data.DataOptions(test_frac=0.5, seed=7)
    df = data.problems_frame(GSM8K_ROWS, "gsm8k", options)
    assert df["answer"].to_list() == ["7", "10", "1250", "4.5", "144"]
    assert df["split"].to_list() == [data.split_of(str(i), 0.5, 7) for i in range(5)]
    reordered = data.problems_frame(
        [dict(r, id=f"q{i}") for i, r in reversed(list(enumerate(GSM8K_ROWS)))],
        "gsm8k",
        data.DataOptions(test_frac=0.5, seed=7, id_field="id"),
    )
    assert reordered["problem_id"].to_list() == ["q4", "q3", "q2", "q1", "q0"]
    assert reordered["split"].to_list() == [
        data.split_of(f"q{i}", 0.5, 7) for i in range(4, -1, -1)
    ]


def test_problems_frame_jsonl_grader_and_errors_name_the_source() -> None:
    numeric = [{"question": "q", "answer": "1,250"}, {"question": "r", "answer": "4.50"}]
    df = data.problems_frame(numeric, "jsonl")
    assert df["answer"].to_list() == ["1250", "4.5"] and set(df["grader"]) == {"numeric"}
    mixed = data.problems_frame([*numeric, {"question": "s", "answer": "x^2"}], "jsonl")
    assert mixed["answer"].to_list() == ["1,250", "4.50", "x^2"]  # kept as written for math
    assert set(mixed["grader"]) == {"math"}
    with pytest.raises(DataError, match=r"^mem: record 1: field 'answer' has no '#### N'"):
        data.problems_frame([GSM8K_ROWS[0], {"question": "a", "answer": "?"}], "gsm8k", where="mem")
    with pytest.raises(DataError, match=r"^mem: no problems found"):
        data.problems_frame([], "math", where="mem")
    with pytest.raises(InputError, match="unknown dataset kind 'csv'"):
        data.problems_frame(numeric, "csv")


def test_split_is_a_stable_seeded_hash(tmp_path: Path) -> None:
    ids = [str(i) for i in range(4000)]
    splits = {pid: data.split_of(pid, 0.2, seed=0) for pid in ids}
    share = sum(s == "test" for s in splits.values()) / len(ids)
    assert 0.18 < share < 0.22
    # Adding problems never moves an existing one; another seed gives another split.
    assert all(data.split_of(pid, 0.2, 0) == splits[pid] for pid in ids[:100])
    assert any(data.split_of(pid, 0.2, 1) != splits[pid] for pid in ids)
    assert {data.split_of(p, 0.0, 0) for p in ids} == {"train"}
    assert {data.split_of(p, 1.0, 0) for p in ids} == {"test"}


def test_split_unchanged_when_problems_are_added(tmp_path: Path) -> None:
    rows = [{"id": f"q{i}", "question": f"{i}+1?", "answer": str(i + 1)} for i in range(300)]
    small = data.load_problems(
        write_jsonl(tmp_path / "a.jsonl", rows[:100]), "jsonl", data.DataOptions(id_field="id")
    )
    big = data.load_problems(
        write_jsonl(tmp_path / "b.jsonl", rows[::-1]), "jsonl", data.DataOptions(id_field="id")
    )
    joined = small.join(big, on="problem_id", suffix="_big")
    assert joined.height == 100
    assert (joined["split"] == joined["split_big"]).all()


def test_jsonl_fields_meta_and_auto_grader(tmp_path: Path) -> None:
    rows = [
        {"q": "a?", "a": "x^2", "uid": "u1", "difficulty": "hard", "level": "Level 2"},
        {"q": "b?", "a": "3", "uid": "u2", "difficulty": "easy", "level": 1},
    ]
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    fields = data.JsonlFields(question="q", answer="a", meta=("difficulty", "level"))
    df = data.load_problems(src, "jsonl", data.DataOptions(id_field="uid"), fields)
    assert df["problem_id"].to_list() == ["u1", "u2"]
    assert set(df["grader"]) == {"math"}  # not every answer is a number
    assert df["difficulty"].to_list() == ["hard", "easy"]
    assert df["level"].to_list() == [2, 1]
    numeric = data.load_problems(
        src,
        "jsonl",
        data.DataOptions(limit=1, id_field="uid"),
        data.JsonlFields(question="q", answer="a", grader="numeric"),
    )
    assert numeric["grader"].to_list() == ["numeric"]


@pytest.mark.parametrize(
    ("rows", "kind", "message"),
    [
        ([], "gsm8k", "no problems found"),
        ([{"question": "a", "answer": "no mark"}], "gsm8k", "no '#### N' final answer"),
        ([{"question": "a", "answer": "#### seven"}], "gsm8k", "not a number"),
        ([{"answer": "#### 7"}], "gsm8k", "field 'question' is missing"),
        ([{"problem": "p", "solution": "no box"}], "math", "has no \\boxed{} answer"),
        ([{"problem": "p"}], "math", "neither 'answer' nor 'solution'"),
    ],
)
def test_bad_datasets_fail_clearly(
    tmp_path: Path, rows: list[dict[str, object]], kind: str, message: str
) -> None:
    src = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as info:
        data.build_problems(src, tmp_path / "p.parquet", kind)
    assert message in str(info.value)
    assert str(src) in str(info.value)
    assert not (tmp_path / "p.parquet").exists()


def test_duplicate_ids_name_both_records(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "question": "x", "answer": "1"},
        {"id": "a", "question": "y", "answer": "2"},
    ]
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=r"duplicate problem_id 'a' \(records 0 and 1\)"):
        data.load_problems(src, "jsonl", data.DataOptions(id_field="id"))


def test_invalid_json_line_is_named(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_text('{"question": "a", "answer": "#### 1"}\n{oops\n')
    with pytest.raises(Exception, match=r"d.jsonl:2: invalid JSON"):
        data.load_problems(src, "gsm8k")


def test_bad_options(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "g.jsonl", GSM8K_ROWS)
    with pytest.raises(InputError, match="--test-frac"):
        data.load_problems(src, "gsm8k", data.DataOptions(test_frac=1.5))
    other = tmp_path / "g.txt"
    other.write_text("x")
    with pytest.raises(InputError, match="unknown format"):
        data.load_problems(other, "gsm8k")


# --- URL sources: a local HTTP server, never the internet -------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: typing.ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    _Handler.requests = []
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_url_source_is_downloaded_once_and_cached(
    http_root: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = http_root
    write_jsonl(root / "gsm8k.jsonl", GSM8K_ROWS)
    url = f"{base}/gsm8k.jsonl"
    first = data.build_problems(url, tmp_path / "a.parquet", "gsm8k")
    second = data.build_problems(url, tmp_path / "b.parquet", "gsm8k")
    assert first.problems == second.problems == 5
    assert _Handler.requests == ["/gsm8k.jsonl"]  # the second build read the cache
    meta = read_artifact(tmp_path / "a.parquet", PROBLEMS).meta
    assert meta["params"]["source"] == url


def test_url_not_found_is_one_clear_line(http_root: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = http_root
    result = run_cli(
        "data", "gsm8k", "--source", f"{base}/missing.jsonl", "--out", tmp_path / "p.parquet"
    )
    assert result.exit_code != 0
    assert result.stderr.strip().count("\n") == 0
    assert "HTTP 404" in result.stderr
    assert not (tmp_path / "p.parquet").exists()


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_writes_and_reports_json(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "g.jsonl", GSM8K_ROWS)
    out = tmp_path / "p.parquet"
    result = run_cli("data", "gsm8k", "--source", src, "--out", out, "--json", "--test-frac", "0.4")
    assert result.exit_code == 0, result.stderr
    import json

    payload = json.loads(result.stdout)
    assert payload["problems"] == 5 and payload["train"] + payload["test"] == 5
    assert "wrote" in result.stderr


def test_cli_missing_file_is_one_line_and_nonzero(tmp_path: Path) -> None:
    result = run_cli(
        "data", "gsm8k", "--source", tmp_path / "nope.jsonl", "--out", tmp_path / "p.parquet"
    )
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'nope.jsonl'}: file not found\n"
    assert result.stdout == ""


def test_cli_does_not_clobber_existing_output_on_error(tmp_path: Path) -> None:
    out = tmp_path / "p.parquet"
    src = write_jsonl(tmp_path / "g.jsonl", GSM8K_ROWS)
    assert run_cli("data", "gsm8k", "--source", src, "--out", out).exit_code == 0
    before = out.read_bytes()
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question": "a", "answer": "none"}])
    result = run_cli("data", "gsm8k", "--source", bad, "--out", out)
    assert result.exit_code == 1 and result.stderr.startswith("error: ")
    assert out.read_bytes() == before


@pytest.mark.shared_data
def test_real_gsm8k_and_math(shared_data: Path, tmp_path: Path) -> None:
    gsm = data.build_problems(
        shared_file(shared_data, "gsm8k_test.jsonl"), tmp_path / "g.parquet", "gsm8k"
    )
    assert gsm.problems == 1319
    df = read_artifact(tmp_path / "g.parquet", PROBLEMS).df
    assert (
        df["answer"]
        .map_elements(lambda a: a.lstrip("-").replace(".", "").isdigit(), return_dtype=pl.Boolean)
        .all()
    )
    m = data.build_problems(
        shared_file(shared_data, "math500_test.jsonl"), tmp_path / "m.parquet", "math"
    )
    assert m.problems == 500
    mdf = read_artifact(tmp_path / "m.parquet", PROBLEMS).df
    assert mdf["level"].null_count() == 0 and set(mdf["level"]) == {1, 2, 3, 4, 5}
    full = data.load_problems(shared_file(shared_data, "math_test5000.jsonl"), "math")
    assert full.height == 5000 and full["subject"].null_count() == 0


def test_jsonl_finds_common_field_names_like_import(tmp_path: Path) -> None:
    """problem/answer/id fields found by name; '' keeps row indices; the summary says so."""

    rows = [
        {"id": f"q{i}", "problem": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(30)
    ]
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    out = tmp_path / "p.parquet"
    result = run_cli("data", "jsonl", "--source", src, "--out", out, "--test-frac", "0.5")
    assert result.exit_code == 0, result.stderr
    df = pl.read_parquet(out)
    assert df["problem_id"].to_list()[:2] == ["q0", "q1"]
    assert df["question"][0] == "What is 0 + 1?"
    assert "question from 'problem', id from 'id'" in result.stderr
    assert read_artifact(out, PROBLEMS).meta["params"]["id_field"] == "id"
    by_row = run_cli("data", "jsonl", "--source", src, "--out", out, "--id-field", "", "--force")
    assert by_row.exit_code == 0, by_row.stderr
    assert pl.read_parquet(out)["problem_id"].to_list()[:2] == ["0", "1"]


def test_a_tiny_test_split_warns(tmp_path: Path) -> None:

    rows = [{"question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(24)]
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    small = run_cli("data", "jsonl", "--source", src, "--out", tmp_path / "p.parquet")
    assert small.exit_code == 0 and "warning: only " in small.stderr
    assert "test problem(s) of 24 (--test-frac 0.2)" in small.stderr.replace("\n", " ")
    big = [{"question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(200)]
    write_jsonl(src, big)
    assert (
        "warning: only"
        not in run_cli("data", "jsonl", "--source", src, "--out", tmp_path / "p.parquet").stderr
    )
