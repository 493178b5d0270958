"""Grading and clustering many answers at once, with the same results as one at a time.

:func:`grade_many` and :func:`canonical_many` give exactly what :func:`grading.is_correct` and
:func:`grading.normalize` give for each item, but do the slow part (math-verify's LaTeX parsing
and sympy comparisons) once per distinct thing and on every core:

- every distinct answer string is parsed once; its canonical form (the vote label) is kept in
  memory and in a small on-disk cache (``$TTCALLOC_HOME/cache/math-verify/``, keyed by the
  math-verify and latex2sympy versions), so ``import`` parses each answer and ``estimate``,
  ``train`` and ``evaluate`` reuse its canonical form instead of parsing it again;
- plain integers (``0``, ``-12``: math-verify parses them to themselves) skip the parser;
- per gold answer, predictions that parse to the same sympy objects are compared once:
  math-verify's ``verify`` is ``any`` over the (gold, prediction) pairs of parsed items, and a
  sympy item never equals a string item, so the sympy part is compared once per distinct
  ``srepr`` and the string part (a plain string test) separately;
- large batches are split over worker processes (``TTCALLOC_WORKERS``, default: the idle
  cores), each parsing and comparing a share of the gold answers;
- two exact rationals (the most common MATH answers) are compared with ``==``, which is what
  math-verify's comparison reduces to for them, without sympy's ``simplify``.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from ttcalloc.common.progress import Tracker
from ttcalloc.common.settings import cache_dir
from ttcalloc.text import grading
from ttcalloc.text.grading import Grader

WORKERS_ENV = "TTCALLOC_WORKERS"
# below this many strings to parse, starting worker processes costs more than it saves
MIN_PARALLEL = 400
PROGRESS_CHUNKS = 16  # chunks per worker: progress steps, few enough to cost nothing
# integers math-verify parses to themselves: [Integer(n), "n"] (no leading zeros, no "-0")
_PLAIN_INT = re.compile(r"0|-?[1-9]\d{0,17}")
_CANON: dict[str, str | None] = {}  # parsed text -> str(first parsed item), None: no parse
_MAX_MEMO = 500_000


def workers() -> int:
    """Worker processes for big batches: ``$TTCALLOC_WORKERS``, else the idle cores (<= 8).

    On a machine whose cores are busy with other work, extra processes only add start-up time
    (measured: 2 workers on 2 cores at load 4 were slower than 1), so the default counts the
    cores the 1-minute load average leaves free, at least 1.
    """
    explicit = os.environ.get(WORKERS_ENV, "").strip()
    if explicit:
        try:
            return max(1, int(explicit))
        except ValueError:
            return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    try:  # cores other work is not using (the load average counts this process too)
        idle = int(cores - os.getloadavg()[0] + 1.0)
    except OSError:  # pragma: no cover
        idle = cores
    return max(1, min(cores, idle, 8))


def _collapse(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- canonical forms (clustering)


def canonical_many(items: Iterable[tuple[Any, Grader]]) -> list[str | None]:
    """``grading.normalize(answer, grader)`` for every ``(answer, grader)``, in order."""
    items = list(items)
    out: list[str | None] = [None] * len(items)
    math_at: dict[str, list[int]] = {}
    for i, (answer, grader) in enumerate(items):
        if grader != "math" or grading.is_no_answer(answer):
            out[i] = grading.normalize(answer, grader)
            continue
        text = _collapse(str(answer))
        if not text:
            continue
        math_at.setdefault(text, []).append(i)
    forms = _math_forms(list(math_at))
    for text, where in math_at.items():
        form = forms[text]
        for i in where:
            out[i] = text if form is None else form
    return out


def _math_forms(texts: list[str]) -> dict[str, str | None]:
    """str(first parsed item) of every text (None when math-verify finds nothing)."""
    found: dict[str, str | None] = {}
    todo: list[str] = []
    for text in texts:
        if text in _CANON:
            found[text] = _CANON[text]
        elif _PLAIN_INT.fullmatch(text):
            found[text] = text
        else:
            todo.append(text)
    if todo:
        cached = _DiskCache.open().get(todo)
        found |= cached
        todo = [t for t in todo if t not in cached]
    if todo:
        parsed = _run(_forms_chunk, todo, lambda t: 1)
        found |= parsed
        _remember(parsed)
    return found


def _forms_chunk(texts: list[str]) -> dict[str, str | None]:
    return {t: _form_of(grading._math_parse(t)) for t in texts}


def _form_of(parsed: tuple[Any, ...]) -> str | None:
    return str(parsed[0]) if parsed else None


def _remember(forms: dict[str, str | None]) -> None:
    if len(_CANON) > _MAX_MEMO:
        _CANON.clear()
    _CANON.update(forms)
    _DiskCache.open().put(forms)


# ---------------------------------------------------------------------------- grading


def grade_many(items: Sequence[tuple[Any, Any, Grader]]) -> list[bool]:
    """``grading.is_correct(pred, gold, grader)`` for every ``(pred, gold, grader)``, in order."""
    out = [False] * len(items)
    by_gold: dict[str, dict[str, list[int]]] = {}
    for i, (pred, gold, grader) in enumerate(items):
        if grader != "math" or grading.is_no_answer(pred):
            out[i] = grading.is_correct(pred, gold, grader)
            continue
        p, g = str(pred).strip(), str(gold).strip()
        if p == g:
            out[i] = True
        elif _PLAIN_INT.fullmatch(p) and _PLAIN_INT.fullmatch(g):
            out[i] = False  # two different plain integers
        else:
            by_gold.setdefault(g, {}).setdefault(p, []).append(i)
    if by_gold:
        work = [(g, list(preds)) for g, preds in by_gold.items()]
        results = _run(_grade_chunk, work, lambda w: 1 + len(w[1]))
        forms: dict[str, str | None] = {}
        for g, preds in by_gold.items():
            grades, parsed_forms = results[g]
            forms |= parsed_forms
            for p, where in preds.items():
                for i in where:
                    out[i] = grades[p]
        _remember({_collapse(t): f for t, f in forms.items() if t == _collapse(t)})
    return out


def _grade_chunk(
    work: list[tuple[str, list[str]]],
) -> dict[str, tuple[dict[str, bool], dict[str, str | None]]]:
    """Per gold: the grade of each prediction, and the canonical forms of what was parsed."""
    return {gold: _grade_one_gold(gold, preds) for gold, preds in work}


def _grade_one_gold(gold: str, preds: list[str]) -> tuple[dict[str, bool], dict[str, str | None]]:
    from math_verify import verify

    timeout = grading.MATH_TIMEOUT_S if grading._in_main_thread() else None
    gold_parsed = grading._math_parse(gold)
    forms = {gold: _form_of(gold_parsed)}
    gold_sym, gold_str = _split(gold_parsed)
    by_key: dict[str, bool] = {}
    grades: dict[str, bool] = {}
    for pred in preds:
        pred_parsed = grading._math_parse(pred)
        forms[pred] = _form_of(pred_parsed)
        if not gold_parsed or not pred_parsed:
            grades[pred] = _collapse(pred) == _collapse(gold)
            continue
        pred_sym, pred_str = _split(pred_parsed)
        key = _key(pred_sym)
        try:
            if key is None or key not in by_key:
                same = _exact_numbers_equal(gold_sym, pred_sym)
                if same is None:
                    same = bool(verify(gold_sym, pred_sym, timeout_seconds=timeout))
                if key is not None:
                    by_key[key] = same
            else:
                same = by_key[key]
            if not same and pred_str and gold_str:
                same = bool(verify(gold_str, pred_str, timeout_seconds=timeout))
        except Exception:
            same = False
        grades[pred] = same
    return grades, forms


def _exact_numbers_equal(gold: list[Any], pred: list[Any]) -> bool | None:
    """verify's answer for one exact rational against another, without sympy's simplify.

    For two ``Rational`` items (``Integer`` included, no ``Float``) math-verify's comparison
    reduces to ``==``: structural equality, then numeric equality of atomic rationals, then
    ``simplify(a - b).is_zero``, which is false for two different rationals.  None: not this case.
    """
    from sympy import Rational

    if len(gold) == 1 and len(pred) == 1:
        a, b = gold[0], pred[0]
        if isinstance(a, Rational) and isinstance(b, Rational):
            return bool(a == b)
    return None


def _split(parsed: tuple[Any, ...]) -> tuple[list[Any], list[str]]:
    """The sympy items and the string items of a parse, each in order."""
    return [x for x in parsed if not isinstance(x, str)], [x for x in parsed if isinstance(x, str)]


def _key(items: list[Any]) -> str | None:
    """A text equal for two lists of sympy objects only when they are the same objects."""
    from sympy import srepr

    try:
        return "\x00".join(f"{type(x).__name__}:{srepr(x)}" for x in items)
    except Exception:
        return None


# ---------------------------------------------------------------------------- workers


def _run(fn: Any, work: list[Any], weight: Any) -> dict[Any, Any]:
    """``fn`` over ``work`` (a list), in worker processes when it is big; merged dict results."""
    n = workers()
    total = sum(weight(w) for w in work)
    if total < MIN_PARALLEL:
        return dict(fn(work))
    # big work goes in chunks, so that progress shows (a bar, or status lines when piped)
    chunks = _chunks(work, weight, max(n, 1) * PROGRESS_CHUNKS)
    merged: dict[Any, Any] = {}
    with Tracker("grading", total) as track:
        if n <= 1:
            for chunk in chunks:
                merged |= fn(chunk)
                track.advance(sum(weight(w) for w in chunk))
            return merged
        with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
            for chunk, part in zip(chunks, pool.map(fn, chunks), strict=True):
                merged |= part
                track.advance(sum(weight(w) for w in chunk))
    return merged


def _chunks(work: list[Any], weight: Any, count: int) -> list[list[Any]]:
    """``work`` in about ``count`` chunks of similar total weight (heaviest items spread out)."""
    order = sorted(work, key=weight, reverse=True)
    chunks: list[list[Any]] = [[] for _ in range(min(count, len(order)))]
    loads = [0] * len(chunks)
    for item in order:
        j = loads.index(min(loads))
        chunks[j].append(item)
        loads[j] += weight(item)
    return [c for c in chunks if c]


# ---------------------------------------------------------------------------- disk cache


class _DiskCache:
    """text -> canonical form of math answers, in SQLite, one file per parser version."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    @classmethod
    def open(cls) -> _DiskCache:
        try:
            versions = "-".join(
                metadata.version(p) for p in ("math-verify", "latex2sympy2_extended", "sympy")
            )
            return cls(cache_dir("math-verify") / f"canonical-{versions}.sqlite")
        except (OSError, metadata.PackageNotFoundError):
            return cls(None)

    def _connect(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        try:
            con = sqlite3.connect(self.path, timeout=30)
            con.execute(
                "CREATE TABLE IF NOT EXISTS canon (text TEXT PRIMARY KEY, form TEXT) WITHOUT ROWID"
            )
            return con
        except sqlite3.Error:
            return None

    def get(self, texts: list[str]) -> dict[str, str | None]:
        con = self._connect()
        if con is None:
            return {}
        found: dict[str, str | None] = {}
        try:
            for start in range(0, len(texts), 500):
                part = texts[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = con.execute(f"SELECT text, form FROM canon WHERE text IN ({marks})", part)
                found.update(rows.fetchall())
        except sqlite3.Error:
            return found
        finally:
            con.close()
        _CANON.update(found)
        return found

    def put(self, forms: dict[str, str | None]) -> None:
        if not forms:
            return
        con = self._connect()
        if con is None:
            return
        try:
            with con:
                con.executemany("INSERT OR IGNORE INTO canon VALUES (?, ?)", forms.items())
        except sqlite3.Error:
            pass
        finally:
            con.close()
