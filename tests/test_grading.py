"""Grading: golden tables of real answer formats, and agreement with real graded sample files."""

from __future__ import annotations

import json
import random

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
    # SVAMP problem 70, a Codex program's answer: whole numbers compare exactly (it was within
    # the relative tolerance of 1e-6, and graded right against the file's own grade)
    ("22090586", "22090603", "numeric", False),
    ("22090603.0", "22090603", "numeric", True),
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


# ---------------------------------------------------------------- batch grading and clustering

# More MATH forms for the batch path: every equivalence class it shortcuts (plain integers,
# exact rationals, the same sympy objects written differently, strings that do not parse).
BATCH_EXTRA = [
    ("7", "7", "math", True),
    ("-7", "7", "math", False),
    ("0", "-0", "math", True),
    ("07", "7", "math", True),
    ("7.0", "7", "math", True),
    ("\\frac12", "\\frac{1}{2}", "math", True),
    ("\\dfrac{2}{4}", "\\frac{1}{2}", "math", True),
    ("1/2", "\\frac{1}{2}", "math", True),
    ("\\frac{1}{3}", "\\frac{1}{2}", "math", False),
    ("0.5", "\\frac{1}{2}", "math", True),
    ("0.33", "\\frac{1}{3}", "math", False),
    ("2\\sqrt{3}", "\\sqrt{12}", "math", True),
    ("\\sqrt{13}", "\\sqrt{12}", "math", False),
    ("x = 5", "5", "math", True),
    ("(1, 2)", "(1,2)", "math", True),
    ("(2, 1)", "(1,2)", "math", False),
    ("\\text{Evelyn}", "\\text{Evelyn}", "math", True),
    ("Evelyn ", "Evelyn", "math", True),
    ("@@@", "@@@", "math", True),
    ("@@@", "###", "math", False),
]


@pytest.fixture(params=["inline", "worker processes"])
def batch_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a batch test in this process, and again through the worker-process path."""
    from ttcalloc.text import batch

    monkeypatch.setattr(batch, "_CANON", {})
    if request.param == "inline":
        monkeypatch.setenv(batch.WORKERS_ENV, "1")
    else:
        monkeypatch.setenv(batch.WORKERS_ENV, "2")
        monkeypatch.setattr(batch, "MIN_PARALLEL", 0)
    return str(request.param)


def test_grade_many_matches_the_golden_tables(batch_mode: str) -> None:
    from ttcalloc.text import batch

    table = GOLDEN_GRADES + BATCH_EXTRA
    assert batch.grade_many([(p, g, k) for p, g, k, _ in table]) == [e for *_, e in table]
    one_by_one = [grading.is_correct(p, g, k) for p, g, k, _ in table]
    assert batch.grade_many([(p, g, k) for p, g, k, _ in table]) == one_by_one


def test_canonical_many_matches_normalize(batch_mode: str) -> None:
    from ttcalloc.text import batch

    answers = [p for p, *_ in GOLDEN_GRADES + BATCH_EXTRA] + ["  \\frac{1}{2} ", "1 / 2", "12"]
    items = [(a, g) for a in answers for g in ("math", "numeric", "exact")]
    assert batch.canonical_many(items) == [grading.normalize(a, g) for a, g in items]


def test_plain_integers_and_rationals_shortcut_exactly_what_math_verify_gives() -> None:
    """The two shortcuts of the batch path, against math-verify itself on many values."""
    from math_verify import verify
    from sympy import Rational

    from ttcalloc.text import batch

    rng = random.Random(0)
    ints = ["0", "1", "-1", "10", "-250", "123456789012345678"]
    ints += [str(rng.randint(-(10**6), 10**6)) for _ in range(40)]
    for text in ints:
        parsed = grading._math_parse(text)
        assert [str(x) for x in parsed] == [text, text], text
        assert batch._PLAIN_INT.fullmatch(text)
    values = [Rational(rng.randint(-20, 20), rng.randint(1, 9)) for _ in range(40)]
    for a in values[:20]:
        for b in [*values[20:], a]:
            assert batch._exact_numbers_equal([a], [b]) is verify([a], [b])


def test_canonical_forms_are_kept_on_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second process (here: an emptied memory) reads the forms instead of parsing again."""
    from ttcalloc.text import batch

    monkeypatch.setenv(batch.WORKERS_ENV, "1")
    monkeypatch.setattr(batch, "_CANON", {})
    items = [("\\dfrac{3}{4}", "math"), ("\\sqrt{8}", "math"), ("zz", "math")]
    first = batch.canonical_many(items)
    assert first == [grading.normalize(a, g) for a, g in items]
    monkeypatch.setattr(batch, "_CANON", {})

    def no_parse(_: str) -> tuple[()]:
        raise AssertionError("parsed again")

    monkeypatch.setattr(grading, "_math_parse", no_parse)
    assert batch.canonical_many(items) == first


@pytest.mark.shared_data
def test_batch_grading_equals_one_by_one_on_real_math_answers(shared_data, batch_mode) -> None:
    """MATH500's real answer strings, each gold against its solution's boxed answer and other
    problems' answers of the same subject: the batch grades and forms equal the old path's."""
    from ttcalloc.text import batch

    rows = [json.loads(line) for line in shared_file(shared_data, "math500_test.jsonl").open()]
    rows = rows[:: max(1, len(rows) // 60)]
    by_subject: dict[str, list[str]] = {}
    for r in rows:
        by_subject.setdefault(r["subject"], []).append(r["answer"])
    items = []
    for r in rows:
        preds = [grading.last_boxed(r["solution"]), *by_subject[r["subject"]][:8]]
        items += [(p, r["answer"], "math") for p in preds]
    assert batch.grade_many(items) == [grading.is_correct(p, g, k) for p, g, k in items]
    forms = [(p, "math") for p, _, _ in items]
    assert batch.canonical_many(forms) == [grading.normalize(a, g) for a, g in forms]
