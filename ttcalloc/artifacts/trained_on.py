"""Which questions a policy was trained on, to catch scoring it on them.

A policy's provenance records its problems file (path and fingerprint); from now on ``train``
also records ``train_questions``: a short hash of each training question's text.  ``evaluate``
compares the test questions it scores against them (the recorded hashes, else the train split of
the recorded problems file when it is still there and unchanged): a test question the policy was
trained on makes the report optimistic (for instance a problems file of another ``data --seed``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ttcalloc.artifacts.frames import input_path
from ttcalloc.artifacts.io import fingerprint, read_artifact, recorded_input
from ttcalloc.artifacts.schemas import PROBLEMS
from ttcalloc.common.errors import ArtifactError

KEY = "train_questions"


def question_key(question: str) -> str:
    """A short hash of a question's text (whitespace aside, as replay compares questions)."""
    return hashlib.sha256(" ".join(question.split()).encode("utf-8")).hexdigest()[:16]


def train_questions_record(questions: Iterable[str]) -> dict[str, Any]:
    """What ``train`` stores in a policy's provenance: the hashes of its training questions."""
    keys = sorted({question_key(q) for q in questions})
    return {KEY: {"hash": "sha256 of the question text, first 16 hex digits", "keys": keys}}


def trained_keys(info: Mapping[str, Any], folder: Path) -> tuple[set[str] | None, str]:
    """The hashes of the questions a policy was trained on, and where they come from.

    From the policy's record, else the train split of its recorded problems file; None (and
    why) when neither is there (an older policy whose problems file is gone or changed)."""
    prov = info.get("provenance") or {}
    record = prov.get(KEY)
    if isinstance(record, dict) and isinstance(record.get("keys"), list):
        return {str(k) for k in record["keys"]}, "its recorded training questions"
    shown = input_path(prov, "problems")
    try:
        path = recorded_input(prov, "problems", Path(folder) / "policy.json", "--problems")
    except ArtifactError:
        return None, f"its problems file {shown} has changed since it was trained"
    if path is None:
        return None, f"its problems file {shown} is gone" if shown else "no problems file recorded"
    problems = read_artifact(path, PROBLEMS).df
    if "split" not in problems.columns:
        return None, f"its problems file {path} has no split"
    train = problems.filter(problems["split"] == "train")["question"].to_list()
    return {question_key(q) for q in train}, f"the train split of {path}"


def trained_hits(
    info: Mapping[str, Any], folder: Path, questions: list[str]
) -> tuple[int | None, str]:
    """How many of ``questions`` the policy was trained on (None when that is unknown), and
    where its training questions came from (or why they are unknown)."""
    keys, source = trained_keys(info, folder)
    if keys is None:
        return None, source
    return sum(question_key(q) in keys for q in questions), source


def trained_on_test(
    policies: Mapping[str, tuple[Path, Mapping[str, Any]]],
    test_questions: list[str],
    problems_path: Path,
) -> dict[str, tuple[str, str]]:
    """Per policy (name -> folder and policy.json content) that was trained on some of the scored
    test questions, or whose training questions are unknown: the warning and the report note."""
    test = len(test_questions)
    found: dict[str, tuple[str, str]] = {}
    for name, (folder, info) in policies.items():
        hit, source = trained_hits(info, folder, test_questions)
        if hit is None:
            record = ((info.get("provenance") or {}).get("inputs") or {}).get("problems") or {}
            if record.get("fingerprint") == fingerprint(Path(problems_path)):
                continue  # the very file it was trained with (moved): its split is kept apart
            text = (
                f"policy {name}: cannot check that the test questions of {problems_path} were "
                f"not among its training questions ({source})"
            )
            found[name] = (text, f"{text}.")
            continue
        if hit:
            found[name] = (
                f"policy {name} ({folder}) was trained on {hit} of the {test} test "
                f"questions of {problems_path} ({source}): its scores are optimistic; evaluate "
                "with the problems file it was trained with (or, if a question is there under "
                "two ids, drop the duplicate: the split is drawn per id)",
                f"TRAIN/TEST LEAK: policy {name} ({folder}) was trained on {hit} of the {test} "
                f"test questions of {problems_path} ({source}); its scores are optimistic.",
            )
    return found
