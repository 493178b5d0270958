"""Answer extraction, normalization and grading.

Three graders, chosen per problem (the ``grader`` column of problems):

- ``numeric`` (GSM8K and other number answers): numbers compared as numbers; commas, ``$``,
  units after the number and a trailing ``.`` are ignored.
- ``math`` (MATH and other LaTeX answers): compared with math-verify.  Its timeouts use
  ``SIGALRM``, which only works in the main thread; elsewhere ttcalloc calls it without a timeout.
- ``exact``: whitespace-normalized string equality (dates, multiple-choice letters, yes/no,
  names and other short strings).

:func:`guess_grader` picks one from a dataset's gold answers (``--grader auto``): every answer a
number -> ``numeric``; any LaTeX or formula -> ``math``; otherwise (dates such as ``05/01/2021``,
options such as ``(A)``, yes/no, words) -> ``exact``.

:func:`normalize` gives the canonical form used to cluster answers for majority voting: two
answers with the same canonical form are the same vote.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Literal

Grader = Literal["numeric", "math", "exact"]
GRADERS: tuple[Grader, ...] = ("numeric", "math", "exact")

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_GSM8K_MARK = re.compile(r"####\s*(.+)")
_ANSWER_IS = re.compile(r"answer\s*(?:is|:)\s*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE)
MATH_TIMEOUT_S = 5
# Placeholders that tools write when a response has no final answer (seen in real sample files,
# e.g. OVM's "[invalid]"): they are abstentions, never votes.
NO_ANSWER_MARKERS = frozenset(
    {"", "[invalid]", "invalid", "[no answer]", "no answer", "none", "null", "nan", "n/a", "[none]"}
)


def is_no_answer(answer: Any) -> bool:
    """Whether ``answer`` means "no answer": None, NaN, empty or a known placeholder."""
    if answer is None:
        return True
    if isinstance(answer, float):
        return answer != answer
    return isinstance(answer, str) and answer.strip().lower() in NO_ANSWER_MARKERS


AnswerKind = Literal["number", "date", "choice", "yes/no", "latex", "formula", "text"]
_DATE = re.compile(
    r"\d{1,2}/\d{1,2}/\d{2,4}|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-.]\d{1,2}[-.]\d{4}"
)
_CHOICE = re.compile(r"\(?[A-Za-z]\)?[.:]?")
_YES_NO = frozenset({"yes", "no", "true", "false"})
_LATEX = re.compile(r"[\\^_{}$]")
# formulas without LaTeX, as in MATH's answers: "x=5", "6+9i", "p - q", "(3,4]", "1,-2", "2k"
_FORMULA = re.compile(
    r"[+*=<>]|\s-\s|^[(\[].*,.*[)\]]$|^-?\d*\.?\d+[a-z]$|^-?[\d.]+(?:\s*,\s*-?[\d.]+)+$"
)


def answer_kind(answer: Any) -> AnswerKind | None:
    """What a gold answer looks like (None: no answer), for :func:`guess_grader`.

    ``number`` (``18``, ``1,250``, ``3/4``), ``date`` (``05/01/2021``, ``2021-05-01``),
    ``choice`` (``(A)``, ``B``), ``yes/no`` (also true/false), ``latex`` (``\\frac{1}{2}``,
    ``x^2``), ``formula`` (``x=5``, ``6+9i``, ``(3,4]``, ``1,-2``, ``2k``) or ``text``.
    """
    if is_no_answer(answer):
        return None
    if parse_number(answer) is not None:
        return "number"
    text = " ".join(str(answer).split())
    if _DATE.fullmatch(text):
        return "date"
    if _CHOICE.fullmatch(text):
        return "choice"
    if text.lower().rstrip(".") in _YES_NO:
        return "yes/no"
    if _LATEX.search(text):
        return "latex"
    if _FORMULA.search(text):
        return "formula"
    return "text"


def guess_grader(answers: Iterable[Any]) -> Grader | None:
    """The grader for a dataset's gold answers (None: no answers to guess from).

    Every answer a number: ``numeric``.  Any answer in LaTeX or a formula: ``math``
    (math-verify).  Otherwise, dates (``05/01/2021`` is not a division), multiple-choice
    letters, yes/no and other short strings, alone or mixed with numbers: ``exact``.
    """
    kinds = {k for k in map(answer_kind, answers) if k is not None}
    if not kinds:
        return None
    if kinds == {"number"}:
        return "numeric"
    if kinds & {"latex", "formula"}:
        return "math"
    return "exact"


def parse_number(text: Any) -> float | None:
    """Parse a final answer as a number, or return None.

    Accepts ints and floats as they are, and strings such as ``"1,234"``, ``"$18"``, ``"18."``,
    ``"-3.50"``, ``"3/4"``, ``"18 dollars"``, ``"\\boxed{18}"``.  Returns None for text that is not
    a single number (``"x+1"``, ``""``, ``"1, 2"``).
    """
    if text is None or isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        value = float(text)
        return value if math.isfinite(value) else None
    return _parse_text(str(text))


@lru_cache(maxsize=65536)
def _parse_text(text: str) -> float | None:
    """:func:`parse_number` of a string (cached: a problem's gold answer and its samples' final
    answers come again and again)."""
    s = text.strip()
    boxed = last_boxed(s)
    if boxed is not None:
        s = boxed.strip()
    s = s.replace("\\$", "").replace("$", "").replace("\\!", "").replace("\\,", "")
    s = s.replace("\\%", "").replace("%", "").strip().rstrip(".").strip()
    s = re.sub(r"^\\text\{(.*)\}$", r"\1", s).strip()
    frac = re.fullmatch(r"(-?)\\d?frac\{(-?\d+)\}\{(\d+)\}", s)
    if frac:
        num, den = int(frac.group(2)), int(frac.group(3))
        return None if den == 0 else (-1 if frac.group(1) else 1) * num / den
    match = re.fullmatch(
        r"(-?\d[\d,]*(?:\.\d+)?|-?\.\d+)(?:\s*/\s*(\d+))?(?:\s+[A-Za-z][\w\s.]*)?", s
    )
    if not match:
        return None
    body = match.group(1)
    if "," in body and not re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", body):
        return None
    value = float(body.replace(",", ""))
    if match.group(2):
        den = int(match.group(2))
        if den == 0:
            return None
        value /= den
    return value


def format_number(value: float) -> str:
    """Canonical text of a number: integers without a decimal point, else 12 significant digits."""
    if value == 0:
        return "0"
    if float(value).is_integer() and abs(value) < 1e18:
        return str(int(value))
    return f"{value:.12g}"


def last_boxed(text: str) -> str | None:
    r"""The content of the last ``\boxed{...}`` (or ``\fbox{...}``) in ``text``, braces balanced."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        # "\boxed 5" form
        rest = text[start:].split(None, 1)
        return rest[1].split("$")[0].strip() if len(rest) > 1 else None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def extract_gsm8k_answer(text: str) -> str | None:
    """A GSM8K-style final answer: after ``####``, else "answer is N", else the last number."""
    marked = _GSM8K_MARK.findall(text)
    if marked:
        num = parse_number(marked[-1].strip().split("\n")[0])
        if num is not None:
            return format_number(num)
    boxed = last_boxed(text)
    if boxed is not None:
        num = parse_number(boxed)
        if num is not None:
            return format_number(num)
    said = _ANSWER_IS.findall(text)
    if said:
        num = parse_number(said[-1])
        if num is not None:
            return format_number(num)
    numbers = _NUMBER.findall(text)
    for candidate in reversed(numbers):
        num = parse_number(candidate)
        if num is not None:
            return format_number(num)
    return None


def extract_math_answer(text: str) -> str | None:
    r"""The final answer of a MATH-style response: the last ``\boxed{}``, else None."""
    boxed = last_boxed(text)
    return boxed.strip() if boxed is not None and boxed.strip() else None


def extract_answer(text: str | None, grader: Grader) -> str | None:
    """Extract and normalize the final answer of a full response for the given grader."""
    if not text:
        return None
    if grader == "numeric":
        return extract_gsm8k_answer(text)
    if grader == "math":
        return extract_math_answer(text)
    marked = _GSM8K_MARK.findall(text)
    if marked:
        return " ".join(marked[-1].split()) or None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[-1].split()) if lines else None


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@lru_cache(maxsize=65536)
def _math_parse(answer: str) -> tuple[Any, ...]:
    from math_verify import parse

    wrapped = answer if "$" in answer or "\\boxed" in answer else f"${answer}$"
    timeout = MATH_TIMEOUT_S if _in_main_thread() else None
    try:
        parsed = parse(wrapped, parsing_timeout=timeout)
        if not parsed:
            parsed = parse(answer, parsing_timeout=timeout)
    except Exception:
        return ()
    return tuple(parsed)


def normalize(answer: Any, grader: Grader) -> str | None:
    """The canonical form of a final answer, used to cluster votes; None for no answer."""
    if is_no_answer(answer):
        return None
    if grader == "numeric":
        num = parse_number(answer)
        if num is not None:
            return format_number(num)
        text = " ".join(str(answer).split())
        return text or None
    text = " ".join(str(answer).split())
    if not text:
        return None
    if grader == "math":
        parsed = _math_parse(text)
        if parsed:
            return str(parsed[0])
    return text


def numbers_equal(a: float, b: float) -> bool:
    """Numeric answer equality: two whole numbers exactly (22090586 is not 22090603), else
    relative tolerance 1e-6 (absolute 1e-9 near zero)."""
    if math.isfinite(a) and math.isfinite(b) and a.is_integer() and b.is_integer():
        return a == b
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def is_correct(pred: Any, gold: Any, grader: Grader) -> bool:
    """Whether a final answer matches the gold answer.  No answer (None or "") is wrong."""
    if is_no_answer(pred):
        return False
    if grader == "numeric":
        p, g = parse_number(pred), parse_number(gold)
        if p is not None and g is not None:
            return numbers_equal(p, g)
        return normalize(pred, "exact") == normalize(gold, "exact")
    if grader == "math":
        return _math_equal(str(pred).strip(), str(gold).strip())
    return normalize(pred, "exact") == normalize(gold, "exact")


@lru_cache(maxsize=65536)
def _math_equal(pred: str, gold: str) -> bool:
    if pred == gold:
        return True
    from math_verify import verify

    gold_parsed, pred_parsed = _math_parse(gold), _math_parse(pred)
    if not gold_parsed or not pred_parsed:
        return " ".join(pred.split()) == " ".join(gold.split())
    timeout = MATH_TIMEOUT_S if _in_main_thread() else None
    try:
        return bool(verify(list(gold_parsed), list(pred_parsed), timeout_seconds=timeout))
    except Exception:
        return False
