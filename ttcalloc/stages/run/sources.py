"""The source of a policy of each kind: the one place ``run`` (a file of questions) and
``serve`` (a window of requests) turn a loaded policy into the decisions it draws by."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ttcalloc.artifacts.policy_file import parse_action
from ttcalloc.core.vote import Ledger
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.stages.run.adaptive_driver import AdaptiveDriver
from ttcalloc.stages.run.cascade_driver import CascadeDriver
from ttcalloc.stages.run.driver import Driver
from ttcalloc.stages.run.items import Item
from ttcalloc.stages.run.kinds import AnyPolicy, draw_limit, policy_ks
from ttcalloc.stages.run.options import RunOptions
from ttcalloc.stages.run.static_driver import StaticDriver

if TYPE_CHECKING:
    import polars as pl


def make_driver(
    policy: AnyPolicy,
    items: list[Item],
    questions: pl.DataFrame,
    options: RunOptions,
    template: str | None,
    per_request: int,
    unit: str,
    ledger: Ledger | None,
    worst: dict[str, float] | None = None,
    pace_first: bool = False,
) -> Driver:
    """The source that draws what ``policy`` decides for ``items`` at ``options.budget`` mean
    cost per question (``run`` for a file of questions, ``serve`` for a window of requests;
    ``pace_first``: a cascade paces its first round to the budget too, as ``serve`` does)."""
    kw: dict[str, Any] = {
        "items": items,
        "options": options.sample,
        "template": template,
        "per_request": per_request,
        "unit": unit,
        "budget": options.budget,
        "ledger": ledger,
        "limit": draw_limit(policy),
    }
    if isinstance(policy, CascadePolicy):
        hard = options.budget * len(items) if options.hard_budget else None
        return CascadeDriver(
            policy, worst=worst, hard_total=hard, pace=options.pace, pace_first=pace_first, **kw
        )
    if isinstance(policy, AdaptivePolicy):
        return AdaptiveDriver(policy, **kw)
    ks, _ = policy_ks(policy)
    texts = [it.problem["question"] for it in items]
    metas = [it.meta for it in items]
    scores = policy.scores(texts, metas)
    mu = policy.calibrated_mu(texts, options.budget, metas)
    models = [parse_action(a)[0] for a in policy.actions]  # type: ignore[index]
    if not any(models):
        return StaticDriver(policy, scores, mu, ks, **kw)
    return StaticDriver(policy, scores, mu, ks, models=models, **kw)
