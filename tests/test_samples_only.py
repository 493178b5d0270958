"""From a samples-only file (one row per sample, question and gold answer on every row) to curves:
`data jsonl --from-samples`, `import`, `estimate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import shared_file
from helpers import run_cli, write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from ttcalloc.artifacts.io import read_artifact, read_meta
from ttcalloc.artifacts.schemas import CURVES, PROBLEMS, SAMPLES
from ttcalloc.common.errors import DataError
from ttcalloc.stages import data
from ttcalloc.stages.data import samples_file


def _samples(n_problems: int = 6, per: int = 4) -> list[dict[str, Any]]:
    rows = []
    for pid in range(n_problems):
        for j in range(per):
            rows.append(
                {
                    "problem_id": 10 + pid,
                    "question": f"What is {pid} + {pid}?",
                    "gold_answer": str(2 * pid),
                    "level": pid % 3,
                    "sample_idx": j,
                    "pred_answer": str(2 * pid + (j % 2)),
                    "correct": j % 2 == 0,
                }
            )
    return rows


def _ok(*args: Any) -> Any:
    res = run_cli(*args)
    assert res.exit_code == 0, res.stderr
    return res


def test_one_problem_per_id_from_a_samples_file(tmp_path: Path) -> None:
    src = tmp_path / "s.parquet"
    pl.DataFrame(_samples()).write_parquet(src)
    out = tmp_path / "p.parquet"
    options = data.DataOptions(test_frac=0.5, seed=3)
    fields = data.JsonlFields(from_samples=True, meta=("level",))
    result = data.build_problems(src, out, "jsonl", options, fields)
    df = read_artifact(out, PROBLEMS).df
    assert result.problems == 6 and df["problem_id"].to_list() == [str(10 + i) for i in range(6)]
    assert df["question"].to_list() == [f"What is {i} + {i}?" for i in range(6)]
    assert df["answer"].to_list() == [str(2 * i) for i in range(6)]
    assert df["level"].to_list() == [i % 3 for i in range(6)] and set(df["grader"]) == {"numeric"}
    # the usual seeded hash split of the ids
    assert df["split"].to_list() == [data.split_of(str(10 + i), 0.5, 3) for i in range(6)]
    assert read_meta(out)["params"]["from_samples"] is True
    # --limit counts problems, not sample rows
    limited = data.load_problems(src, "jsonl", data.DataOptions(limit=2), fields)
    assert limited["problem_id"].to_list() == ["10", "11"]


@pytest.mark.parametrize(
    ("change", "column", "flag"),
    [
        ({"gold_answer": "99"}, "gold_answer", "--answer-field"),
        ({"question": "What is 3 + 4?"}, "question", "--question-field"),
        ({"level": 7}, "level", "--meta-field"),
    ],
)
def test_rows_of_one_id_that_disagree_are_one_error_naming_id_and_column(
    tmp_path: Path, change: dict[str, Any], column: str, flag: str
) -> None:
    rows = _samples()
    rows[9].update(change)  # problem 12's second sample
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    out = tmp_path / "p.parquet"
    res = run_cli(
        "data", "jsonl", "--source", src, "--from-samples", "--meta-field", "level", "--out", out
    )
    assert res.exit_code != 0 and not out.exists()
    line = " ".join(res.stderr.split())
    assert line.startswith("error:") and "Traceback" not in res.stderr
    assert f"rows of problem_id '12' disagree on {column!r} ({flag}; records 8 and 9)" in line


def test_a_predicted_answer_column_taken_for_the_gold_one_is_named(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "s.jsonl", _samples())
    fields = data.JsonlFields(from_samples=True, answer="pred_answer")
    with pytest.raises(DataError, match=r"problem_id '10' disagree on 'pred_answer'"):
        data.load_problems(src, "jsonl", data.DataOptions(), fields)


def test_duplicate_ids_point_to_from_samples(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "s.jsonl", _samples())
    res = run_cli("data", "jsonl", "--source", src, "--out", tmp_path / "p.parquet")
    line = " ".join(res.stderr.split())
    assert res.exit_code != 0
    assert "duplicate problem_id '10' (records 0 and 1)" in line
    assert "`ttcalloc data jsonl --from-samples` takes one problem per id" in line


def test_from_samples_needs_an_id_field(tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "problem_id"} for r in _samples()]
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    res = run_cli(
        "data", "jsonl", "--source", src, "--from-samples", "--out", tmp_path / "p.parquet"
    )
    assert res.exit_code != 0 and "--from-samples needs the problem id" in res.stderr


def test_a_math_samples_file_through_import_and_estimate_clusters_by_the_grader(
    tmp_path: Path,
) -> None:
    """The file's grades are kept unchecked; estimate still clusters wrong answers by math-verify:
    \\frac{1}{3}, 1/3 and \\dfrac{1}{3} are one vote of 3 that beats the 2 correct samples."""
    preds = [("\\frac{1}{2}", True), ("0.5", True)]
    preds += [("\\frac{1}{3}", False), ("1/3", False), ("\\dfrac{1}{3}", False)]
    rows = [
        {"id": "q", "problem": "Half of one?", "answer": "\\frac{1}{2}", "pred": p, "correct": c}
        for p, c in preds
    ]
    rows += [
        {"id": "r", "problem": "Two and two?", "answer": "4", "pred": p, "correct": p == "4"}
        for p in ("4", "4", "5", "4", "6")
    ]
    src = tmp_path / "math_samples.parquet"
    pl.DataFrame(rows).write_parquet(src)
    p, s, c = tmp_path / "p.parquet", tmp_path / "s.parquet", tmp_path / "c.parquet"
    _ok("data", "jsonl", "--source", src, "--from-samples", "--grader", "math", "--out", p)
    _ok("import", src, "--problems", p, "--answer-field", "pred", "--check-rows", "0", "--out", s)
    assert read_meta(s)["grading"]["checked_rows"] == 0
    _ok("estimate", s, "--problems", p, "--ks", "1,5", "--holdout", "0", "--out", c)
    curves = read_artifact(c, CURVES).df.filter(pl.col("k") == 5)
    acc = dict(zip(curves["problem_id"].to_list(), curves["accuracy"].to_list(), strict=True))
    assert acc == {"q": pytest.approx(0.0), "r": pytest.approx(1.0)}


@pytest.mark.shared_data
def test_svamp_samples_file_from_samples_to_curves(shared_data: Path, tmp_path: Path) -> None:
    src = shared_file(shared_data, "svamp_codex_pot_30samples.parquet")
    p, s, c = tmp_path / "p.parquet", tmp_path / "s.parquet", tmp_path / "c.parquet"
    _ok("data", "jsonl", "--source", src, "--from-samples", "--out", p)
    problems = read_artifact(p, PROBLEMS).df
    raw = pl.read_parquet(src)
    assert problems.height == raw["problem_id"].n_unique() == 999
    # the same problems as the benchmark's own file (ids are its row indices)
    listed = data.load_problems(
        shared_file(shared_data, "svamp_problems.jsonl"), "jsonl", data.DataOptions()
    )
    assert problems["problem_id"].to_list() == listed["problem_id"].to_list()
    assert problems["answer"].to_list() == listed["answer"].to_list()
    assert problems["split"].to_list() == listed["split"].to_list()
    res = _ok("import", src, "--problems", p, "--out", s)
    assert "of 1,000 rows checked, a seeded sample of the file's 29,970 graded rows" in " ".join(
        res.stderr.split()
    )
    assert read_artifact(s, SAMPLES).df["correct"].to_list() == raw["correct"].to_list()
    _ok("estimate", s, "--problems", p, "--ks", "1,3,15", "--out", c)
    assert read_artifact(c, CURVES).df["problem_id"].n_unique() == 999


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(["a", "b"]), st.sampled_from(["1", "2"])),
        min_size=1,
        max_size=12,
    )
)
def test_one_per_problem_matches_grouping_by_id(triples: list[tuple[int, str, str]]) -> None:
    """Against a brute-force group-by: the first row of each id in order, or the first conflict."""
    records = [{"id": i, "q": q, "a": a} for i, q, a in triples]
    compared = [("q", "--question-field"), ("a", "--answer-field")]
    groups: dict[int, list[int]] = {}
    for index, (i, _, _) in enumerate(triples):
        groups.setdefault(i, []).append(index)
    clash = [  # (row, field in the order compared)
        (at, order)
        for rows in groups.values()
        for at in rows[1:]
        for order, (name, _) in enumerate(compared)
        if records[at][name] != records[rows[0]][name]
    ]
    if not clash:
        kept = samples_file.one_per_problem(records, "id", compared, "f")
        assert kept == [(rows[0], records[rows[0]]) for rows in groups.values()]
        return
    first_at, first_field = min(clash)
    first_name = compared[first_field][0]
    with pytest.raises(DataError) as info:
        samples_file.one_per_problem(records, "id", compared, "f")
    pid = records[first_at]["id"]
    assert f"rows of problem_id '{pid}' disagree on '{first_name}'" in str(info.value)
    assert f"records {groups[pid][0]} and {first_at})" in str(info.value)
