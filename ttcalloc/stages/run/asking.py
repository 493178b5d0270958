"""How ``run`` asks and grades: as the policy's training samples were (the prompt and grader
recorded in policy.json, :mod:`ttcalloc.artifacts.answering`) unless a flag says otherwise, in
which case one line warns that the run differs from the policy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.artifacts.answering import BUILTIN_PROMPTS
from ttcalloc.common.console import warn
from ttcalloc.text import prompts

if TYPE_CHECKING:
    import polars as pl


def grader_for(given: str | None, info: dict[str, Any]) -> str:
    """``--grader`` as given, else the policy's recorded grader, else ``auto`` (inferred from
    the gold answers)."""
    if given is not None:
        return given
    recorded = info.get("grader")
    return str(recorded) if recorded is not None else "auto"


def check_grader(questions: pl.DataFrame, path: Path, info: dict[str, Any]) -> None:
    """Warn (one line) when the questions are graded otherwise than the policy's samples were."""
    recorded = info.get("grader")
    used = sorted({str(g) for g in questions["grader"].to_list()})
    if recorded is not None and used != [recorded]:
        warn(
            f"{path}: graded by {', '.join(used)}, while the policy was trained on answers "
            f"graded by {recorded} (votes may group answers differently)"
        )


def prompt_for(
    given: str | None, info: dict[str, Any], sent: bool = True
) -> tuple[str | None, str]:
    """``(template, label)``: ``--prompt`` as given, else the policy's recorded prompt (a
    built-in name, or a file prompt's recorded text), else the built-in prompt per grader.
    ``sent=False`` (the replay backend, which sends no prompt): no warning."""
    recorded = info.get("prompt")
    if given is not None:
        template, label = prompts.load_template(given)
        if recorded is not None and label != recorded and sent:
            warn(
                f"--prompt {given}: the policy's samples were drawn with prompt {recorded}; "
                f"asking with {label} instead"
            )
        return template, label
    if recorded is None or recorded in BUILTIN_PROMPTS:
        return prompts.load_template(recorded)
    text = info.get("prompt_template")
    if isinstance(text, str):
        return text, str(recorded)
    if sent:
        warn(
            f"the policy's samples were drawn with prompt {recorded}, whose text the policy "
            "does not hold (samples drawn before it was recorded): give --prompt FILE; asking "
            "with the built-in prompt per grader"
        )
    return prompts.load_template(None)
