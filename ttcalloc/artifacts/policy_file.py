"""policy.json checked field by field, and the policy folder's model files confined to it.

A policy folder is an input like any other: it may be damaged, hand-edited or hostile.  Every
field a loader uses is checked for its type and range (a NaN ``mu`` or an empty action list is a
one-line error, not a silently wrong plan), and every model file must be a plain file name that
resolves, symlinks followed, to a file inside the folder.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from ttcalloc.artifacts.answering import BUILTIN_PROMPTS
from ttcalloc.artifacts.io import read_json_artifact
from ttcalloc.artifacts.policy_rule import check_rule
from ttcalloc.artifacts.sample_replays import SAMPLE_VALUES
from ttcalloc.artifacts.schemas import POLICY
from ttcalloc.common.errors import ArtifactError, InputError
from ttcalloc.core.actions import action_models
from ttcalloc.core.actions import parse_action as parse_label
from ttcalloc.core.stopping import STATE_FEATURES
from ttcalloc.text.grading import GRADERS

STATIC_LEARNERS = ("imitate", "plugin")
STOP_LEARNER = "stop"
STRATEGIES = ("majority", "pass")
COST_UNITS = ("samples", "tokens", "completion-tokens", "usd")
UNKNOWN_UNIT = "unknown"  # trained on curves that recorded no unit
# the most samples any policy may ask for one question (an action's k, a stop policy's cap)
MAX_SAMPLES = 1024


def parse_action(name: str) -> tuple[str | None, str, int] | None:
    """``(model, strategy, k)`` of an action name (model None for ``maj@k``), or None when it
    is not one (:func:`ttcalloc.core.actions.parse_action`, whose rules these are)."""
    a = parse_label(name)
    return None if a is None else (a.model or None, a.strategy, a.k)


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
    unit = data.get("cost_unit")
    if unit is not None:  # absent in policies from before cost units (read as samples)
        c.choice("cost_unit", unit, (*COST_UNITS, UNKNOWN_UNIT))
    for key in ("metrics", "provenance"):
        if not isinstance(data.get(key), dict):
            raise c.fail(key, "expected an object")
    files = c.strings("model_files", data.get("model_files"), nonempty=True)
    for name in files:
        c.model_file("model_files", name)
    if learner == STOP_LEARNER:
        _check_adaptive(c, data.get("adaptive"), data)
        if unit == "tokens" and float(data["budget"]) < 2:  # one sample: a prompt and a reply
            raise c.fail(
                "budget",
                f"{data['budget']:g} tokens per question is less than one sample's least (a "
                "prompt token and a completion token): is it in samples, not tokens?",
            )
    else:
        _check_static(c, data, learner, files)
        _check_action_costs(c, data["actions"], str(unit or "samples"))
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
        action_samples(c, i, a["name"])
    if len({a["name"] for a in actions}) != len(actions):
        raise c.fail("actions", "has duplicate names")
    names = [a["name"] for a in actions]
    unnamed = [n for n in names if (a := parse_label(n)) is None or not a.model]
    if action_models(names) and unnamed:
        raise c.fail("actions", "mixes actions with a model (MODEL:maj@k) and without")
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


def action_samples(c: _Checker, i: int, name: str) -> int:
    """The k of action ``name`` (``maj@k`` or ``pass@k``, prefixed by ``MODEL:`` when the curves
    span several models; 1 <= k <= MAX_SAMPLES)."""
    parsed = parse_label(name)
    if parsed is None or parse_action(name) is None:
        raise c.fail(
            f"actions[{i}].name",
            f"{name!r}: expected maj@k or pass@k, or MODEL:maj@k (a model name without control "
            "characters)",
        )
    k = parsed.k
    if k > MAX_SAMPLES:
        raise c.fail(f"actions[{i}].name", f"{name!r}: more than {MAX_SAMPLES} samples")
    return k


def _check_action_costs(c: _Checker, actions: list[dict[str, Any]], unit: str) -> None:
    """Each model's actions' mean costs against their k (:func:`_check_model_costs`): models'
    prices differ (20-60x), so the actions of one model are compared with each other only."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for a in actions:
        parsed = parse_action(a["name"])
        groups.setdefault(parsed[0] if parsed else None, []).append(a)
    for group in groups.values():
        _check_model_costs(c, group, unit, [actions.index(a) for a in group])


def _check_model_costs(
    c: _Checker, actions: list[dict[str, Any]], unit: str, where: list[int]
) -> None:
    """The mean costs of one model's actions against their k (a renamed action is caught by
    its cost); ``where``: their indices in the policy's actions (for the error).

    samples: exactly k.  Every other unit: more samples never cost less.  completion-tokens and
    usd (a sample's cost does not depend on k): the cost per sample within a factor 2 of the
    cheapest action's (the actions' problem sets may differ).  tokens (``--prompt-once`` may
    charge the prompt once per k): never more than twice k samples at the cheapest action's
    cost per sample, at least one token per extra sample (a completion has one), and at least
    k + 1 (a prompt token too: costs of k are sample counts labelled tokens).  Actions
    of several models (``MODEL:maj@k``) are checked model by model (prices differ).
    """
    members = where
    ks = [action_samples(c, i, a["name"]) for i, a in zip(members, actions, strict=True)]
    costs = [float(a["cost"]) for a in actions]

    def fail(i: int, why: str) -> ArtifactError:
        return c.fail(
            f"actions[{members[i]}]", f"{actions[i]['name']} costs {costs[i]:g} {unit}: {why}"
        )

    if unit == "samples":
        for i, k in enumerate(ks):
            if abs(costs[i] - k) > 1e-6 * k:
                raise fail(i, f"expected {k} (one per sample)")
        return
    order = sorted(range(len(ks)), key=lambda i: (ks[i], costs[i]))
    base = order[0]
    each = costs[base] / ks[base]
    for lo, hi in itertools.pairwise(order):
        if ks[hi] == ks[lo]:
            raise fail(hi, f"the same k as {actions[lo]['name']}")
        extra = (costs[hi] - costs[lo]) / (ks[hi] - ks[lo])
        if extra < 0:
            raise fail(hi, f"less than {actions[lo]['name']}'s {costs[lo]:g}, with more samples")
        if unit == "tokens" and extra < 1:
            raise fail(
                hi,
                f"only {extra:.3g} per extra sample over {actions[lo]['name']} (a sample costs "
                "at least 1 token)",
            )
    for i, k in enumerate(ks):
        if unit == "tokens" and costs[i] < k + 1:
            raise fail(
                i,
                f"expected at least {k + 1} (a prompt token, and a completion token per "
                "sample): are the costs sample counts, not tokens?",
            )
    if unit not in ("tokens", "completion-tokens", "usd"):
        return
    for i in order[1:]:
        per = costs[i] / ks[i]
        low = 0.0 if unit == "tokens" else each / 2
        if not low <= per <= 2 * each:
            raise fail(
                i,
                f"{per:.4g} per sample, where {actions[base]['name']} costs {each:.4g} per sample "
                f"(expected {low:.4g} to {2 * each:.4g})",
            )


def _check_adaptive(c: _Checker, ad: Any, data: dict[str, Any]) -> None:
    if not isinstance(ad, dict):
        raise c.fail("adaptive", "expected an object (cap, checkpoints, strategy, prices)")
    cap = c.integer("adaptive.cap", ad.get("cap"), 1)
    if cap > MAX_SAMPLES:
        raise c.fail("adaptive.cap", f"{cap}: more than {MAX_SAMPLES} samples per question")
    metrics = data.get("metrics")
    trained = metrics.get("cap") if isinstance(metrics, dict) else None
    if trained is not None and trained != cap:
        raise c.fail(
            "adaptive.cap", f"{cap}, but the policy was trained to {trained!r} (metrics.cap)"
        )
    checkpoints = ad.get("checkpoints")
    if not isinstance(checkpoints, list) or not checkpoints:
        raise c.fail("adaptive.checkpoints", "expected a non-empty list of sample counts")
    for i, k in enumerate(checkpoints):
        c.integer(f"adaptive.checkpoints[{i}]", k, 1)
    if checkpoints != sorted(set(checkpoints)) or checkpoints[-1] != cap:
        raise c.fail("adaptive.checkpoints", f"{checkpoints}: expected increasing, ending at {cap}")
    c.choice("adaptive.strategy", ad.get("strategy"), STRATEGIES)
    values = c.strings("adaptive.sample_values", ad.get("sample_values", []))
    for v in values:
        c.choice("adaptive.sample_values", v, tuple(SAMPLE_VALUES))
    if values != [v for v in SAMPLE_VALUES if v in values]:
        order = list(SAMPLE_VALUES)
        raise c.fail("adaptive.sample_values", f"{values}: expected in the order {order}")
    state = data.get("state_features")
    expected = [*STATE_FEATURES, *(f"mean_{v}" for v in values)]
    if state is not None and c.strings("state_features", state) != expected:
        raise c.fail(
            "state_features", f"{state}: expected {expected} (the state this version builds)"[:300]
        )
    lo = c.number("adaptive.lambda_lo", ad.get("lambda_lo"), low=0.0)
    if ad.get("lambda_hi") is not None:
        c.number("adaptive.lambda_hi", ad["lambda_hi"], low=lo)
    c.number("adaptive.p_lo", ad.get("p_lo"), low=0.0, high=1.0)
    if not isinstance(ad.get("slack", False), bool):
        raise c.fail("adaptive.slack", "expected true or false")


def read_policy_file(folder: Path) -> dict[str, Any]:
    """policy.json of a policy folder, every field checked (:func:`check_policy`)."""
    path = Path(folder) / "policy.json"
    refuse_budget_folders(Path(folder))
    data = read_json_artifact(path, POLICY)
    if data.get("learner") == CASCADE_LEARNER:
        raise InputError(
            f"{folder}: a cascade policy (train --learner cascade) decides while it samples, so "
            "it has no plan: answer with `ttcalloc run`, score it with `ttcalloc evaluate`"
        )
    return check_policy(data, path)


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


CASCADE_LEARNER = "cascade"


def read_cascade_policy(folder: Path) -> dict[str, Any]:
    """policy.json of a cascade policy (``train --learner cascade``), every field checked: the
    models (distinct names), a cap of 1..MAX_SAMPLES per model, checkpoints, one mean dollar cost
    per model, prices and mixing weight in range, model files inside the folder."""
    path = Path(folder) / "policy.json"
    data = read_json_artifact(path, POLICY)
    c = _Checker(path, data)
    c.choice("learner", data.get("learner"), (CASCADE_LEARNER,))
    c.number("budget", data.get("budget"), positive=True)
    c.choice("cost_unit", data.get("cost_unit"), ("usd",))
    c.strings("features", data.get("features"))
    cas = data.get("cascade")
    if not isinstance(cas, dict):
        raise c.fail("cascade", "expected an object")
    models = c.strings("cascade.models", cas.get("models"), nonempty=True)
    for key in ("caps", "checkpoints", "unit_cost_usd"):
        if not isinstance(cas.get(key), list):
            raise c.fail(f"cascade.{key}", f"expected a list, found {cas.get(key)!r}"[:200])
    if len(cas["caps"]) != len(models) or len(cas["unit_cost_usd"]) != len(models):
        raise c.fail("cascade", "caps and unit_cost_usd need one entry per model")
    for i, cap in enumerate(cas["caps"]):
        c.integer(f"cascade.caps[{i}]", cap, 1)
        if cap > MAX_SAMPLES:
            raise c.fail(f"cascade.caps[{i}]", f"{cap} is above {MAX_SAMPLES}")
    for i, h in enumerate(cas["checkpoints"]):
        c.integer(f"cascade.checkpoints[{i}]", h, 1)
    for i, u in enumerate(cas["unit_cost_usd"]):
        c.number(f"cascade.unit_cost_usd[{i}]", u, low=0.0)
    if "escalate_after" in cas:
        c.integer("cascade.escalate_after", cas["escalate_after"], 1)
    if not isinstance(cas.get("prompt_kinds", False), bool):
        raise c.fail(
            "cascade.prompt_kinds", f"expected true or false, found {cas['prompt_kinds']!r}"[:200]
        )
    if not isinstance(cas.get("pace_ratio", []), list):
        raise c.fail("cascade.pace_ratio", f"expected a list, found {cas['pace_ratio']!r}"[:200])
    for i, x in enumerate(cas.get("pace_ratio", [])):
        c.number(f"cascade.pace_ratio[{i}]", x, positive=True)
    lo = c.number("cascade.lambda_lo", cas.get("lambda_lo"), low=0.0)
    if cas.get("lambda_hi") is not None:
        hi = c.number("cascade.lambda_hi", cas.get("lambda_hi"), low=0.0)
        if hi < lo:
            raise c.fail("cascade.lambda_hi", f"{hi:g} is below lambda_lo {lo:g}")
    c.number("cascade.p_lo", cas.get("p_lo"), low=0.0, high=1.0)
    rule = cas.get("rule")
    files = c.strings("model_files", data.get("model_files"), nonempty=rule is None)
    for i, name in enumerate(files):
        c.model_file(f"model_files[{i}]", name)
    if rule is not None:
        check_rule(c, rule, cas["caps"], files)
    return data
