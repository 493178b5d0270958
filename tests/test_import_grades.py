"""`ttcalloc import` on a file with its own grades: kept, checked on a seeded sample of rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import GSM8K_ROWS, run_cli, write_jsonl

from ttcalloc.artifacts.io import read_artifact, read_meta
from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.common.errors import InputError
from ttcalloc.stages import data
from ttcalloc.stages.importer import ImportOptions, grades, import_samples

GOLD = ["7", "10", "1250", "4.5", "144"]


@pytest.fixture
def problems(tmp_path: Path) -> Path:
    out = tmp_path / "problems.parquet"
    data.build_problems(write_jsonl(tmp_path / "g.jsonl", GSM8K_ROWS), out, "gsm8k")
    return out


def _graded_rows(n: int, wrong_every: int = 5) -> list[dict[str, Any]]:
    """``n`` samples over the 5 problems; every ``wrong_every``-th row's file grade is wrong."""
    rows = []
    for i in range(n):
        pid = i % 5
        right = i % 3 != 0
        answer = GOLD[pid] if right else "999"
        rows.append(
            {"problem_id": pid, "pred_answer": answer, "correct": right ^ (i % wrong_every == 0)}
        )
    return rows


def _count_grading(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap the batch grader so a test sees how many (answer, gold) pairs it was given."""
    calls: list[int] = []
    real = grades.batch.grade_many

    def counting(items: Any) -> list[bool]:
        calls.append(len(items))
        return real(items)

    monkeypatch.setattr(grades.batch, "grade_many", counting)
    return calls


def test_file_grades_are_kept_and_checked_on_a_seeded_sample(
    tmp_path: Path, problems: Path
) -> None:
    rows = _graded_rows(400)
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    options = ImportOptions(check_rows=60, check_seed=3)
    first = import_samples(src, problems, tmp_path / "a.parquet", options)
    again = import_samples(src, problems, tmp_path / "b.parquet", options)
    assert first.graded_by == "file column 'correct'"
    assert first.file_graded == 400 and first.checked == 60
    # the agreement is the share of the 60 checked rows where the file is right
    wrong = {i for i in range(400) if i % 5 == 0}
    mask = grades._seeded_subset(np.ones(400, dtype=bool), 60, 3)
    checked = set(np.flatnonzero(mask).tolist())
    assert first.disagreements == len(checked & wrong)
    assert first.agreement == pytest.approx(1 - len(checked & wrong) / 60)
    low, high = first.agreement_interval or (2.0, -1.0)
    assert low < first.agreement < high
    assert {e["pred_answer"] for e in first.disagreement_examples} <= {"999", *GOLD}
    # seeded: the same rows again; the file's grades are written, wrong ones too
    assert (again.agreement, again.disagreements) == (first.agreement, first.disagreements)
    df = read_artifact(tmp_path / "a.parquet", SAMPLES).df
    assert df["correct"].to_list() == [r["correct"] for r in rows]
    other = import_samples(
        src, problems, tmp_path / "c.parquet", ImportOptions(check_rows=60, check_seed=4)
    )
    assert other.checked == 60
    assert read_artifact(tmp_path / "c.parquet", SAMPLES).df.equals(df)


def test_only_the_checked_rows_and_the_ungraded_ones_are_graded(
    tmp_path: Path, problems: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        {"problem_id": i % 5, "pred_answer": str(1000 + i), "correct": False} for i in range(300)
    ]
    rows[7]["correct"] = None  # the file has no grade here: ttcalloc grades it
    rows[7]["pred_answer"] = GOLD[7 % 5]
    calls = _count_grading(monkeypatch)
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    result = import_samples(src, problems, tmp_path / "a.parquet", ImportOptions(check_rows=20))
    assert sum(calls) <= 21  # 20 checked rows and the ungraded one, each a distinct answer
    assert result.file_graded == 299 and result.checked == 20 and result.agreement == 1.0
    assert read_artifact(tmp_path / "a.parquet", SAMPLES).df["correct"][7] is True
    calls.clear()
    regraded = import_samples(src, problems, tmp_path / "b.parquet", ImportOptions(regrade=True))
    assert sum(calls) == 300 and regraded.checked == 299 and regraded.agreement_interval is None
    unchecked = import_samples(src, problems, tmp_path / "c.parquet", ImportOptions(check_rows=0))
    assert unchecked.checked == 0 and unchecked.agreement is None
    assert "kept unchecked (--check-rows 0" in (unchecked.grading_line() or "")


def test_regrade_grades_every_row_and_uses_ours(tmp_path: Path, problems: Path) -> None:
    rows = _graded_rows(50)
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    result = import_samples(
        src, problems, tmp_path / "a.parquet", ImportOptions(regrade=True, check_rows=5)
    )
    assert result.graded_by == "ttcalloc" and result.checked == result.file_graded == 50
    assert result.disagreements == 10  # rows 0, 5, ..., 45
    df = read_artifact(tmp_path / "a.parquet", SAMPLES).df
    assert df["correct"].to_list() == [i % 3 != 0 for i in range(50)]


def test_cli_says_how_many_rows_were_checked_and_records_it(tmp_path: Path, problems: Path) -> None:
    src = write_jsonl(tmp_path / "s.jsonl", _graded_rows(200))
    out = tmp_path / "s.parquet"
    res = run_cli("import", src, "--problems", problems, "--out", out, "--check-rows", "50")
    assert res.exit_code == 0, res.stderr
    line = " ".join(res.stderr.split())
    assert "of 50 rows checked, a seeded sample of the file's 200 graded rows" in line
    assert "the file's grades are kept (--regrade grades every row)" in line
    record = read_meta(out)["grading"]
    assert record["checked_rows"] == 50 and record["file_graded_rows"] == 200
    assert record["graded_by"] == "file column 'correct'" and 0 < record["agreement"] <= 1
    res = run_cli("import", src, "--problems", problems, "--out", out, "--regrade", "--json")
    assert res.exit_code == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["checked_rows"] == payload["file_graded_rows"] == 200
    assert payload["agreement_with_file"] == pytest.approx(1 - 40 / 200)
    assert "of all 200 graded rows (40 differ)" in " ".join(res.stderr.split())
    assert read_meta(out)["grading"]["graded_by"] == "ttcalloc"
    res = run_cli("import", src, "--problems", problems, "--out", out, "--check-rows", "-1")
    assert res.exit_code != 0 and "--check-rows" in res.stderr


def test_an_empty_grade_column_means_ttcalloc_grades_every_row(
    tmp_path: Path, problems: Path
) -> None:
    rows = [{"problem_id": 0, "pred_answer": a, "correct": None} for a in ("7", "8")]
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    result = import_samples(src, problems, tmp_path / "a.parquet", ImportOptions(check_rows=1))
    assert result.graded_by == "ttcalloc" and result.file_graded == 0 and result.checked == 0
    assert result.grading_line() == "the file's grade column is empty: ttcalloc graded every row"
    assert read_artifact(tmp_path / "a.parquet", SAMPLES).df["correct"].to_list() == [True, False]


def test_negative_check_rows_is_refused(tmp_path: Path, problems: Path) -> None:
    src = write_jsonl(tmp_path / "s.jsonl", _graded_rows(5))
    with pytest.raises(InputError, match=r"--check-rows -1: must be 0 or more"):
        import_samples(src, problems, tmp_path / "a.parquet", ImportOptions(check_rows=-1))
    assert not (tmp_path / "a.parquet").exists()


def test_the_seeded_sample_has_its_size_and_stays_among_eligible_rows() -> None:
    eligible = np.arange(1000) % 3 != 0
    for seed in range(5):
        mask = grades._seeded_subset(eligible, 100, seed)
        assert mask.sum() == 100 and not (mask & ~eligible).any()
    assert (grades._seeded_subset(eligible, 10_000, 0) == eligible).all()
    assert not grades._seeded_subset(eligible, 0, 0).any()


@pytest.mark.parametrize(("k", "n"), [(0, 10), (10, 10), (995, 1000), (1, 2)])
def test_wilson_interval_holds_the_proportion(k: int, n: int) -> None:
    low, high = grades._wilson(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0 and high - low < 1.0
