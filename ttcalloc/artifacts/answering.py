"""How a policy's training samples were asked for and graded, recorded in policy.json so that
``ttcalloc run`` asks and grades new questions alike unless told otherwise.

- ``grader``: the problems' grader (numeric, math or exact; None when they mix graders);
- ``prompt``: the label ``sample`` recorded for its prompt (``auto``, a built-in name, or
  ``file:<name>:<digest>``; None for imported samples, whose prompt is unknown), and
  ``prompt_template``: the template's text when it was a file (None otherwise, or when the
  samples predate recording it);
- ``strategy``: how the policy's actions combine samples (majority or pass);
- ``prompt_variants`` (only when the samples were drawn with several prompts, ``sample
  --prompt-variant`` or an imported variant column): each variant's name, kind (text or
  program), label and template (None when imported: the prompt's text is unknown).

Policy folders written before these fields existed load with all four None (run then does what
it did before: the built-in prompt per grader, the grader from the gold answers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ttcalloc.artifacts.io import parquet_files, read_meta, recorded_input
from ttcalloc.common.errors import ArtifactError

KEYS = ("grader", "prompt", "prompt_template", "strategy")
BUILTIN_PROMPTS = ("auto", "numeric", "math", "exact")


def samples_prompt(samples: Path | None) -> tuple[str | None, str | None]:
    """The prompt label and (for a file prompt) template text a samples artifact recorded."""
    if samples is None or not Path(samples).exists():
        return None, None
    try:
        params = read_meta(parquet_files(Path(samples))[0]).get("params") or {}
    except ArtifactError:
        return None, None
    label, template = params.get("prompt"), params.get("prompt_template")
    return (
        label if isinstance(label, str) else None,
        template if isinstance(template, str) else None,
    )


def samples_variants(samples: Path | None) -> list[dict[str, Any]]:
    """The prompt variants a samples artifact recorded (``params.prompt_variants``), checked;
    [] unless every part of a folder recorded the same ones (a run draws every model alike)."""
    if samples is None or not Path(samples).exists():
        return []
    seen = []
    try:
        for part in parquet_files(Path(samples)):
            params = read_meta(part).get("params") or {}
            seen.append(variants_of(params, str(part)))
    except ArtifactError:
        return []
    return seen[0] if seen and all(v == seen[0] for v in seen) else []


def variants_of(info: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """``info["prompt_variants"]`` (policy.json, or a samples artifact's params) checked: a list
    of ``{name, kind, label, template}``; [] when absent.

    Raises:
        ArtifactError: one line naming the entry that is not so.
    """
    raw = info.get("prompt_variants")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ArtifactError(f"{where}: prompt_variants: expected a list, found {raw!r}"[:300])
    out: list[dict[str, Any]] = []
    for i, v in enumerate(raw):
        ok = (
            isinstance(v, dict)
            and isinstance(v.get("name"), str)
            and v.get("kind") in ("text", "program")
            and isinstance(v.get("label", ""), str)
            and (v.get("template") is None or isinstance(v.get("template"), str))
        )
        if ok and v["template"] is not None:
            try:
                ok = "{question}" in v["template"] and bool(v["template"].format(question="x"))
            except (KeyError, IndexError, ValueError):
                ok = False
        if not ok or v["name"] in {o["name"] for o in out}:
            raise ArtifactError(
                f"{where}: prompt_variants[{i}]: expected {{name (each its own), kind (text or "
                f"program), label, template (with {{question}}) or null}}, found {v!r}"[:300]
            )
        out.append(
            {
                "name": v["name"],
                "kind": v["kind"],
                "label": v.get("label"),
                "template": v.get("template"),
            }
        )
    return out


def curves_samples(curves_meta: Mapping[str, Any], curves_path: Path) -> Path | None:
    """The samples the curves were estimated from, if they are still there unchanged."""
    try:
        return recorded_input(curves_meta, "samples", Path(curves_path), "--samples")
    except ArtifactError:
        return None


def answering(
    graders: Iterable[str], samples: Path | None, strategies: Iterable[str]
) -> dict[str, Any]:
    """The fields for policy.json: the training problems' graders, the samples they were
    drawn from, and the strategies of the policy's actions (one of each, else None)."""
    one_grader = sorted(set(graders))
    one_strategy = sorted(set(strategies))
    prompt, template = samples_prompt(samples)
    variants = samples_variants(samples)
    if variants:  # the prompts are the variants' ("variants" is no prompt of its own)
        prompt = template = None
    return {
        "grader": one_grader[0] if len(one_grader) == 1 else None,
        "prompt": prompt,
        "prompt_template": template if prompt is not None and prompt.startswith("file:") else None,
        "strategy": one_strategy[0] if len(one_strategy) == 1 else None,
        **({"prompt_variants": variants} if variants else {}),
    }


def recorded_prices(info: Mapping[str, Any], policy_json: Path) -> dict[str, Any] | None:
    """The price table (``PriceTable.to_json``) the policy's costs were counted with: its own
    ``prices`` field when policy.json carries one, else the ``prices`` its curves recorded in
    their provenance (``estimate``'s params), when those curves are still there unchanged; None
    when neither is known."""
    own = info.get("prices")
    if isinstance(own, dict):
        return own
    prov = info.get("provenance")
    if not isinstance(prov, Mapping):
        return None
    try:
        curves = recorded_input(prov, "curves", Path(policy_json), "--prices")
        if curves is None:
            return None
        params = read_meta(parquet_files(curves)[0]).get("params") or {}
    except (ArtifactError, OSError, IndexError):
        return None
    table = params.get("prices")
    return table if isinstance(table, dict) else None
