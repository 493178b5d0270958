"""``ttcalloc allocate``: the deployment step: a trained policy's action for each new problem."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ttcalloc.artifacts.io import check_output, read_artifact, write_artifact
from ttcalloc.artifacts.policy_file import STOP_LEARNER, read_policy_file
from ttcalloc.artifacts.schemas import PLAN, PROBLEMS
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.learn.policy import Policy


@dataclass(frozen=True)
class AllocateResult:
    out: Path
    problems: int
    expected_cost: float
    budget: float
    cost_unit: str
    actions: dict[str, int]
    mu: float
    recalibrated: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"out": str(self.out)}


def allocate(
    policy_path: Path,
    problems_path: Path,
    out: Path,
    budget: float | None = None,
    split: str | None = None,
) -> AllocateResult:
    """Choose an action for every problem with a trained policy and write ``plan.parquet``.

    Args:
        policy_path: policy folder from ``ttcalloc train``.
        problems_path: problems to allocate (any split; no samples needed).
        out: where to write the plan.
        budget: recalibrate the policy's multiplier on these problems so that their expected
            mean cost meets this budget (label-free); default: the multiplier from training.
        split: only the problems of this split (e.g. ``test``); default: all.

    Returns:
        An :class:`AllocateResult` with the expected mean cost and the action counts.
    """
    import polars as pl

    check_output(out, {"policy": policy_path, "problems": problems_path})
    info = read_policy_file(Path(policy_path))
    if info["learner"] == STOP_LEARNER:
        b = f"{budget:g}" if budget is not None else f"{float(info['budget']):g}"
        raise InputError(
            f"{policy_path}: an adaptive (stop) policy decides while it samples, so it has no "
            f"plan of one action per question; answer the questions with it instead: ttcalloc "
            f"run {policy_path} {problems_path} --model MODEL --budget {b} --out answers.parquet"
        )
    policy = Policy.load(policy_path)
    problems = read_artifact(problems_path, PROBLEMS).df
    if split is not None:
        if "split" not in problems.columns:
            raise InputError(f"--split {split}: {problems_path} has no split column")
        problems = problems.filter(pl.col("split") == split)
    if problems.height == 0:
        where = f" in split {split!r}" if split is not None else ""
        raise DataError(f"{problems_path}: no problems{where}")
    metas = policy.metas(problems, Path(problems_path))
    questions = problems["question"].to_list()
    if budget is not None and (not math.isfinite(budget) or budget < float(policy.costs.min())):
        raise InputError(
            f"--budget {budget:g}: below the cheapest action's cost {policy.costs.min():g}"
        )
    mu = policy.mu if budget is None else policy.calibrated_mu(questions, budget, metas)
    chosen = policy.choose_many(questions, metas, mu)
    cost = [policy.expected_cost(a) for a in chosen]
    plan = pl.DataFrame({"problem_id": problems["problem_id"], "action": chosen, "cost": cost})
    write_artifact(
        plan,
        out,
        PLAN,
        stage="allocate",
        params={"policy": str(policy_path), "budget": budget, "mu": mu, "split": split},
        inputs={"policy": Path(policy_path) / "policy.json", "problems": Path(problems_path)},
        extra_meta={"cost_unit": policy.info.get("cost_unit")},
    )
    return AllocateResult(
        out=Path(out),
        problems=plan.height,
        expected_cost=float(sum(cost) / len(cost)),
        budget=float(policy.info["budget"]) if budget is None else budget,
        cost_unit=str(policy.info.get("cost_unit")),
        actions=dict(Counter(chosen).most_common()),
        mu=mu,
        recalibrated=budget is not None,
    )
