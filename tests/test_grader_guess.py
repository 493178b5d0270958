"""`--grader auto`: the grader guessed from gold answers, as a golden table of real answers.

The rows are gold answers copied from the shared files (BIG-Bench Date Understanding, GSM8K test,
MATH500) plus the other answer shapes the guess names (options, yes/no, words).  A date such as
``05/01/2021`` is not a division: it is graded ``exact``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttcalloc.stages import data
from ttcalloc.text.grading import answer_kind, guess_grader

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# (gold answer as written in the file, its kind); sources in the comments
KINDS = [
    # date_problems.jsonl (ids 0, 3, 4 and the last)
    ("05/01/2021", "date"),
    ("04/21/2021", "date"),
    ("04/01/2021", "date"),
    ("2021-05-01", "date"),
    # gsm8k_test.jsonl: the number after ####
    ("18", "number"),
    ("3", "number"),
    ("70000", "number"),
    ("1,250", "number"),
    ("-3.50", "number"),
    ("3/4", "number"),
    # math500_test.jsonl
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "latex"),
    ("\\text{Evelyn}", "latex"),
    ("90^\\circ", "latex"),
    ("\\frac{14}{3}", "number"),  # a LaTeX fraction is a number (as before)
    ("3\\sqrt{13}", "latex"),
    ("\\text{(C)}", "latex"),
    ("p - q", "formula"),
    ("6 - 5i", "formula"),
    ("x=5", "formula"),
    ("1,-2", "formula"),
    ("3, 5, 7", "formula"),
    ("(3,4]", "formula"),
    ("2k", "formula"),
    ("y = 2x + 3", "formula"),
    # other shapes
    ("(A)", "choice"),
    ("B", "choice"),
    ("C)", "choice"),
    ("yes", "yes/no"),
    ("No", "yes/no"),
    ("True", "yes/no"),
    ("Paris", "text"),
    ("May 1, 2021", "text"),
    ("non-profit", "text"),
    ("", None),
    (None, None),
    ("[invalid]", None),
]


@pytest.mark.parametrize(("answer", "kind"), KINDS)
def test_answer_kind_golden_table(answer: str | None, kind: str | None) -> None:
    assert answer_kind(answer) == kind


DATASETS = [
    (["05/01/2021", "05/02/2021", "04/30/2021"], "exact"),  # Date Understanding
    (["(A)", "(B)", "(D)"], "exact"),
    (["yes", "no", "Yes"], "exact"),
    (["Paris", "Rome"], "exact"),
    (["05/01/2021", "18"], "exact"),  # mixed with numbers: still not a division
    (["18", "3", "70000", "1,250"], "numeric"),  # GSM8K
    (["\\frac{14}{3}", "10", "3\\sqrt{13}"], "math"),  # MATH500
    (["3", "x^2"], "math"),
    (["(A)", "x=5"], "math"),
    ([], None),
    ([None, ""], None),
]


@pytest.mark.parametrize(("answers", "grader"), DATASETS)
def test_guess_grader_golden_table(answers: list[str | None], grader: str | None) -> None:
    assert guess_grader(answers) == grader


def test_data_jsonl_auto_uses_the_guess() -> None:
    rows = [{"question": f"q{i}", "answer": a} for i, a in enumerate(["05/01/2021", "04/30/2021"])]
    df = data.problems_frame(rows, "jsonl")
    assert set(df["grader"]) == {"exact"}
    assert df["answer"].to_list() == ["05/01/2021", "04/30/2021"]  # kept as written


def _answers(name: str, key: str) -> list[str]:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"shared data absent: {path}")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [str(r[key]).rsplit("####", 1)[-1].strip() for r in rows]


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "key", "grader"),
    [
        ("date_problems.jsonl", "answer", "exact"),
        ("gsm8k_test.jsonl", "answer", "numeric"),
        ("svamp_problems.jsonl", "answer", "numeric"),
        ("math500_test.jsonl", "answer", "math"),
    ],
)
def test_guess_on_the_shared_benchmarks(name: str, key: str, grader: str) -> None:
    assert guess_grader(_answers(name, key)) == grader


def test_import_grader_flag_is_honoured(tmp_path: Path) -> None:
    """`import --grader exact` grades with exact even when the problems say math (where
    math-verify takes 5/1/2021 for the number 05/01/2021), with a warning naming both."""
    import polars as pl
    from helpers import run_cli, write_jsonl

    src = write_jsonl(tmp_path / "q.jsonl", [{"question": "Today?", "answer": "05/01/2021"}])
    problems = tmp_path / "p.parquet"
    r = run_cli("data", "jsonl", "--source", src, "--grader", "math", "--out", problems)
    assert r.exit_code == 0, r.stderr
    samples = write_jsonl(
        tmp_path / "s.jsonl",
        [{"id": 0, "pred_answer": a} for a in ("05/01/2021", "5/1/2021", "05/02/2021")],
    )
    as_math, as_exact = tmp_path / "m.parquet", tmp_path / "e.parquet"
    r = run_cli("import", samples, "--problems", problems, "--out", as_math)
    assert r.exit_code == 0, r.stderr
    assert pl.read_parquet(as_math)["correct"].to_list() == [True, True, False]
    r = run_cli("import", samples, "--problems", problems, "--out", as_exact, "--grader", "exact")
    assert r.exit_code == 0, r.stderr
    assert pl.read_parquet(as_exact)["correct"].to_list() == [True, False, False]
    assert "--grader exact" in r.stderr and "with math" in r.stderr
    r = run_cli(
        "import",
        samples,
        "--problems",
        problems,
        "--out",
        tmp_path / "x.parquet",
        "--grader",
        "dates",
    )
    assert r.exit_code != 0 and "--grader 'dates'" in r.stderr


@pytest.mark.shared_data
def test_the_date_file_grades_agree_with_ttcallocs(tmp_path: Path) -> None:
    """With the guessed grader (exact), ttcalloc's grade of every one of the Date file's 63,468
    samples is the file's own (the math grader differed on 325)."""
    from helpers import run_cli

    problems_src = SHARED / "date_problems.jsonl"
    samples_src = SHARED / "date_3models_mot_samples.parquet"
    if not (problems_src.exists() and samples_src.exists()):
        pytest.skip(f"shared data absent: {SHARED}")
    problems, out = tmp_path / "p.parquet", tmp_path / "s.parquet"
    r = run_cli("data", "jsonl", "--source", problems_src, "--out", problems)
    assert r.exit_code == 0 and "grader exact 369" in r.stderr, r.stderr
    r = run_cli("import", samples_src, "--problems", problems, "--out", out, "--regrade", "--json")
    assert r.exit_code == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["checked_rows"] == result["samples"] == 63468
    assert result["disagreements"] == 0
