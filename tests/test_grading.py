"""Grading: golden tables of real answer formats, and agreement with real graded sample files."""

from __future__ import annotations

import json

import polars as pl
import pytest
from conftest import shared_file

from ttcalloc.text import grading

# (prediction, gold, grader, expected): every row is a format seen in real outputs or datasets.
GOLDEN_GRADES = [
    ("18", "18", "numeric", True),
    (18.0, "18", "numeric", True),  # float answers in Parquet sample files
    ("18.0", "18", "numeric", True),
    ("$18", "18", "numeric", True),
    ("18.", "18", "numeric", True),  # sentence-final period
    ("1,250", "1250", "numeric", True),
    ("$1,250.00", "1250", "numeric", True),
    ("18 dollars", "18", "numeric", True),
    ("\\boxed{18}", "18", "numeric", True),
    ("-3", "-3", "numeric", True),
    ("4.5", "4.5", "numeric", True),
    ("9/2", "4.5", "numeric", True),
    ("\\frac{9}{2}", "4.5", "numeric", True),
    ("0.33333333", "0.3333333333", "numeric", True),
    ("17", "18", "numeric", False),
    ("180", "18", "numeric", False),
    ("1,2", "12", "numeric", False),  # a list, not a thousands separator
    (None, "18", "numeric", False),
    ("", "18", "numeric", False),
    ("[invalid]", "18", "numeric", False),  # OVM's placeholder for "no answer"
    (float("nan"), "18", "numeric", False),
    # MATH answers (math500 gold strings against equivalent forms)
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\left( 3, \\frac{\\pi}{2} \\right)", "math", True),
    ("(3, \\pi/2)", "\\left( 3, \\frac{\\pi}{2} \\right)", "math", True),
    ("\\frac{14}{3}", "\\frac{14}{3}", "math", True),
    ("\\dfrac{14}{3}", "\\frac{14}{3}", "math", True),
    ("14/3", "\\frac{14}{3}", "math", True),
    ("4.6", "\\frac{14}{3}", "math", False),
    ("\\frac{1}{2}", "0.5", "math", True),
    ("2", "3", "math", False),
    ("\\text{(C)}", "\\text{(C)}", "math", True),
    ("[-2,7]", "[-2,7]", "math", True),
    (None, "\\frac{14}{3}", "math", False),
    ("Evelyn", "\\text{Evelyn}", "math", True),
    (" hello  world ", "hello world", "exact", True),
    ("Hello", "hello", "exact", False),
]


@pytest.mark.parametrize(("pred", "gold", "grader", "expected"), GOLDEN_GRADES)
def test_golden_grades(pred: object, gold: str, grader: grading.Grader, expected: bool) -> None:
    assert grading.is_correct(pred, gold, grader) is expected


GOLDEN_EXTRACT = [
    ("She makes 9 * 2 = $18 every day.\n#### 18", "numeric", "18"),
    ("So the answer is 1,250.", "numeric", "1250"),
    ("The total is 3 + 4 = 7. The answer is 7.", "numeric", "7"),
    ("Step 1: 12*12 = 144\nFinal: \\boxed{144}", "numeric", "144"),
    ("I am not sure.", "numeric", None),
    ("", "numeric", None),
    (
        "Thus $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$.",
        "math",
        "\\left( 3, \\frac{\\pi}{2} \\right)",
    ),
    ("nested \\boxed{\\frac{a}{\\sqrt{b}}} end", "math", "\\frac{a}{\\sqrt{b}}"),
    ("\\boxed{1} then \\boxed{2}", "math", "2"),
    ("no box here: 42", "math", None),
]


@pytest.mark.parametrize(("text", "grader", "expected"), GOLDEN_EXTRACT)
def test_golden_extraction(text: str, grader: grading.Grader, expected: str | None) -> None:
    assert grading.extract_answer(text, grader) == expected


@pytest.mark.parametrize(
    ("answer", "grader", "canonical"),
    [
        ("18.0", "numeric", "18"),
        (18.0, "numeric", "18"),
        ("$1,250", "numeric", "1250"),
        ("0.5", "numeric", "0.5"),
        ("[invalid]", "numeric", None),
        ("\\frac{1}{2}", "math", "1/2"),
        ("\\dfrac{1}{2}", "math", "1/2"),
        ("  a   b ", "exact", "a b"),
    ],
)
def test_normalize_clusters_equal_answers(
    answer: object, grader: grading.Grader, canonical: str | None
) -> None:
    assert grading.normalize(answer, grader) == canonical


def test_parse_number_rejects_non_numbers() -> None:
    for text in ["x+1", "1, 2", "abc", "", None, True, "1/0", float("inf")]:
        assert grading.parse_number(text) is None, text


def test_math_grading_works_outside_the_main_thread() -> None:
    """math-verify's SIGALRM timeout fails in threads; ttcalloc disables it there."""
    import threading

    results: list[bool] = []

    def work() -> None:
        grading._math_equal.cache_clear()
        grading._math_parse.cache_clear()
        results.append(grading.is_correct("\\frac{2}{4}", "\\frac{1}{2}", "math"))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert results == [True]


@pytest.mark.shared_data
def test_math500_boxed_solution_matches_answer_field(shared_data) -> None:
    """The last \\boxed{} of each MATH500 solution grades equal to its `answer` field."""
    path = shared_file(shared_data, "math500_test.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    mismatched = [
        r["answer"]
        for r in rows
        if not grading.is_correct(grading.last_boxed(r["solution"]), r["answer"], "math")
    ]
    assert len(mismatched) <= 5, mismatched


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "min_agreement"),
    [
        ("gsm8k_gpt4_mot_12samples.parquet", 0.995),
        ("gsm8k_train_activeprompt_codex_10samples.parquet", 0.995),
    ],
)
def test_numeric_grader_agrees_with_real_graded_samples(
    shared_data, name: str, min_agreement: float
) -> None:
    df = pl.read_parquet(shared_file(shared_data, name))
    ours = [
        grading.is_correct(p, g, "numeric")
        for p, g in zip(df["pred_answer"], df["gold_answer"], strict=True)
    ]
    agree = sum(o == t for o, t in zip(ours, df["correct"].to_list(), strict=True)) / df.height
    assert agree >= min_agreement
