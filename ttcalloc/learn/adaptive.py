"""A trained adaptive policy: after each sample of a question, stop or draw more?

``AdaptivePolicy.load(folder).decide(question, answers)`` is the deployment API: it turns the
answers drawn so far into the state the rule was trained on, asks the gain model, and compares
the best predicted gain per unit of extra cost with the calibrated price.  Offline, the same
policy is scored on replays of recorded samples (:meth:`AdaptivePolicy.outcome`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ttcalloc.artifacts.io import atomic_folder, write_json_artifact
from ttcalloc.artifacts.policy_file import read_policy_file
from ttcalloc.artifacts.schemas import POLICY
from ttcalloc.common.errors import ArtifactError, InputError
from ttcalloc.common.hashing import seeded_unit
from ttcalloc.core import replays as rp
from ttcalloc.core import stopping
from ttcalloc.learn import features as feats
from ttcalloc.learn.learners import Expected, boosters_of, feature_names_stored, load_booster
from ttcalloc.learn.stopping import GainModel, critical_prices

if TYPE_CHECKING:
    import polars as pl

LEARNER = "stop"


@dataclass(frozen=True)
class Decision:
    """What the policy says after ``drawn`` samples, and why."""

    stop: bool
    drawn: int
    critical: float  # continue while the price is below this
    price: float  # the price this question is run at (one of the two calibrated ones)


@dataclass
class AdaptivePolicy:
    """Grid, features, gain model and calibrated prices of a learned stopping rule."""

    grid: stopping.Grid
    feature_names: list[str]
    subjects: list[str] | None
    sample_values: list[str]  # per-sample values in the state (running means), e.g. "chars"
    model: GainModel
    calibration: stopping.Calibration
    info: dict[str, Any]

    learner = LEARNER

    # --- files ------------------------------------------------------------------------------

    def save(self, folder: Path, meta: dict[str, Any]) -> None:
        """Write the gain models (UBJ) and policy.json (``meta`` adds metrics and provenance)
        into a temporary folder renamed onto ``folder`` once complete (an old policy there is
        replaced whole, never mixed with new model files)."""
        cal = self.calibration
        names = gain_features(self.sample_values, self.feature_names, self.subjects)
        with (
            atomic_folder(folder, "policy.json") as tmp,
            feature_names_stored(boosters_of(self.model), names),
        ):
            files = self.model.save(tmp)
            body = {
                "artifact": POLICY.name,
                "schema_version": POLICY.version,
                "learner": LEARNER,
                "adaptive": {
                    "cap": self.grid.cap,
                    "checkpoints": list(self.grid.checkpoints),
                    "strategy": self.grid.strategy,
                    "sample_values": self.sample_values,
                    "lambda_lo": cal.lam_lo,
                    "lambda_hi": None if not np.isfinite(cal.lam_hi) else cal.lam_hi,
                    "p_lo": cal.p_lo,
                    "slack": cal.slack,
                },
                "features": self.feature_names,
                "feature_docs": {f.name: f.doc for f in feats.by_names(self.feature_names)},
                "state_features": list(stopping.STATE_FEATURES)
                + [f"mean_{v}" for v in self.sample_values],
                "subjects": self.subjects,
                "model_files": files,
                **meta,
            }
            write_json_artifact(tmp / "policy.json", body, POLICY)
        self.info = body

    @classmethod
    def load(cls, path: str | Path) -> AdaptivePolicy:
        """Load a policy folder written by ``ttcalloc train --learner stop``."""
        folder = Path(path)
        meta = read_policy_file(folder)
        if meta["learner"] != LEARNER:
            raise ArtifactError(f"{folder}: a {meta['learner']} policy, not an adaptive (stop) one")
        return cls.from_meta(folder, meta)

    @classmethod
    def from_meta(cls, folder: Path, meta: dict[str, Any]) -> AdaptivePolicy:
        """An adaptive policy from its checked policy.json (:func:`read_policy_file`)."""
        ad = meta["adaptive"]
        grid = stopping.Grid(
            cap=int(ad["cap"]),
            checkpoints=tuple(int(c) for c in ad["checkpoints"]),
            strategy=str(ad["strategy"]),
        )
        lam_hi = ad["lambda_hi"]
        cost = meta["metrics"].get("oof_expected_cost")
        cal = stopping.Calibration(
            lam_lo=float(ad["lambda_lo"]),
            lam_hi=np.inf if lam_hi is None else float(lam_hi),
            p_lo=float(ad["p_lo"]),
            cost=float(cost) if isinstance(cost, (int, float)) else np.nan,
            slack=bool(ad.get("slack", False)),
        )
        names = [str(n) for n in meta["features"]]
        known_features(names, folder)
        values = [str(v) for v in ad.get("sample_values", [])]
        subjects = meta.get("subjects")
        columns = gain_features(values, names, subjects)
        files = [str(f) for f in meta["model_files"]]
        expected = Expected("reg:squarederror", len(columns), None, tuple(columns))
        model = GainModel([load_booster(folder / f, expected) for f in files])
        return cls(grid, names, subjects, values, model, cal, meta)

    # --- offline: replays -------------------------------------------------------------------

    def question_matrix(
        self, questions: Sequence[str], metas: Sequence[Mapping[str, Any]] | None = None
    ) -> NDArray[np.float64] | None:
        if not self.feature_names:
            return None
        metas = metas if metas is not None else [{}] * len(questions)
        x: NDArray[np.float64] = feats.matrix(
            feats.by_names(self.feature_names), list(questions), list(metas), self.subjects
        )
        return x

    def metas(self, problems: pl.DataFrame, source: Path) -> list[dict[str, Any]]:
        """Each problem's metadata for the features; fails when the policy needs what is absent."""
        return feats.problem_metas(self.feature_names, self.subjects, problems, source)

    def critical(
        self,
        replays: rp.Replays,
        questions: Sequence[str],
        metas: Sequence[Mapping[str, Any]] | None = None,
    ) -> NDArray[np.float64]:
        """Critical price after every prefix of every replay order."""
        return critical_prices(
            self.model, replays, self.question_matrix(questions, metas), self.grid
        )

    def outcome(
        self,
        replays: rp.Replays,
        critical: NDArray[np.float64],
        calibration: stopping.Calibration | None = None,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-problem expected accuracy and cost over the replay orders."""
        grid = self.grid.within(replays.max_samples)
        return stopping.mixed_outcome(critical, replays, grid, calibration or self.calibration)

    def recalibrate(
        self, replays: rp.Replays, critical: NDArray[np.float64], budget: float
    ) -> stopping.Calibration:
        """Prices meeting ``budget`` on these replays (label-free: only costs are used)."""
        return stopping.calibrate(critical, replays, self.grid.within(replays.max_samples), budget)

    # --- online: one question -----------------------------------------------------------------

    def price_for(self, question: str) -> float:
        """The price a question runs at: the lower price with probability ``p_lo`` (seeded by
        the question, so a rerun decides the same way)."""
        cal = self.calibration
        return cal.lam_lo if seeded_unit("stop-mix", question) < cal.p_lo else cal.lam_hi

    def decide(
        self,
        question: str,
        answers: Sequence[str | None],
        costs: Sequence[float] | None = None,
        values: Mapping[str, Sequence[float]] | None = None,
        **meta: Any,
    ) -> Decision:
        """Stop, or draw another sample of ``question``, given the answers drawn so far.

        Args:
            question: the question text (its features are part of the state).
            answers: one entry per drawn sample: the answer (already normalized, so equal
                answers are equal strings) or None when the sample gave none.
            costs: each sample's cost in the policy's cost unit (default 1 per sample).
            values: per-sample values the policy was trained with (``sample_values``), e.g.
                ``{"chars": [312, 280]}``; missing ones count as unknown.
            meta: question metadata the features use (``level=3``).
        """
        j = len(answers)
        crit = float(self.criticals([question], [answers], [costs], [values], [meta])[0])
        price = self.price_for(question)
        if j == 0:
            return Decision(False, 0, crit, price)
        if j >= self.grid.cap:
            return Decision(True, j, crit, price)
        return Decision(bool(crit <= price), j, crit, price)

    def criticals(
        self,
        questions: Sequence[str],
        answers: Sequence[Sequence[str | None]],
        costs: Sequence[Sequence[float] | None] | None = None,
        values: Sequence[Mapping[str, Sequence[float]] | None] | None = None,
        metas: Sequence[Mapping[str, Any]] | None = None,
    ) -> NDArray[np.float64]:
        """The critical price of many questions at once (:meth:`decide`'s, one model call per
        number of samples drawn): ``inf`` before any sample, 0 at the cap."""
        n = len(questions)
        costs = costs if costs is not None else [None] * n
        values = values if values is not None else [None] * n
        metas = metas if metas is not None else [{}] * n
        out = np.zeros(n)
        by_j: dict[int, list[int]] = {}
        for i, a in enumerate(answers):
            j = len(a)
            if j == 0:
                out[i] = np.inf
            elif j < self.grid.cap:
                by_j.setdefault(j, []).append(i)
        for j, rows in by_j.items():
            ids, cost, extra = [], [], []
            for i in rows:
                labels: dict[str, int] = {}
                ids.append(
                    [-1 if a is None else labels.setdefault(a, len(labels)) for a in answers[i]]
                )
                c = costs[i]
                cost.append(list(c) if c is not None else [1.0] * j)
                if self.sample_values:
                    v = values[i] or {}
                    cols = [
                        [float(x) for x in v[name]] if name in v else [np.nan] * j
                        for name in self.sample_values
                    ]
                    extra.append(np.array(cols, dtype=np.float64).T)
            group = rp.replay(ids, cost, orders=1, extra=extra or None, shuffle=False)
            qx = self.question_matrix([questions[i] for i in rows], [metas[i] for i in rows])
            crit = critical_prices(self.model, _pad(group, self.grid.cap), qx, self.grid)
            out[rows] = crit[:, 0, j - 1]
        return out


def gain_features(values: Sequence[str], names: Sequence[str], subjects: Any) -> list[str]:
    """The gain model's input columns, in order: the state (with the running means of the
    per-sample ``values``), the question's features (and its subject), the pair features."""
    return [
        *stopping.STATE_FEATURES,
        *(f"mean_{v}" for v in values),
        *names,
        *(["subject"] if subjects is not None else []),
        *stopping.PAIR_FEATURES,
    ]


def known_features(names: list[str], folder: Path) -> None:
    """Fail with one line when policy.json names a feature this version does not compute."""
    try:
        feats.by_names(names)
    except InputError as exc:
        raise ArtifactError(f"{folder / 'policy.json'}: {exc}") from None


def _pad(one: rp.Replays, cap: int) -> rp.Replays:
    """Extend a one-order replay to ``cap`` positions (padding repeats the last prefix), so the
    pair rows of every decision up to the cap can be built."""
    t = one.max_samples
    if t >= cap:
        return one
    idx = np.minimum(np.arange(cap), t - 1)

    def ext(a: Any) -> Any:
        return None if a is None else a[:, :, idx]

    return rp.Replays(
        n=np.full(one.n.shape, cap),
        ids=ext(one.ids),
        credit=ext(one.credit),
        top1=ext(one.top1),
        top2=ext(one.top2),
        cost=ext(one.cost),
        run=ext(one.run),
        lead=ext(one.lead),
        distinct=ext(one.distinct),
        abstain=ext(one.abstain),
        solved=ext(one.solved),
        fixed=one.fixed,
        extra=ext(one.extra),
    )
