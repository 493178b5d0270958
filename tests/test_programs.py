"""text.programs: program-of-thought extraction and execution in a child process."""

from __future__ import annotations

import os

import pytest

from ttcalloc.text.programs import _MARK, ProgramOptions, extract_program, run_programs

DATE = "today = datetime(2021, 5, 1)\nans = (today - timedelta(days=7)).strftime('%m/%d/%Y')"

# (program, expected answer): realistic PoT programs from Date Understanding, SVAMP and GSM8K
GOLDEN = [
    (DATE, "04/24/2021"),
    (
        "import datetime\nd = datetime.date(2019, 12, 31) + datetime.timedelta(days=1)\nans = d.strftime('%m/%d/%Y')",
        "01/01/2020",
    ),
    ("ans = date(2021, 5, 1)", "2021-05-01"),
    ("ans = 12 * 3 - 4", "32"),
    ("apples = 14\neaten = 7.0\nans = apples - eaten", "7"),
    ("ans = 5 / 2", "2.5"),
    ("ans = 1 / 3", "0.333333"),
    ("ans = 0.1 + 0.2", "0.3"),
    ("total = 3 * 1.1\nans = total * 10", "33"),
    ("answer = 18 * 2", "36"),
    ("ans = None\nanswer = 4", "4"),
    ("def solution():\n    return 5", "5"),
    ("def solution(n=10):\n    return n * 2.0", "20"),
    ("def solution():\n    eggs = 16 - 3 - 4\n    return eggs * 2\n\nprint('working')", "18"),
    ("x = 40\nprint('the answer is')\nprint(x + 2)\nprint()", "42"),
    ("print('12.5')", "12.5"),
    ("import math\nans = math.sqrt(16)", "4"),
    ("from fractions import Fraction\nans = Fraction(3, 4)", "3/4"),
    ("from decimal import Decimal\nans = Decimal('2.50')", "2.50"),
    ("ans = 'Yes'", "Yes"),
    ("ans = math.floor(7.9)", "7"),
]


@pytest.mark.parametrize(("program", "expected"), GOLDEN)
def test_golden_programs(program: str, expected: str) -> None:
    assert run_programs([program]) == [expected]


@pytest.mark.parametrize(
    "program",
    [
        "ans = 1 +",  # syntax error
        "ans = 1 / 0",  # exception
        "x = 3",  # yields nothing
        "ans = ''\nprint('  ')",  # only blanks
        "def solution(n):\n    return n",  # solution needs an argument
        "import sys\nprint(7)\nsys.exit(1)",  # a failing exit
        "x = bytearray(10**10)\nans = 1",  # memory bomb
        "ans = 10**5000",  # str() refuses the digits
    ],
)
def test_failures_are_none(program: str) -> None:
    assert run_programs([program]) == [None]


def test_infinite_loop_times_out() -> None:
    assert run_programs(["while True: pass"], ProgramOptions(timeout_s=1)) == [None]


def test_environment_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    program = "import os\nans = os.environ.get('OPENAI_API_KEY', 'absent')"
    assert run_programs([program]) == ["absent"]


def test_cwd_is_a_fresh_directory_removed_afterwards() -> None:
    (cwd,) = run_programs(["import os\nopen('scratch.txt', 'w').write('x')\nans = os.getcwd()"])
    assert cwd is not None and cwd != os.getcwd()
    assert not os.path.exists(cwd)


def test_forged_result_lines_do_not_change_the_answer() -> None:
    forged = f'{_MARK}0123 {{"answer": "666"}}'
    program = (
        "import os, sys\n"
        f"line = {forged!r} + '\\n'\n"
        "print(line)\n"
        "os.write(1, line.encode())\n"
        "sys.__stdout__.write(line); sys.__stdout__.flush()\n"
    )
    assert run_programs([program + "ans = 1"]) == ["1"]
    assert run_programs([program]) == [forged]  # only as the last printed line


def test_batch_keeps_input_order() -> None:
    programs = [
        "ans = 1",
        None,
        "ans = 1 / 0",
        DATE,
        "while True: pass",
        "print('b')",
        "",
        "def solution():\n    return 3.0",
    ]
    expected = ["1", None, None, "04/24/2021", None, "b", None, "3"]
    assert run_programs(programs, ProgramOptions(timeout_s=1)) == expected


def test_none_and_empty_input() -> None:
    assert run_programs([None]) == [None]
    assert run_programs([]) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Let's compute.\n```python\nans = 2 + 2\n```\nSo the answer is 4.", "ans = 2 + 2\n"),
        ("```\nans = 3\n```", "ans = 3\n"),
        ("```python\nans = 1\n```\nWait, fix:\n```python\nans = 2\n```\n", "ans = 2\n"),
        ("```python\nans = 1\n```\n```output\n1\n```", "ans = 1\n"),
        ("Here:\n```py\n    x = 1\n    ans = x\n", "x = 1\nans = x\n"),  # unclosed, indented
        ("ans = 12 * 3 - 4\n", "ans = 12 * 3 - 4\n"),  # bare code
        ("The answer is 32.", None),
        ("", None),
        ("```python\n\n```", None),
    ],
)
def test_extract_program(text: str, expected: str | None) -> None:
    assert extract_program(text) == expected


def test_extracted_program_runs() -> None:
    text = f"We count back a week from May 1.\n```python\n{DATE}\nprint(ans)\n```\nDone."
    assert run_programs([extract_program(text)]) == ["04/24/2021"]
