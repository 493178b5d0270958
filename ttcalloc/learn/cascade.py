"""A learned cascade over several models: the gain model, its calibration, the policy folder.

The gain model predicts, from a state (the current model and what its samples say) and an
option (a target model and number of samples), the change in the final answer's correctness;
it is fit on the Solve step's realized labels (:func:`ttcalloc.core.cascade.labels`) of the train
problems' replays, ``folds`` boosters each fit without one fold of problems, averaged.  Identical
rows are fit once, weighted by their count.  One price is calibrated per budget on the train
replays (:func:`ttcalloc.core.cascade.calibrate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ttcalloc.artifacts.io import atomic_folder, write_json_artifact
from ttcalloc.artifacts.schemas import POLICY
from ttcalloc.common.errors import ArtifactError
from ttcalloc.core import cascade as cc
from ttcalloc.core.cascade_rule import (
    APART,
    ThresholdRule,
    UniformRule,
    flat_dollars,
    highest_price,
)
from ttcalloc.core.replays import Replays, sliced
from ttcalloc.core.rows import unique_rows
from ttcalloc.learn import features as feats
from ttcalloc.learn.learners import (
    Expected,
    feature_names_stored,
    load_booster,
)
from ttcalloc.learn.stopping import GainModel, StopOptions, _map, fit_gain

LEARNER = "cascade"
# added to every option's predicted gain where the current model's samples gave no answer at
# all: the learned gains do not stop a question without an answer while an option remains (at
# any price calibration or pacing reaches; as the rules' forced samples, core.cascade_rule)
ANSWER = 1e9
# learned gains, or a rule written as gains: the MoT rule, one model's uniform allocation
Gains = GainModel | ThresholdRule | UniformRule
Rule = ThresholdRule | UniformRule


def option_rows(
    states: NDArray[np.float64],
    question: NDArray[np.float64] | None,
    ladder: cc.Ladder,
    valid: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], tuple[NDArray[np.intp], ...]]:
    """Model inputs at every usable ``(problem, order, state, option)``: the state's features,
    the question's, then the option's (``ladder.row_features`` order, the question's features
    between state and option); and the positions, for scattering back."""
    opt = np.array(ladder.options, dtype=np.float64)
    sl = np.array([lv for lv, _ in ladder.states], dtype=np.float64)
    sj = np.array([j for _, j in ladder.states], dtype=np.float64)
    pos = np.nonzero(valid)
    p_, _, s_, o_ = pos
    tl, th = opt[o_, 0], opt[o_, 1]
    extra = np.where(tl == sl[s_], th - sj[s_], th)
    parts = [states[pos[:3]]]
    if question is not None and question.shape[1]:
        parts.append(question[p_])
    parts.append(np.stack([tl, th, extra, (tl != sl[s_]).astype(np.float64)], axis=1))
    return np.ascontiguousarray(np.concatenate(parts, axis=1)), pos


def row_names(feature_names: Sequence[str], ladder: cc.Ladder) -> list[str]:
    """Column names of :func:`option_rows` (stored in the model files and checked on load)."""
    names = list(ladder.row_features)
    return [*names[:-4], *(f"q_{n}" for n in feature_names), *names[-4:]]


@dataclass(frozen=True)
class Prepared:
    """Replays of a set of problems with everything the rule needs but the price."""

    replays: list[Replays]
    question: NDArray[np.float64] | None
    usable: NDArray[np.bool_]  # (P, R, S, O)
    extra: NDArray[np.float64]  # (P, R, S, O) estimated extra dollars
    gains: NDArray[np.float64] | None = None  # (P, R, S, O) predicted gains


def prepare(
    replays: list[Replays],
    question: NDArray[np.float64] | None,
    ladder: cc.Ladder,
    unit_cost: Sequence[float],
    model: object = None,
) -> Prepared:
    """Usable options and their extra dollars on these replays (as ``model`` weighs them:
    :func:`~ttcalloc.core.cascade_rule.flat_dollars`)."""
    _, usable = cc.labels(replays, ladder)
    extra = cc.extra_dollars(replays, ladder, unit_cost, flat_dollars(model))
    return Prepared(replays, question, usable, extra)


def fit_cascade(
    prep: Prepared,
    ladder: cc.Ladder,
    fold: NDArray[np.int64],
    opts: StopOptions,
    threads: int = 1,
) -> tuple[GainModel, int]:
    """The fold boosters of the gain model (on the first ``opts.fit_orders`` orders), and the
    number of distinct training rows."""
    x_u, mean_y, counts, problem = training_rows(prep, ladder, opts.fit_orders)
    fold_u = fold[problem]  # rows of one problem only: fold membership is per distinct row
    folds = sorted(set(fold.tolist()))

    def fit_one(f: int) -> Any:
        keep = fold_u != f
        return fit_gain(x_u[keep], mean_y[keep], opts, counts[keep])

    boosters = _map(fit_one, folds, threads)
    return GainModel(boosters), len(x_u)


def training_rows(
    prep: Prepared, ladder: cc.Ladder, fit_orders: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """The gain model's distinct training rows (on the first ``fit_orders`` orders; identical
    rows of one problem once), their mean label, how many states each stands for, and its
    problem."""
    reps = [sliced(r, orders=slice(fit_orders)) for r in prep.replays]
    states, _ = cc.state_rows(reps, ladder)
    gains, valid = cc.labels(reps, ladder)
    x, pos = option_rows(states, prep.question, ladder, valid)
    problem = pos[0]
    first, inverse = unique_rows(np.concatenate([x, problem[:, None].astype(np.float64)], 1))
    counts = np.bincount(inverse, minlength=len(first)).astype(np.float64)
    mean_y = np.bincount(inverse, weights=gains[pos], minlength=len(first)) / counts
    return x[first], mean_y, counts, problem[first]


def predict(
    model: Gains,
    prep: Prepared,
    ladder: cc.Ladder,
    threads: int = 1,
    fold: NDArray[np.int64] | None = None,
) -> Prepared:
    """``prep`` with the gain model's predictions at every usable option (0 elsewhere); each
    distinct row is predicted once.  With ``fold`` (one per problem), out of fold: each
    problem by the booster fit without its fold (boosters in fold order); a rule, fit on
    nothing, is its own out-of-fold prediction."""
    states, _ = cc.state_rows(prep.replays, ladder)
    x, pos = option_rows(states, prep.question, ladder, prep.usable)
    out = np.zeros(prep.usable.shape)
    if not isinstance(model, GainModel):  # a rule
        out[pos] = model.predict_distinct(x)
    elif fold is None:
        first, inverse = unique_rows(x)
        out[pos] = model.predict_distinct(x[first], threads)[inverse]
    else:
        folds = sorted(set(fold.tolist()))
        row_fold = fold[pos[0]]
        pred = np.zeros(len(x))
        for booster, f in zip(model.boosters, folds, strict=True):
            rows = row_fold == f
            pred[rows] = GainModel([booster]).predict_distinct(x[rows], threads)
        out[pos] = pred
    if isinstance(model, GainModel):
        out += np.where(prep.usable & cc.unanswered(prep.replays, ladder)[..., None], ANSWER, 0.0)
    return Prepared(prep.replays, prep.question, prep.usable, prep.extra, out)


# a calibrated price and the per-problem accuracy, dollars and samples of each model there
Outcome = tuple[cc.Calibration, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]


def calibrated_outcome(ladder: cc.Ladder, prep: Prepared, budget: float) -> Outcome:
    """The price calibrated at ``budget`` on ``prep``'s predictions, and the per-problem
    accuracy, dollars and samples of each model there."""
    assert prep.gains is not None
    cal = cc.calibrate(prep.replays, ladder, prep.gains, prep.extra, prep.usable, budget)
    return (cal, *cc.mixed_outcome(prep.replays, ladder, prep.gains, prep.extra, prep.usable, cal))


@dataclass
class CascadePolicy:
    """Models in order, caps, features, the gains (a learned model, or the MoT rule) and the
    calibrated prices."""

    models: list[str]
    ladder: cc.Ladder
    unit_cost: list[float]  # mean dollars per sample of each model (train)
    feature_names: list[str]
    subjects: list[str] | None
    model: Gains
    calibration: cc.Calibration
    info: dict[str, Any]
    # per decision (after t samples): dollars then spent per dollar aimed, in training
    # (:func:`ttcalloc.core.cascade_pacing.pace_ratio`); empty: 1 (older policies)
    pace_ratio: tuple[float, ...] = ()

    learner = LEARNER

    def question_matrix(self, questions: Sequence[str]) -> NDArray[np.float64] | None:
        if not self.feature_names:
            return None
        x: NDArray[np.float64] = feats.matrix(
            feats.by_names(self.feature_names),
            list(questions),
            [{}] * len(questions),
            self.subjects,
        )
        return x

    def gains_label(self) -> str:
        """What weighs the options against the price: "learned", or the rule in words."""
        return (
            "learned" if isinstance(self.model, GainModel) else rule_label(self.model, self.models)
        )

    def metas(self, problems: Any, source: Path) -> list[dict[str, Any]]:
        """Each question's metadata for the features (a cascade's features use none)."""
        return [{} for _ in range(problems.height)]

    def outcome(
        self,
        replays: list[Replays],
        questions: Sequence[str],
        threads: int = 1,
        budget: float | None = None,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Per-problem expected accuracy, dollars and samples of each model on replays; with
        ``budget``, at prices recalibrated on these replays to meet it (no labels are used: the
        rule sees vote counts, never which answer is correct)."""
        qx = self.question_matrix(questions)
        prep = prepare(replays, qx, self.ladder, self.unit_cost, self.model)
        prep = predict(self.model, prep, self.ladder, threads)
        assert prep.gains is not None
        cal = self.calibration
        if budget is not None:
            cal = self._recalibrate(prep, budget)
        return cc.mixed_outcome(replays, self.ladder, prep.gains, prep.extra, prep.usable, cal)

    def _recalibrate(self, prep: Prepared, budget: float) -> cc.Calibration:
        """Prices meeting ``budget`` on ``prep``'s replays; at the cheapest (over the budget)
        when even that costs more: the cheapest path, or a rule's ``highest_price``."""
        assert prep.gains is not None
        args = (prep.replays, self.ladder, prep.gains, prep.extra, prep.usable)
        learned = isinstance(self.model, GainModel)
        top = np.inf if learned else highest_price(prep.gains, prep.extra, prep.usable)
        if (cost := cc.mean_cost(*args, top)) > budget * (1 + 1e-12):
            return cc.Calibration(top, top, 0.0, cost)
        return cc.calibrate(*args, budget, apart=APART if flat_dollars(self.model) else 0.0)

    def save(self, folder: Path, meta: dict[str, Any]) -> None:
        """The gain models (UBJ; none for a rule) and policy.json, written to a temporary
        folder and renamed."""
        cal = self.calibration
        names = row_names(self.feature_names, self.ladder)
        learned = self.model if isinstance(self.model, GainModel) else None
        rule = None if isinstance(self.model, GainModel) else self.model
        with (
            atomic_folder(folder, "policy.json") as tmp,
            feature_names_stored(learned.boosters if learned else [], names),
        ):
            files = learned.save(tmp) if learned else []
            body = {
                "artifact": POLICY.name,
                "schema_version": POLICY.version,
                "learner": LEARNER,
                "cascade": {
                    "models": self.models,
                    "caps": list(self.ladder.caps),
                    "checkpoints": list(self.ladder.checkpoints),
                    "escalate_after": self.ladder.escalate_after,
                    "prompt_kinds": self.ladder.kinds,
                    "unit_cost_usd": self.unit_cost,
                    "answer": "the majority vote of the last model drawn",
                    "lambda_lo": cal.lam_lo,
                    "lambda_hi": None if not np.isfinite(cal.lam_hi) else cal.lam_hi,
                    "p_lo": cal.p_lo,
                    "slack": cal.slack,
                    "pace_ratio": list(self.pace_ratio),
                    **({} if rule is None else {"rule": rule.to_json()}),
                },
                "features": self.feature_names,
                "subjects": self.subjects,
                "row_features": names,
                "model_files": files,
                **meta,
            }
            write_json_artifact(tmp / "policy.json", body, POLICY)
        self.info = body

    @classmethod
    def load(cls, path: str | Path) -> CascadePolicy:
        """A policy folder written by ``ttcalloc train --learner cascade`` (every field checked)."""
        from ttcalloc.artifacts.policy_file import read_cascade_policy

        folder = Path(path)
        meta = read_cascade_policy(folder)
        cas = meta["cascade"]
        ladder = cc.Ladder(
            tuple(int(c) for c in cas["caps"]),
            tuple(int(c) for c in cas["checkpoints"]),
            int(cas.get("escalate_after", 1)),  # older policies: after any sample
            bool(cas.get("prompt_kinds", False)),  # older policies: the vote alone
        )
        lam_hi = cas["lambda_hi"]
        cal = cc.Calibration(
            float(cas["lambda_lo"]),
            np.inf if lam_hi is None else float(lam_hi),
            float(cas["p_lo"]),
            float(meta.get("metrics", {}).get("train_expected_cost", np.nan)),
            bool(cas.get("slack", False)),
        )
        trained = meta.get("metrics", {}).get("models")
        if trained is not None and list(trained) != list(cas["models"]):
            raise ArtifactError(  # the levels' gains, caps and unit dollars follow that order
                f"{folder}/policy.json: cascade.models {list(cas['models'])} is not the order "
                f"the policy was trained in (metrics.models: {list(trained)})"
            )
        names = [str(n) for n in meta["features"]]
        columns = row_names(names, ladder)
        if list(meta.get("row_features", columns)) != columns:
            raise ArtifactError(f"{folder}: row_features do not match features")
        expected = Expected("reg:squarederror", len(columns), None, tuple(columns))
        files = [str(f) for f in meta["model_files"]]
        rule = cas.get("rule")
        model: Gains = (
            GainModel([load_booster(folder / f, expected) for f in files])
            if rule is None
            else rule_of(rule)
        )
        return cls(
            [str(m) for m in cas["models"]],
            ladder,
            [float(c) for c in cas["unit_cost_usd"]],
            names,
            meta.get("subjects"),
            model,
            cal,
            meta,
            tuple(float(x) for x in cas.get("pace_ratio", ())),
        )


def rule_label(rule: Rule, models: Sequence[str]) -> str:
    """A rule in words: "MoT rule: gpt-3.5-turbo x6", "gpt-3.5-turbo only, up to x16"."""
    if isinstance(rule, ThresholdRule):
        return f"MoT rule: {models[rule.first]} x{rule.k}"
    return f"{models[rule.model]} only, up to x{rule.ks[-1]}"


def rule_of(data: dict[str, Any]) -> Rule:
    """The rule ``policy.json``'s ``cascade.rule`` holds (checked by ``read_cascade_policy``)."""
    if data["kind"] == "single":
        ks = tuple(int(k) for k in data["ks"])
        accs = tuple(float(a) for a in data["accs"])
        return UniformRule(int(data["model"]), ks, accs, bool(data.get("flat_dollars", False)))
    return ThresholdRule(int(data["first"]), int(data["k"]), int(data["then"]))
