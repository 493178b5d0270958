"""What ``run`` knows about each question: the samples it received (:class:`Got`), what it
has drawn and decided (:class:`Item`), and a sample's cost in the policy's unit."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ttcalloc.text import grading


@dataclass
class Got:
    """One sample received: its raw answer, vote label, cost in the policy's unit, values,
    its dollars (None: unknown), and the kind of prompt it was drawn with (text or program)."""

    pred: str | None
    label: str | None
    cost: float
    values: dict[str, float]
    usd: float | None = None
    kind: str = "text"


@dataclass
class Item:
    """One question and what has been drawn for it."""

    problem: dict[str, Any]  # problem_id, question, answer, grader (+ metadata)
    meta: dict[str, Any]
    got: dict[int, Got] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)  # failed in this run
    inflight: int = 0
    inflight_n: int = 0  # samples in flight
    drawn_here: int = 0  # samples received in this run
    queued: int = 0
    started: bool = False
    finished: bool = False
    cut: bool = False  # the hard budget or a stop kept it from what its policy wanted
    action: str = ""
    used: list[int] = field(default_factory=list)  # sample indices its answer uses
    model: str | None = None  # several models: the model its action draws from
    held: dict[str, dict[int, Got]] = field(default_factory=dict)  # several models: by model
    # a cascade: the samples of the models it left, paid for but not voting in the answer
    earlier: list[Got] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pid(self) -> str:
        return str(self.problem["problem_id"])

    def cost(self) -> float:
        return sum(self.got[i].cost for i in self.used if i in self.got) + sum(
            g.cost for g in self.earlier
        )


def sample_cost(row: Mapping[str, Any], unit: str) -> float:
    """A received sample's cost in ``unit`` (as ``estimate`` counts it)."""
    if unit == "samples":
        return 1.0
    completion = float(row.get("completion_tokens") or 0)
    if unit == "completion-tokens":
        return completion
    if unit == "usd":
        return float(row.get("cost_usd") or 0.0)
    return completion + float(row.get("prompt_tokens") or 0)


def to_got(row: Mapping[str, Any], grader: str, unit: str) -> Got:
    pred = row.get("pred_answer")
    chars = row.get("completion_chars")
    if chars is None and row.get("response") is not None:
        chars = len(row["response"])
    values = {
        k: float(v)
        for k, v in {
            "tokens": row.get("completion_tokens"),
            "chars": chars,
            "mean_logprob": row.get("mean_logprob"),
        }.items()
        if v is not None
    }
    label = grading.normalize(pred, grader) if pred is not None else None  # type: ignore[arg-type]
    usd = row.get("cost_usd")
    kind = "program" if row.get("answer_from") == "program" else "text"
    return Got(
        pred, label, sample_cost(row, unit), values, None if usd is None else float(usd), kind
    )


def decisions_json(item: Item) -> str:
    return json.dumps(item.decisions, separators=(",", ":"))
