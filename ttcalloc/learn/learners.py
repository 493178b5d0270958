"""Learners that turn cheap features into per-action scores, through one registry.

- ``imitate`` (the paper): an XGBoost multi-class classifier of the oracle's action; the score of
  an action is its log-probability.  ``weight="gap"`` weights each problem by its per-problem
  gap (best minus cheapest accuracy), so mistakes that cost accuracy count more.
- ``plugin``: one XGBoost regressor per action predicts the success probability p(a | x); the
  score is that prediction.

A policy picks ``argmax_a score(a | x) - mu * cost(a)``; ``mu`` is calibrated by the trainer.
The trainer deploys a :class:`FoldEnsemble`: the k models of its cross-fitting, so the model
calibrated out of fold is the model deployed (no refit on all problems), wrapped in
:class:`Shrunk` scores (``ttcalloc.core.shrinkage``).  Models are saved in XGBoost's
own UBJ format, never pickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ttcalloc.common.errors import ArtifactError, OutputError
from ttcalloc.core.shrinkage import UNIFORM, shrink


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
    def save(self, folder: Path, prefix: str = "") -> list[str]: ...


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

    def save(self, folder: Path, prefix: str = "") -> list[str]:
        name = f"{prefix}model.ubj"
        save_booster(self.booster, folder / name)
        return [name]


class PluginModel:
    def __init__(self, boosters: list[Any]) -> None:
        self.boosters = boosters

    def scores(self, x: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        dm = xgb.DMatrix(x)
        return np.stack([b.predict(dm) for b in self.boosters], axis=1)

    def save(self, folder: Path, prefix: str = "") -> list[str]:
        names = []
        for j, booster in enumerate(self.boosters):
            name = f"{prefix}model-{j}.ubj"
            save_booster(booster, folder / name)
            names.append(name)
        return names


class FoldEnsemble:
    """The k fold models of cross-fitting, deployed as they were calibrated.

    Each member was fit without one fold, and mu is calibrated on its scores on that fold: every
    training problem is scored by exactly one model that never saw it.  ``combine="route"`` (what
    ``ttcalloc train`` writes) deploys the same thing: each new problem is scored by one member,
    chosen by a hash of its feature row (so a question always gets the same member), and since no
    member saw it, the scores' distribution is the out-of-fold one mu was calibrated on.
    ``combine="mean"`` averages the members' scores instead: less noisy, but the average is
    narrower than any one member's out-of-fold scores, so the calibrated mu no longer spends the
    budget (measured in docs/static_learners.md).
    """

    def __init__(self, members: list[Model], combine: str = "route") -> None:
        if combine not in ("route", "mean"):
            raise ValueError(f"combine {combine!r}: expected route or mean")
        self.members, self.combine = members, combine

    def route(self, x: np.ndarray) -> np.ndarray:
        """The member scoring each row: a hash of the row's feature values, modulo k."""
        return np.array([h % len(self.members) for h in row_hashes(x)], dtype=np.int64)

    def scores(self, x: np.ndarray) -> np.ndarray:
        if self.combine == "mean":
            mean: np.ndarray = np.mean([m.scores(x) for m in self.members], axis=0)
            return mean
        who = self.route(x)
        parts = {k: m.scores(x[who == k]) for k, m in enumerate(self.members) if (who == k).any()}
        width = next(iter(parts.values())).shape[1] if parts else 0
        out = np.empty((x.shape[0], width))
        for k, part in parts.items():
            out[who == k] = part
        return out

    def save(self, folder: Path, prefix: str = "") -> list[str]:
        return [f for files in self.save_folds(folder, prefix) for f in files]

    def save_folds(self, folder: Path, prefix: str = "") -> list[list[str]]:
        """Each member's files, named ``fold-<k>-...``; one list per member."""
        return [m.save(folder, f"{prefix}fold-{k}-") for k, m in enumerate(self.members)]


def row_hashes(x: np.ndarray, person: bytes = b"") -> list[int]:
    """A 64-bit hash of each feature row's values (``person`` salts independent uses)."""
    rows = np.ascontiguousarray(x, dtype=np.float64)
    return [
        int.from_bytes(
            hashlib.blake2b(r.tobytes(), digest_size=8, person=person).digest(), "little"
        )
        for r in rows
    ]


def row_draws(x: np.ndarray) -> np.ndarray:
    """One number in [0, 1) per feature row, a hash of its values (the same question always
    draws the same number; independent of :meth:`FoldEnsemble.route`)."""
    return np.array([h / 2.0**64 for h in row_hashes(x, b"ttc-draw")], dtype=np.float64)


class Shrunk:
    """A model's scores shrunk towards the uniform target: ``target + weight * scores`` (at
    weight 0, uniform allocation itself: the model is not consulted)."""

    def __init__(self, model: Model, target: np.ndarray, weight: float) -> None:
        self.model, self.target, self.weight = model, np.asarray(target, dtype=float), weight

    def scores(self, x: np.ndarray) -> np.ndarray:
        if self.weight == UNIFORM:
            flat = np.zeros((x.shape[0], len(self.target)))
            return shrink(flat, self.target, UNIFORM, row_draws(x))
        return shrink(self.model.scores(x), self.target, self.weight)

    def save(self, folder: Path, prefix: str = "") -> list[str]:
        return self.model.save(folder, prefix)


def save_booster(booster: Any, path: Path) -> None:
    """Write a booster in XGBoost's UBJ format, atomically (never pickled).

    The temporary file ends in ``.ubj`` (XGBoost picks the format by extension) and is removed
    when the write fails; XGBoost's error becomes one line naming ``path``.
    """
    import xgboost as xgb

    from ttcalloc.artifacts.io import atomic_path

    with atomic_path(path, suffix=".ubj") as tmp:
        try:
            booster.save_model(str(tmp))
        except xgb.core.XGBoostError as exc:
            reason = xgboost_message(exc)
            if "incomplete" in reason.lower():  # XGBoost hides the errno of a short write
                reason = "the write was cut short: disk full or a file size limit"
            raise OutputError(f"{path}: cannot write ({reason})") from None


def xgboost_message(exc: BaseException) -> str:
    """The first line of an XGBoost error, without its time stamp, source location and stack."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    first = re.sub(r"^\[[\d:]+\]\s*", "", first)  # [14:03:12]
    first = re.sub(r"^\S+\.(?:cc|h|cu):\d+:\s*", "", first)  # /path/src/io.cc:123:
    return first[:200]


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


@dataclass(frozen=True)
class Expected:
    """What a policy's model file must be: its objective, input width and classes."""

    objective: str
    features: int
    classes: int | None = None
    names: tuple[str, ...] | None = None  # the columns, in order (checked when the file has them)


def load_booster(path: Path, expected: Expected | None = None) -> Any:
    """Read a booster written by :func:`save_booster`, checked against ``expected``.

    A damaged file, or one whose objective, feature count or number of classes is not what the
    policy says, is an :class:`ArtifactError` of one line (no C++ stack).
    """
    import json

    import xgboost as xgb

    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
        config = json.loads(booster.save_config())["learner"]
    except (xgb.core.XGBoostError, ValueError, KeyError) as exc:
        raise ArtifactError(f"{path}: cannot load the model ({xgboost_message(exc)})") from None
    # feature names stored by train: checked below, then cleared (inputs carry none); model
    # files from before they were stored have none
    stored, booster.feature_names = booster.feature_names, None
    if expected is not None:
        objective = config.get("objective", {}).get("name")
        width = booster.num_features()
        classes = int(config.get("learner_model_param", {}).get("num_class", 0))
        found = (objective, width, classes if expected.classes is not None else None)
        wanted = (expected.objective, expected.features, expected.classes)
        if found != wanted:
            raise ArtifactError(
                f"{path}: the model ({objective}, {width} features"
                + (f", {classes} classes" if expected.classes is not None else "")
                + f") does not match policy.json ({expected.objective}, {expected.features} "
                + "features"
                + (f", {expected.classes} classes" if expected.classes is not None else "")
                + ")"
            )
        if expected.names is not None and stored is not None:
            _same_columns(path, list(stored), list(expected.names))
    return booster


def _same_columns(path: Path, stored: list[str], wanted: list[str]) -> None:
    """The columns a model was saved with are policy.json's, in the same order."""
    for i, (a, b) in enumerate(zip(stored, wanted, strict=True)):
        if a != b:
            raise ArtifactError(
                f"{path}: the model's feature {i} is {a[:40]!r} where policy.json's is "
                f"{b[:40]!r} (features listed in another order, or another model's file)"
            )


def boosters_of(model: Any) -> list[Any]:
    """Every booster of a model (fold members in order, each member's files in order): the
    order of its files in policy.json's ``model_files``."""
    if isinstance(model, FoldEnsemble):
        return [b for m in model.members for b in boosters_of(m)]
    if isinstance(model, Shrunk):
        return boosters_of(model.model)
    if isinstance(model, ImitateModel):
        return [model.booster]
    return list(model.boosters)  # PluginModel, the stop learner's GainModel


@contextlib.contextmanager
def feature_names_stored(boosters: Sequence[Any], names: Sequence[str]) -> Iterator[None]:
    """Within the block the boosters carry ``names`` (XGBoost writes them into the model file,
    so a loader can check the columns it feeds); outside it, none (inputs carry no names)."""
    try:
        for b in boosters:
            b.feature_names = list(names)
        yield
    finally:
        for b in boosters:
            b.feature_names = None


def load_model(
    learner: str,
    folder: Path,
    files: list[str] | list[list[str]],
    n_actions: int,
    combine: str = "route",
    n_features: int | None = None,
    feature_names: Sequence[str] | None = None,
) -> Model:
    """A saved model: one list of files, or one list per fold (a :class:`FoldEnsemble`).

    With ``n_features``, every booster is checked to take that many features and to have the
    learner's objective (and, for imitate, one class per action); with ``feature_names``, to
    have been saved with those columns in that order (when its file records names).
    """

    if files and all(isinstance(f, list) for f in files):
        members = [
            load_model(learner, folder, list(f), n_actions, "route", n_features, feature_names)
            for f in files
        ]
        return FoldEnsemble(members, combine)
    names = [str(f) for f in files]
    expected = None
    if n_features is not None:
        columns = tuple(feature_names) if feature_names is not None else None
        expected = (
            Expected("multi:softprob", n_features, n_actions, columns)
            if learner == "imitate"
            else Expected("reg:logistic", n_features, None, columns)
        )
    if learner == "imitate":
        return ImitateModel(load_booster(folder / names[0], expected), n_actions)
    return PluginModel([load_booster(folder / f, expected) for f in names])


LEARNERS: dict[str, Callable[[TrainData, LearnerOptions], Model]] = {
    "imitate": fit_imitate,
    "plugin": fit_plugin,
}
