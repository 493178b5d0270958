"""policy.json checked field by field, and the policy folder's model files confined to it.

A policy folder is an input like any other: it may be damaged, hand-edited or hostile.  Every
field a loader uses is checked for its type and range (a NaN ``mu`` or an empty action list is a
one-line error, not a silently wrong plan), and every model file must be a plain file name that
resolves, symlinks followed, to a file inside the folder.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ttcalloc.artifacts.answering import BUILTIN_PROMPTS
from ttcalloc.artifacts.io import read_json_artifact
from ttcalloc.artifacts.schemas import POLICY
from ttcalloc.common.errors import ArtifactError, InputError
from ttcalloc.text.grading import GRADERS

STATIC_LEARNERS = ("imitate", "plugin")
STOP_LEARNER = "stop"
STRATEGIES = ("majority", "pass")


class _Checker:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data

    def fail(self, key: str, what: str) -> ArtifactError:
        return ArtifactError(f"{self.path}: {key}: {what}")

    def number(
        self,
        key: str,
        value: Any,
        *,
        low: float | None = None,
        high: float = math.inf,
        positive: bool = False,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, found {value!r}")
        x = float(value)
        if not math.isfinite(x):
            raise self.fail(key, f"{value!r} is not a finite number")
        if positive and x <= 0:
            raise self.fail(key, f"{x:g} must be positive")
        if (low is not None and x < low) or x > high:
            raise self.fail(key, f"{x:g} is outside [{low:g}, {high:g}]")
        return x

    def integer(self, key: str, value: Any, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(key, f"expected an integer >= {low}, found {value!r}")
        return value

    def strings(self, key: str, value: Any, *, nonempty: bool = False) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"expected a list of strings, found {value!r}"[:200])
        if nonempty and not value:
            raise self.fail(key, "is empty")
        if len(set(value)) != len(value):
            raise self.fail(key, "has duplicates")
        return value

    def choice(self, key: str, value: Any, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            raise self.fail(key, f"{value!r}: expected one of {', '.join(allowed)}")
        return str(value)

    def model_file(self, key: str, name: str) -> None:
        folder = self.path.parent
        if name in ("", ".", "..") or Path(name).name != name or "\\" in name:
            raise self.fail(key, f"{name!r} is not a plain file name in the policy folder")
        resolved = (folder / name).resolve()
        if resolved.parent != folder.resolve():
            raise self.fail(key, f"{name!r} leads outside the policy folder (to {resolved})")
        if not resolved.is_file():
            raise self.fail(key, f"{name!r} is not a file in {folder}")


def check_policy(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Check every field of a policy.json read from ``path``; return ``data`` unchanged."""
    c = _Checker(Path(path), data)
    learner = c.choice("learner", data.get("learner"), (*STATIC_LEARNERS, STOP_LEARNER))
    c.number("budget", data.get("budget"), positive=True)
    c.strings("features", data.get("features"))
    subjects = data.get("subjects")
    if subjects is not None:
        c.strings("subjects", subjects)
    if not isinstance(data.get("cost_unit", ""), str):
        raise c.fail("cost_unit", f"expected a string, found {data.get('cost_unit')!r}")
    for key in ("metrics", "provenance"):
        if not isinstance(data.get(key), dict):
            raise c.fail(key, "expected an object")
    files = c.strings("model_files", data.get("model_files"), nonempty=True)
    for name in files:
        c.model_file("model_files", name)
    if learner == STOP_LEARNER:
        _check_adaptive(c, data.get("adaptive"))
    else:
        _check_static(c, data, learner, files)
    _check_answering(c, data, learner)
    return data


def _check_answering(c: _Checker, data: dict[str, Any], learner: str) -> None:
    """grader, prompt, prompt_template, strategy: each absent/null (older policies) or valid."""
    grader = data.get("grader")
    if grader is not None:
        c.choice("grader", grader, GRADERS)
    prompt = data.get("prompt")
    if prompt is not None and not (
        isinstance(prompt, str) and (prompt in BUILTIN_PROMPTS or prompt.startswith("file:"))
    ):
        raise c.fail("prompt", f"{prompt!r}: expected auto, numeric, math, exact or file:...")
    template = data.get("prompt_template")
    if template is not None:
        if not isinstance(template, str) or "{question}" not in template:
            raise c.fail("prompt_template", "expected a template text with {question}")
        try:
            template.format(question="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise c.fail("prompt_template", f"not a template ({exc})") from None
    strategy = data.get("strategy")
    if strategy is not None:
        c.choice("strategy", strategy, STRATEGIES)
        adaptive = data.get("adaptive") or {}
        if learner == STOP_LEARNER and strategy != adaptive.get("strategy"):
            raise c.fail("strategy", f"{strategy!r} differs from adaptive.strategy")


def _check_static(c: _Checker, data: dict[str, Any], learner: str, files: list[str]) -> None:
    actions = data.get("actions")
    if not isinstance(actions, list) or not actions:
        raise c.fail("actions", "expected a non-empty list of {name, cost}")
    for i, a in enumerate(actions):
        if not isinstance(a, dict) or not isinstance(a.get("name"), str) or not a["name"]:
            raise c.fail(f"actions[{i}]", f"expected {{name, cost}}, found {a!r}"[:200])
        c.number(f"actions[{i}].cost", a.get("cost"), low=0.0)
    if len({a["name"] for a in actions}) != len(actions):
        raise c.fail("actions", "has duplicate names")
    c.number("mu", data.get("mu"))
    per_model = 1 if learner == "imitate" else len(actions)
    folds = data.get("model_folds")
    groups = [files] if folds is None else folds
    if not isinstance(groups, list) or not groups:
        raise c.fail("model_folds", "expected a non-empty list of lists of file names")
    for k, group in enumerate(groups):
        names = c.strings(f"model_folds[{k}]", group, nonempty=True)
        if len(names) != per_model:
            raise c.fail(
                f"model_folds[{k}]" if folds is not None else "model_files",
                f"{len(names)} model file(s); a {learner} policy of {len(actions)} actions has "
                f"{per_model} per model (does the learner match the model?)",
            )
        for name in names:
            c.model_file(f"model_folds[{k}]", name)
    c.choice("model_combine", data.get("model_combine", "route"), ("route", "mean"))
    shrinkage = data.get("shrinkage")
    if shrinkage is not None:
        if not isinstance(shrinkage, dict):
            raise c.fail("shrinkage", "expected an object")
        if shrinkage.get("weight") is not None:
            c.number("shrinkage.weight", shrinkage["weight"], low=0.0)
        target = shrinkage.get("target")
        if not isinstance(target, list) or len(target) != len(actions):
            raise c.fail("shrinkage.target", f"expected {len(actions)} numbers, one per action")
        for i, t in enumerate(target):
            c.number(f"shrinkage.target[{i}]", t)


def _check_adaptive(c: _Checker, ad: Any) -> None:
    if not isinstance(ad, dict):
        raise c.fail("adaptive", "expected an object (cap, checkpoints, strategy, prices)")
    cap = c.integer("adaptive.cap", ad.get("cap"), 1)
    checkpoints = ad.get("checkpoints")
    if not isinstance(checkpoints, list) or not checkpoints:
        raise c.fail("adaptive.checkpoints", "expected a non-empty list of sample counts")
    for i, k in enumerate(checkpoints):
        c.integer(f"adaptive.checkpoints[{i}]", k, 1)
    if checkpoints != sorted(set(checkpoints)) or checkpoints[-1] > cap:
        raise c.fail("adaptive.checkpoints", f"{checkpoints}: expected increasing, at most {cap}")
    c.choice("adaptive.strategy", ad.get("strategy"), STRATEGIES)
    c.strings("adaptive.sample_values", ad.get("sample_values", []))
    c.number("adaptive.lambda_lo", ad.get("lambda_lo"))
    if ad.get("lambda_hi") is not None:
        c.number("adaptive.lambda_hi", ad["lambda_hi"])
    c.number("adaptive.p_lo", ad.get("p_lo"), low=0.0, high=1.0)
    if not isinstance(ad.get("slack", False), bool):
        raise c.fail("adaptive.slack", "expected true or false")


def read_policy_file(folder: Path) -> dict[str, Any]:
    """policy.json of a policy folder, every field checked (:func:`check_policy`)."""
    path = Path(folder) / "policy.json"
    refuse_budget_folders(Path(folder))
    return check_policy(read_json_artifact(path, POLICY), path)


def refuse_budget_folders(folder: Path) -> None:
    """A folder of ``train --budgets`` (one policy folder per budget, no policy.json of its
    own) given where one policy is expected: one line naming the policy folders it holds."""
    if not folder.is_dir() or (folder / "policy.json").exists():
        return
    inside = sorted(f.name for f in folder.iterdir() if (f / "policy.json").is_file())
    if inside:
        raise InputError(
            f"{folder}: holds one policy folder per budget ({', '.join(inside)}), not one "
            f"policy; give those, e.g. {folder / inside[0]}"
        )
