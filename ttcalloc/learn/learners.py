"""Learners that turn cheap features into per-action scores, through one registry.

- ``imitate`` (the paper): an XGBoost multi-class classifier of the oracle's action; the score of
  an action is its log-probability.  ``weight="gap"`` weights each problem by its per-problem
  gap (best minus cheapest accuracy), so mistakes that cost accuracy count more.
- ``plugin``: one XGBoost regressor per action predicts the success probability p(a | x); the
  score is that prediction.

A policy picks ``argmax_a score(a | x) - mu * cost(a)``; ``mu`` is calibrated by the trainer.
Models are saved in XGBoost's own UBJ format, never pickled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class TrainData:
    """Training rows: features, oracle labels, per-action accuracies and per-problem gaps."""

    x: np.ndarray  # (P, F)
    label: np.ndarray  # (P,) oracle action index
    acc: np.ndarray  # (P, A) accuracy per action (NaN where unavailable)
    gap: np.ndarray  # (P,)
    n_actions: int


@dataclass(frozen=True)
class LearnerOptions:
    n_estimators: int = 200
    max_depth: int = 4
    learning_rate: float = 0.05
    weight: str = "none"  # or "gap" (imitate only)
    seed: int = 0


class Model(Protocol):
    def scores(self, x: np.ndarray) -> np.ndarray: ...
    def save(self, folder: Path) -> list[str]: ...


def _params(opts: LearnerOptions, **extra: Any) -> dict[str, Any]:
    return {
        "max_depth": opts.max_depth,
        "eta": opts.learning_rate,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "min_child_weight": 1.0,
        "tree_method": "hist",
        "seed": opts.seed,
        "nthread": 1,  # bit-for-bit deterministic
        "verbosity": 0,
        **extra,
    }


class ImitateModel:
    def __init__(self, booster: Any, n_actions: int) -> None:
        self.booster, self.n_actions = booster, n_actions

    def scores(self, x: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        prob = self.booster.predict(xgb.DMatrix(x)).reshape(x.shape[0], self.n_actions)
        out: np.ndarray = np.log(np.clip(prob, 1e-12, 1.0))
        return out

    def save(self, folder: Path) -> list[str]:
        from ttcalloc.artifacts.io import atomic_path

        with atomic_path(folder / "model.ubj") as tmp:
            self.booster.save_model(str(tmp.with_suffix(".ubj")))
            tmp.with_suffix(".ubj").replace(tmp)
        return ["model.ubj"]


class PluginModel:
    def __init__(self, boosters: list[Any]) -> None:
        self.boosters = boosters

    def scores(self, x: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        dm = xgb.DMatrix(x)
        return np.stack([b.predict(dm) for b in self.boosters], axis=1)

    def save(self, folder: Path) -> list[str]:
        from ttcalloc.artifacts.io import atomic_path

        names = []
        for j, booster in enumerate(self.boosters):
            name = f"model-{j}.ubj"
            with atomic_path(folder / name) as tmp:
                booster.save_model(str(tmp.with_suffix(".ubj")))
                tmp.with_suffix(".ubj").replace(tmp)
            names.append(name)
        return names


def fit_imitate(data: TrainData, opts: LearnerOptions) -> Model:
    import xgboost as xgb

    weight = data.gap + 1e-3 if opts.weight == "gap" else None
    dm = xgb.DMatrix(data.x, label=data.label, weight=weight)
    params = _params(opts, objective="multi:softprob", num_class=data.n_actions)
    return ImitateModel(xgb.train(params, dm, num_boost_round=opts.n_estimators), data.n_actions)


def fit_plugin(data: TrainData, opts: LearnerOptions) -> Model:
    import xgboost as xgb

    boosters = []
    for j in range(data.n_actions):
        ok = ~np.isnan(data.acc[:, j])
        dm = xgb.DMatrix(data.x[ok], label=data.acc[ok, j])
        params = _params(opts, objective="reg:logistic")
        boosters.append(xgb.train(params, dm, num_boost_round=opts.n_estimators))
    return PluginModel(boosters)


def xgboost_version() -> str:
    """The installed XGBoost's version (recorded in policy.json's provenance)."""
    import xgboost

    return str(xgboost.__version__)


def load_model(learner: str, folder: Path, files: list[str], n_actions: int) -> Model:
    import xgboost as xgb

    def booster(name: str) -> Any:
        b = xgb.Booster()
        b.load_model(str(folder / name))
        return b

    if learner == "imitate":
        return ImitateModel(booster(files[0]), n_actions)
    return PluginModel([booster(f) for f in files])


LEARNERS: dict[str, Callable[[TrainData, LearnerOptions], Model]] = {
    "imitate": fit_imitate,
    "plugin": fit_plugin,
}
