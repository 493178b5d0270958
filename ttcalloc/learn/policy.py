"""A trained allocation policy: features -> scores -> the action under the calibrated budget.

``Policy.load(path).choose(question)`` is the deployment API: no model call, a few microseconds
of feature extraction and one XGBoost prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.artifacts.policy_file import read_policy_file
from ttcalloc.common.errors import ArtifactError
from ttcalloc.core.oracle import lagrangian_choice
from ttcalloc.learn import features as feats
from ttcalloc.learn.adaptive import LEARNER as LEARNER_STOP
from ttcalloc.learn.adaptive import AdaptivePolicy, known_features
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.learn.learners import Model, Shrunk, load_model

if TYPE_CHECKING:
    import polars as pl


def decide(scores: np.ndarray, costs: np.ndarray, mu: float) -> np.ndarray:
    """``argmax_a scores - mu * cost(a)`` per row (ties to the cheaper action).

    The oracle's Lagrangian rule, with the policy's scores for accuracies and one cost per action.
    """
    return lagrangian_choice(scores, np.broadcast_to(costs, scores.shape), mu)


def calibrate(
    scores: np.ndarray, mean_costs: np.ndarray, cost: np.ndarray, budget: float, iters: int = 100
) -> float:
    """Smallest mu whose choices' mean per-problem cost is within the budget (bisection)."""
    rows = np.arange(scores.shape[0])

    def spent(mu: float) -> float:
        return float(cost[rows, decide(scores, mean_costs, mu)].mean())

    finite = scores[np.isfinite(scores)]  # unavailable actions score -inf
    spread = float(finite.max() - finite.min()) + 1.0 if finite.size else 1.0
    step = float(np.diff(np.unique(mean_costs)).min()) if np.unique(mean_costs).size > 1 else 1.0
    hi = spread / step * 4
    lo = -hi
    if spent(lo) <= budget:
        return lo  # even the costliest choices fit: the budget is slack
    if spent(hi) > budget:
        return hi  # cannot get cheaper than the cheapest action
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if spent(mid) <= budget:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass
class Policy:
    """Actions with their mean costs, the features, the fitted model and the multiplier mu."""

    actions: list[str]
    costs: np.ndarray
    feature_names: list[str]
    subjects: list[str] | None
    learner: str
    mu: float
    model: Model
    info: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Load a policy folder written by ``ttcalloc train``, every field and model checked."""
        folder = Path(path)
        meta = read_policy_file(folder)
        if meta["learner"] == LEARNER_STOP:
            raise ArtifactError(
                f"{folder}: an adaptive (stop) policy decides while sampling, not one action per "
                "question; load it with ttcalloc.learn.policy.load_policy or AdaptivePolicy.load"
            )
        return cls.from_meta(folder, meta)

    @classmethod
    def from_meta(cls, folder: Path, meta: dict[str, Any]) -> Policy:
        """A static policy from its checked policy.json (:func:`read_policy_file`)."""
        actions = [str(a["name"]) for a in meta["actions"]]
        costs = np.array([float(a["cost"]) for a in meta["actions"]])
        names = [str(n) for n in meta["features"]]
        known_features(names, folder)
        subjects = meta.get("subjects")
        # a fold ensemble lists its files per fold; a policy folder from before it, one model
        files = meta.get("model_folds") or list(meta["model_files"])
        combine = str(meta.get("model_combine", "route"))
        columns = [*names, *(["subject"] if subjects is not None else [])]
        model = load_model(
            meta["learner"], folder, files, len(actions), combine, len(columns), columns
        )
        shrinkage = meta.get("shrinkage")
        if shrinkage is not None:
            weight = shrinkage["weight"]
            model = Shrunk(
                model,
                np.array(shrinkage["target"], dtype=float),
                float("inf") if weight is None else float(weight),
            )
        return cls(actions, costs, names, subjects, meta["learner"], float(meta["mu"]), model, meta)

    def _features(self) -> list[feats.Feature]:
        return feats.by_names(self.feature_names)

    def matrix(
        self, questions: Sequence[str], metas: Sequence[Mapping[str, Any]] | None = None
    ) -> np.ndarray:
        metas = metas if metas is not None else [{}] * len(questions)
        return feats.matrix(self._features(), list(questions), list(metas), self.subjects)

    def metas(self, problems: pl.DataFrame, source: Path) -> list[dict[str, Any]]:
        """Each problem's metadata for the features; fails when the policy needs what is absent."""
        return feats.problem_metas(self.feature_names, self.subjects, problems, source)

    def scores(
        self, questions: Sequence[str], metas: Sequence[Mapping[str, Any]] | None = None
    ) -> np.ndarray:
        """The model's score of every action for each question."""
        return self.model.scores(self.matrix(questions, metas))

    def choose_many(
        self,
        questions: Sequence[str],
        metas: Sequence[Mapping[str, Any]] | None = None,
        mu: float | None = None,
    ) -> list[str]:
        """The action for each question (with the trained multiplier unless ``mu`` is given)."""
        mu = self.mu if mu is None else mu
        idx = decide(self.scores(questions, metas), self.costs, mu)
        return [self.actions[i] for i in idx]

    def calibrated_mu(
        self,
        questions: Sequence[str],
        budget: float,
        metas: Sequence[Mapping[str, Any]] | None = None,
    ) -> float:
        """The multiplier that makes this batch's expected mean cost meet ``budget``.

        Label-free: only the questions and the policy's own action costs are used, so it may be
        computed on the very batch being allocated (transductive calibration).
        """
        scores = self.scores(questions, metas)
        return calibrate(scores, self.costs, np.broadcast_to(self.costs, scores.shape), budget)

    def choose(self, question: str, **meta: Any) -> str:
        """The action for one question (metadata such as ``level=3`` when the policy uses it)."""
        return self.choose_many([question], [meta])[0]

    def expected_cost(self, action: str) -> float:
        return float(self.costs[self.actions.index(action)])


def load_policy(path: str | Path) -> Policy | AdaptivePolicy | CascadePolicy:
    """Load any policy folder: a static one (:class:`Policy`) or an adaptive one (``stop``)."""
    folder = Path(path)
    if _learner(folder) == "cascade":
        return CascadePolicy.load(folder)
    meta = read_policy_file(folder)
    if meta["learner"] == LEARNER_STOP:
        return AdaptivePolicy.from_meta(folder, meta)
    return Policy.from_meta(folder, meta)


def _learner(folder: Path) -> str | None:
    """policy.json's learner, read without checking the rest (the loaders check it all)."""
    import json

    try:
        data = json.loads((folder / "policy.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the loader says what is wrong
    learner = data.get("learner") if isinstance(data, dict) else None
    return learner if isinstance(learner, str) else None
