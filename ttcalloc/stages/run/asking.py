"""How ``run`` asks and grades: as the policy's training samples were (the prompt and grader
recorded in policy.json, :mod:`ttcalloc.artifacts.answering`) unless a flag says otherwise, in
which case one line warns that the run differs from the policy; a policy whose samples were
drawn with prompt variants is run with the same variants (:func:`variants_for`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.artifacts.answering import BUILTIN_PROMPTS, variants_of
from ttcalloc.common.console import warn
from ttcalloc.common.errors import InputError, TtcallocError
from ttcalloc.sampler.options import NOT_SENT, VARIANTS_LABEL
from ttcalloc.sampler.variants import warn_programs
from ttcalloc.text import prompts
from ttcalloc.text.variants import PromptVariant

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
        if not sent:
            warn(f"--prompt {given}: {NOT_SENT} the prompt given is not used")
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


KINDS_UNRECORDED = (
    "the cascade's state reads the prompt kinds (text or program) of its samples, but "
    "policy.json records no prompt variants to draw them with; retrain with --no-prompt-kinds"
)


def kinds_unrecorded(policy: Any) -> bool:
    """A cascade that reads its samples' prompt kinds, without the variants to draw them."""
    ladder = getattr(policy, "ladder", None)
    return bool(getattr(ladder, "kinds", False)) and not recorded_variants(policy.info)


def recorded_variants(info: dict[str, Any]) -> list[PromptVariant]:
    """The prompt variants the policy's samples were drawn with (policy.json's
    ``prompt_variants``, checked); empty: the one prompt."""
    return [
        PromptVariant(v["name"], v["kind"], v["template"], v["label"] or "imported")
        for v in variants_of(info, "policy.json")
    ]


def variants_for(
    given: tuple[PromptVariant, ...], prompt: str | None, info: dict[str, Any], sent: bool = True
) -> tuple[PromptVariant, ...]:
    """The prompt variants ``run`` draws with: the policy's, each with its ``--prompt-variant``
    prompt where one is given; empty for a policy drawn with one prompt.  ``sent=False`` (the
    replay backend): prompts unknown to the policy are not needed."""
    recorded = recorded_variants(info)
    names = [v.name for v in recorded]
    if not recorded:
        if given:
            raise InputError(not_a_variant(given[0].name, []))
        return ()
    if prompt is not None:
        raise InputError(
            f"--prompt {prompt}: the policy was trained on samples drawn with prompt variants "
            f"{', '.join(names)}; give --prompt-variant NAME=PROMPT to change one"
        )
    by_name = {v.name: v for v in given}
    for v in given:
        mine = next((r for r in recorded if r.name == v.name), None)
        if mine is None:
            raise InputError(not_a_variant(v.name, names))
        if mine.kind != v.kind:
            raise InputError(
                f"--prompt-variant {v.name}: the policy's variant {v.name} is of kind "
                f"{mine.kind}, this prompt of kind {v.kind} (program prompts: program or "
                "program:FILE)"
            )
    if given and not sent:
        warn(f"--prompt-variant {', '.join(by_name)}: {NOT_SENT} the prompts given are not used")
    unknown = [r.name for r in recorded if r.name not in by_name and unknown_prompt(r)]
    if unknown and sent:
        raise InputError(
            f"the policy was trained on samples drawn with prompt variants {', '.join(unknown)} "
            "(imported: their prompts unknown); give --prompt-variant NAME=PROMPT for each"
        )
    return tuple(by_name.get(r.name, r) for r in recorded)


def asking(
    policy: Any,
    path: Path,
    given: tuple[PromptVariant, ...],
    prompt: str | None,
    sent: bool = True,
    programs_warning: bool = True,
) -> tuple[tuple[PromptVariant, ...], str | None, str]:
    """``(variants, template, label)`` the questions of ``policy`` (its folder ``path``) are
    asked with, by ``run`` and ``serve``: its prompt variants (:func:`variants_for`; template
    None, each request renders its variant's; one warning that programs will be run when some
    are of kind program, prompts are ``sent`` and ``programs_warning``: ``serve`` checks its
    flag first), else the one prompt of :func:`prompt_for`.  A cascade that reads prompt kinds
    without recorded variants is refused."""
    variants = variants_for(given, prompt, policy.info, sent=sent)
    if kinds_unrecorded(policy):
        raise InputError(f"{path}: {KINDS_UNRECORDED}")
    if not variants:
        return (), *prompt_for(prompt, policy.info, sent=sent)
    if sent and programs_warning:
        warn_programs(variants)
    return variants, None, VARIANTS_LABEL


def not_a_variant(name: str, names: list[str]) -> str:
    """The line for a ``--prompt-variant`` NAME the policy does not have."""
    if not names:
        return (
            f"--prompt-variant {name}: the policy's samples were drawn with one prompt, not "
            "prompt variants (use --prompt)"
        )
    return f"--prompt-variant {name}: not one of the policy's prompt variants ({', '.join(names)})"


def parse_given(specs: list[str], policy_path: Path) -> tuple[PromptVariant, ...]:
    """``run``'s ``--prompt-variant NAME=PROMPT`` values; a NAME the policy does not have is
    said before what is wrong with its PROMPT."""
    from ttcalloc.text.variants import parse_variant

    out = []
    for spec in specs:
        try:
            out.append(parse_variant(spec))
        except InputError:
            name, names = spec.partition("=")[0].strip(), _variant_names(Path(policy_path))
            if name and names is not None and name not in names:
                raise InputError(not_a_variant(name, names)) from None
            raise
    return tuple(out)


def _variant_names(policy_path: Path) -> list[str] | None:
    """The names of the policy's prompt variants (None: policy.json unreadable, which is said
    once the policy is loaded)."""
    import json

    try:
        info = json.loads((policy_path / "policy.json").read_text("utf-8"))
        return [v.name for v in recorded_variants(info)]
    except (OSError, ValueError, AttributeError, TypeError, TtcallocError):
        return None


def unknown_prompt(variant: PromptVariant) -> bool:
    """Whether a recorded variant's prompt is unknown (imported samples): no template, and not
    the built-in prompt per grader (a text variant ``auto``)."""
    return variant.template is None and not (variant.kind == "text" and variant.label == "auto")
