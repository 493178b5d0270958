"""Serving on ``replay:PATH``: a request's question matched to the problem its samples record.

A replayed model serves a question's recorded samples by the file's ``problem_id``; a request
carries only the question's text.  The samples record their problems file (``sample`` and
``import`` write it in their provenance): a question is found there by its text, whitespace
aside (as ``run`` compares them, :func:`ttcalloc.backends.replay.check_asked`), and the request
is served that problem's samples.  Its question id in the window is that problem id (so ``serve``
takes the variant rotation and samples ``run`` on replay takes for it); a repeat within one
window gets the id with ``-2``, ``-3``, ... (its own rotation) and the same recorded samples.

A question the replayed samples do not hold (not in the problems file, or none of its samples
received without error) is not answered: :meth:`ReplayIndex.missing` names it, and the request
is refused before it joins a window, so its window's other requests are answered.  Samples
whose problems file is not recorded (or gone, or changed) can answer no request: one warning
line at startup says so, and every request is refused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from ttcalloc.backends import Backend
from ttcalloc.backends.registry import ModelBackends
from ttcalloc.backends.replay import ReplayBackend, normalised, recorded_questions
from ttcalloc.common.console import warn


class NotRecorded(Exception):
    """The request's question is not among the questions the replayed samples hold."""


@dataclass(frozen=True)
class Replayed:
    """One replayed model: its samples' questions (normalised text -> problem id; None: no
    problems file to read) and the problem ids it holds samples of."""

    spec: str
    questions: dict[str, str] | None
    held: frozenset[str]
    why: str  # where the questions were read, or why they could not be


class ReplayIndex:
    """The replayed models of a served backend (one, or those of several models' backends)."""

    def __init__(self, models: Mapping[str | None, Replayed]) -> None:
        self.models = dict(models)

    @classmethod
    def of(cls, backend: Backend) -> ReplayIndex | None:
        """The replayed models behind ``backend`` (None: none is ``replay:PATH``); one warning
        line for each whose samples record no problems file to match questions by."""
        found: dict[str | None, ReplayBackend] = {}
        if isinstance(backend, ReplayBackend):
            found[None] = backend
        elif isinstance(backend, ModelBackends):
            found = {m: b for m, b in backend.backends.items() if isinstance(b, ReplayBackend)}
        if not found:
            return None
        models = {}
        for name, b in found.items():
            questions, why = recorded_questions(b.path)
            held = frozenset(k for k in b.pools if "\x00" not in k)
            models[name] = Replayed(b.name, questions, held, why)
            if questions is None:
                warn(f"{b.name}: {why}: serve cannot match a request's question to its recorded "
                     "samples, and refuses every request (422)")  # fmt: skip
        return cls(models)

    def recorded(self, question: str) -> dict[str | None, str] | None:
        """The problem id of ``question`` in each replayed model's samples (None: one of them
        does not hold it)."""
        text = normalised(question)
        out = {}
        for name, r in self.models.items():
            pid = (r.questions or {}).get(text)
            if pid is None or pid not in r.held:
                return None
            out[name] = pid
        return out

    def missing(self, question: str) -> str | None:
        """Why ``question`` cannot be replayed (None: every replayed model holds it)."""
        text = normalised(question)
        short = text if len(text) <= 60 else text[:59] + "…"
        for name, r in self.models.items():
            of = "" if name is None else f" (model {name})"
            if r.questions is None:
                return f"question {short!r} cannot be matched to {r.spec}{of}: {r.why}"
            pid = r.questions.get(text)
            if pid is None:
                return (
                    f"question {short!r} is not among the recorded questions of {r.spec}{of} "
                    f"({len(r.held)} questions with samples, from {r.why}); replay answers "
                    "only the questions its samples were drawn for"
                )
            if pid not in r.held:
                return (
                    f"question {short!r} (problem {pid!r} of {r.why}) has no samples received "
                    f"without error in {r.spec}{of}: nothing to replay for it"
                )
        return None

    def ids(self, questions: list[str], hashed: list[str]) -> list[str]:
        """The window's question ids: a recorded question's problem id (of the first replayed
        model; else its ``hashed`` id), a repeat's with ``-2``, ``-3``, ... (the first such
        suffix that is no other id of the window)."""
        bases = []
        for q, h in zip(questions, hashed, strict=True):
            got = self.recorded(q)
            bases.append(next(iter(got.values())) if got else h)
        return repeats_apart(bases)


def repeats_apart(bases: list[str]) -> list[str]:
    """A window's question ids: ``bases`` with a repeat's id given ``-2``, ``-3``, ... (the first
    such suffix that is no other id of the window), so each request is its own question."""
    taken = set(bases)
    seen: Counter[str] = Counter()
    out = []
    for base in bases:
        seen[base] += 1
        pid, k = base, seen[base]
        if k > 1:
            while f"{base}-{k}" in taken:
                k += 1
            pid = f"{base}-{k}"
            taken.add(pid)
        out.append(pid)
    return out
