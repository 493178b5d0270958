"""policy.json's ``cascade.rule`` checked field by field: a rule written as a cascade's gains."""

from __future__ import annotations

from typing import Any, Protocol


class Checker(Protocol):
    """What ``policy_file``'s checker offers (one-line errors naming the file and field)."""

    def fail(self, key: str, what: str) -> Exception: ...
    def integer(self, key: str, value: Any, low: int) -> int: ...
    def choice(self, key: str, value: Any, allowed: tuple[str, ...]) -> str: ...
    def number(
        self,
        key: str,
        value: Any,
        *,
        low: float | None = None,
        high: float = ...,
        positive: bool = False,
    ) -> float: ...


def check_rule(c: Checker, rule: Any, caps: list[Any], files: list[str]) -> None:
    """``cascade.rule``, a rule written as gains (``core.cascade_rule``): the MoT rule (``k``
    samples of model ``first``, then one of a later model ``then``; ``k`` its cap) or one model's
    uniform allocation (``model``; its hull ``ks``, rising from 1, and ``accs``; the last ``k``
    its cap; ``flat_dollars``, since 2026-12-05: it weighs a sample at the model's mean dollars,
    absent in older policies, which weighed it at the question's own); no model files."""
    if not isinstance(rule, dict):
        raise c.fail("cascade.rule", f"expected an object, found {rule!r}"[:200])
    kind = c.choice("cascade.rule.kind", rule.get("kind"), ("mot", "single"))
    if files:
        raise c.fail("model_files", "a rule has no model files")
    if kind == "single":
        model = _level(c, "model", rule.get("model"), caps)
        ks, accs = rule.get("ks"), rule.get("accs")
        if not isinstance(ks, list) or not isinstance(accs, list) or len(ks) != len(accs):
            raise c.fail("cascade.rule.ks", "expected two lists of one length: ks and accs")
        for i, (k, a) in enumerate(zip(ks, accs, strict=True)):
            c.integer(f"cascade.rule.ks[{i}]", k, 1 if i == 0 else ks[i - 1] + 1)
            c.number(f"cascade.rule.accs[{i}]", a, low=0.0, high=1.0)
        if not ks or ks[0] != 1 or ks[-1] != caps[model]:
            raise c.fail("cascade.rule.ks", f"must rise from 1 to the cap of model {model}")
        if not isinstance(rule.get("flat_dollars", False), bool):
            raise c.fail("cascade.rule.flat_dollars", "expected true or false")
        return
    first = _level(c, "first", rule.get("first"), caps)
    then = _level(c, "then", rule.get("then"), caps)
    if then <= first:  # a cascade escalates to later models only
        raise c.fail("cascade.rule.then", f"{then} must be a later model than first ({first})")
    k = c.integer("cascade.rule.k", rule.get("k"), 1)
    if k != caps[first]:
        raise c.fail("cascade.rule.k", f"{k} is not the cap of model {first} ({caps[first]})")


def _level(c: Checker, key: str, value: Any, caps: list[Any]) -> int:
    level = c.integer(f"cascade.rule.{key}", value, 0)
    if level >= len(caps):
        raise c.fail(f"cascade.rule.{key}", f"{level} is not a level of {len(caps)} models")
    return level
