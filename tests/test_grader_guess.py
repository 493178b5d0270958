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
