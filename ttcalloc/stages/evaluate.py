"""``ttcalloc evaluate``: learned policies against the oracle and every baseline, at matched cost.

Everything is scored offline on the test split, with the curves of held-out samples (the eval
half) when the curves are cross-fitted, so no policy is scored on the samples that trained or
labelled it.  For every policy and budget the report gives accuracy and mean cost, the gain over
uniform allocation *at the policy's own realized cost* with a paired bootstrap interval over
problems, the regret against the oracle at that cost and the share of the oracle's gain it
captures; for learned policies also imitation accuracy, a confusion matrix of actions and the
paper's bound ``regret <= imitation error x worst-case gap``.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.artifacts.frames import (
    CORRECT,
    assign_halves,
    dense_full,
    input_path,
    sample_cost,
    to_dense,
    vote_labels,
)
from ttcalloc.artifacts.io import (
    check_known_ids,
    provenance,
    read_artifact,
    write_artifact,
    write_json_artifact,
)
from ttcalloc.artifacts.schemas import CURVES, METRICS, PROBLEMS, REPORT, SAMPLES
from ttcalloc.common.console import warn
from ttcalloc.common.errors import ArtifactError, DataError, InputError
from ttcalloc.core import oracle
from ttcalloc.core import replays as sequential
from ttcalloc.core.baselines import (
    BASELINES,
    DESCRIPTIONS,
    EvalData,
    Outcome,
    Unavailable,
    mix_probs,
    outcome_from_probs,
    uniform_at_budget,
)
from ttcalloc.core.curves import Dense
from ttcalloc.core.metrics import bootstrap_means, imitation, interval, share_of_gain
from ttcalloc.learn.policy import Policy, calibrate, decide

if TYPE_CHECKING:
    import polars as pl

ORACLE = "oracle"
ORACLE_FIT = "oracle-fit"


@dataclass(frozen=True)
class EvaluateOptions:
    """Budgets, baselines and the resampling behind the intervals."""

    budgets: tuple[float, ...] = ()  # empty: each policy's own budget, baselines at its cost
    baselines: tuple[str, ...] = tuple(BASELINES)
    n_boot: int = 2000
    orders: int = 60  # a multiple of 1..6: one-sample rules exact for n <= 6
    seed: int = 0
    plot: bool = True
    recalibrate: bool = False  # learned policies meet each budget on the test questions

    def check(self) -> None:
        for b in self.budgets:
            if not math.isfinite(b) or b < 0:
                raise InputError(f"--budgets {b}: must be non-negative numbers")
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise InputError(f"--baselines {unknown[0]!r}: expected some of {', '.join(BASELINES)}")
        if self.n_boot < 100:
            raise InputError(f"--bootstrap {self.n_boot}: use at least 100 resamples")
        if self.orders < 1:
            raise InputError(f"--orders {self.orders}: must be at least 1")


@dataclass(frozen=True)
class PolicySpec:
    """A policy folder and the name it is reported under (folders sharing a name are one policy
    trained at several budgets)."""

    name: str
    path: Path

    @classmethod
    def parse(cls, text: str) -> PolicySpec:
        """``NAME=FOLDER`` or ``FOLDER`` (named after the folder)."""
        name, sep, path = text.partition("=")
        if sep and name and path and not Path(text).exists():
            return cls(name, Path(path))
        return cls(Path(text).name or str(text), Path(text))


@dataclass(frozen=True)
class EvaluateResult:
    out: Path
    report: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.report


@dataclass
class _Row:
    """One policy at one budget, before the metrics that compare it with others."""

    policy: str
    kind: str
    budget: float
    target: float
    outcome: Outcome
    choice: np.ndarray | None = None  # learned policies: the action index per problem
    extra: dict[str, Any] = field(default_factory=dict)


def _sample_costs(samples: pl.DataFrame, unit: str, prompt_once: bool) -> pl.DataFrame:
    """Add ``_cost`` (per sample, in the curves' unit) and ``_fixed`` (once per problem)."""
    each, once = sample_cost(unit, prompt_once)
    per, fixed = each, once.mean().over("problem_id")
    out = samples.with_columns(per.alias("_cost"), fixed.alias("_fixed"))
    if out["_cost"].null_count():
        raise Unavailable(f"cost unit {unit}: some samples lack the counts it needs")
    return out


def _replays(
    samples: pl.DataFrame, ids: list[str], orders: int, seed: int
) -> sequential.Replays | None:
    import polars as pl

    part = samples.filter(pl.col("problem_id").is_in(ids)).sort("problem_id", "sample_idx")
    grouped = part.group_by("problem_id", maintain_order=True).agg("_id", "_cost", "_fixed")
    by_id = {r[0]: r for r in grouped.iter_rows()}
    if set(by_id) != set(ids):
        return None
    rows = [by_id[p] for p in ids]
    return sequential.replay(
        [r[1] for r in rows],
        [r[2] for r in rows],
        orders=orders,
        seed=seed,
        fixed=[r[3][0] for r in rows],
    )


def load_replays(
    samples_path: Path,
    problems: pl.DataFrame,
    problems_path: Path,
    curves_meta: dict[str, Any],
    halves: tuple[str, str],
    ids: tuple[list[str], list[str]],
    orders: int,
    seed: int,
) -> tuple[sequential.Replays | None, sequential.Replays | None, str]:
    """Replays of the test problems' scoring-half samples and the train problems' fit-half ones.

    The halves are recovered with the holdout and seed ``estimate`` used (from the curves'
    provenance).  Returns (test, train, note); a note explains why replays are unavailable.
    """
    import polars as pl

    params = curves_meta.get("params", {})
    models = params.get("models") or []
    strategies = params.get("strategies") or ["majority"]
    if "majority" not in strategies:
        return None, None, "the curves have no majority-vote actions"
    samples = read_artifact(samples_path, SAMPLES).df
    samples = samples.filter(pl.col("correct").is_not_null() & pl.col("error").is_null())
    if models:
        samples = samples.filter(pl.col("model").is_in(models))
    if samples["model"].n_unique() != 1:
        return None, None, "early stopping is simulated for one model; the samples have several"
    check_known_ids(samples, problems, samples_path, problems_path, "not the curves' samples?")
    # cluster wrong answers as estimate did: by the problems' graders only if it had them
    samples = vote_labels(samples, problems if input_path(curves_meta, "problems") else None)
    samples = assign_halves(samples, float(params.get("holdout", 0.0)), int(params.get("seed", 0)))
    try:
        samples = _sample_costs(
            samples, str(curves_meta.get("cost_unit", "samples")), bool(params.get("prompt_once"))
        )
    except Unavailable as exc:
        return None, None, str(exc)
    samples = samples.with_columns(
        pl.when(pl.col("vote") == CORRECT)
        .then(pl.lit(0, dtype=pl.Int64))
        .when(pl.col("vote").is_null())
        .then(pl.lit(sequential.ABSTAIN, dtype=pl.Int64))
        .otherwise(pl.col("vote").rank("dense").over("problem_id").cast(pl.Int64))
        .alias("_id")
    )
    score_half, fit_half = halves
    test = _replays(samples.filter(pl.col("half") == score_half), ids[0], orders, seed)
    train = _replays(samples.filter(pl.col("half") == fit_half), ids[1], orders, seed + 1)
    if test is None or train is None:
        return None, None, f"{samples_path}: some evaluated problems have no samples"
    return test, train, ""


def _policy_groups(specs: list[PolicySpec]) -> dict[str, dict[float, Policy]]:
    groups: dict[str, dict[float, Policy]] = {}
    for spec in specs:
        policy = Policy.load(spec.path)
        budget = float(policy.info["budget"])
        members = groups.setdefault(spec.name, {})
        if budget in members:
            raise InputError(
                f"--policy {spec.name}: two folders were trained at budget {budget:g}; "
                "give them different names (NAME=FOLDER)"
            )
        members[budget] = policy
    return groups


def _action_map(policy: Policy, actions: list[str], source: str) -> np.ndarray:
    missing = [a for a in policy.actions if a not in actions]
    if missing:
        raise ArtifactError(
            f"{source}: the policy's action {missing[0]!r} is not in the curves "
            f"(actions: {', '.join(actions)})"
        )
    return np.array([actions.index(a) for a in policy.actions])


@dataclass(frozen=True)
class _OracleOn:
    """The oracle on one set of curves, their hulls computed once for every target."""

    curves: Dense
    hulls: oracle.Hulls

    @classmethod
    def of(cls, curves: Dense) -> _OracleOn:
        return cls(curves, oracle.upper_hulls(curves.acc, curves.cost))

    def solve(self, target: float) -> oracle.Solution:
        return oracle.solve_exact(self.curves.acc, self.curves.cost, target, hulls=self.hulls)

    def probs(self, target: float) -> tuple[np.ndarray, oracle.Solution]:
        """Each problem's probability of each action in the (mixed) solution at ``target``."""
        sol = self.solve(target)
        return mix_probs(self.curves.acc.shape, sol.action_lo, sol.action_hi, sol.p_hi), sol


def evaluate_policies(
    policies: list[PolicySpec],
    out: Path,
    options: EvaluateOptions | None = None,
    curves_path: Path | None = None,
    problems_path: Path | None = None,
    samples_path: Path | None = None,
) -> EvaluateResult:
    """Score learned policies, baselines and the oracle on the test split; write the report.

    Args:
        policies: policy folders from ``ttcalloc train`` (may be empty with ``budgets``); folders
            given the same name form one policy evaluated at the budgets it was trained for.
        out: report folder: metrics.parquet, report.json, report.md, accuracy_vs_budget.png.
        options: budgets, baselines, bootstrap resamples, replay orders, seed, plot.
        curves_path: curves (default: the curves the first policy was trained with).
        problems_path: problems with the split (default: the first policy's).
        samples_path: samples for the early-stopping baselines (default: the curves' samples
            when that file exists; without samples those baselines are left out).

    Returns:
        An :class:`EvaluateResult` holding the report (the content of report.json).
    """
    import polars as pl

    options = options or EvaluateOptions()
    options.check()
    groups = _policy_groups(policies)
    if policies:
        first = next(iter(groups[policies[0].name].values()))
        inputs = first.info.get("provenance", {}).get("inputs", {})
        curves_path = curves_path or input_path({"inputs": inputs}, "curves")
        problems_path = problems_path or input_path({"inputs": inputs}, "problems")
    if curves_path is None or problems_path is None:
        raise InputError("give --curves and --problems (or a policy that names them)")
    if not groups and not options.budgets:
        raise InputError("nothing to evaluate at: give a policy folder or --budgets")

    loaded = _load(Path(curves_path), Path(problems_path), samples_path, options)
    data, test, test_fit, problems = loaded.data, loaded.data.test, loaded.test_fit, loaded.problems
    notes = loaded.notes
    floor = float(np.nanmin(test.cost, axis=1).mean())
    low = [b for b in options.budgets if b < floor - 1e-9]
    if low:
        raise InputError(
            f"--budgets {low[0]:g}: below the minimum mean cost {floor:.6g} "
            "(every test problem at its cheapest action)"
        )

    # learned policies: actions on the test problems, at their own or recalibrated budgets
    test_problems = problems.filter(pl.col("problem_id").is_in(test.problem_ids)).sort("problem_id")
    train_problems = problems.filter(pl.col("problem_id").is_in(data.train.problem_ids)).sort(
        "problem_id"
    )
    budgets = sorted(set(options.budgets) or {b for m in groups.values() for b in m})
    on_test = _OracleOn.of(test)
    on_fit = _OracleOn.of(test_fit) if test_fit is not None else None
    rows: list[_Row] = []
    for budget in budgets:
        learned = [
            _learned_row(
                name,
                members,
                budget,
                data,
                test_problems,
                train_problems,
                problems_path,
                options.recalibrate,
            )
            for name, members in groups.items()
        ]
        target = budget if options.budgets else float(learned[0].outcome.cost.mean())
        for name in options.baselines:
            try:
                outcome = BASELINES[name](data, target)
            except Unavailable as exc:
                warn(f"{name} at {budget:g}: {exc}")
                continue
            rows.append(_Row(name, "baseline", budget, target, outcome))
        rows.extend(learned)
        if on_fit is not None:
            try:
                probs, _ = on_fit.probs(target)
                outcome = outcome_from_probs(test, probs, {"labels": f"{loaded.fit_half} half"})
                rows.append(_Row(ORACLE_FIT, "oracle", budget, target, outcome))
            except oracle.InfeasibleBudget:
                pass
        try:
            probs, sol = on_test.probs(target)
            outcome = outcome_from_probs(test, probs, {"lambda": sol.lam})
            rows.append(_Row(ORACLE, "oracle", budget, target, outcome, extra={"upper": True}))
        except oracle.InfeasibleBudget as exc:
            warn(f"oracle at {budget:g}: {exc}")

    records = _score(rows, data, options, on_test)
    notes.extend(verdicts(records))
    report = _report(
        records, budgets, options, loaded.unit, notes, data, loaded.in_sample, loaded.score_half
    )
    sources = {"curves": Path(curves_path), "problems": Path(problems_path)}
    sources |= {f"policy:{s.name}@{s.path.name}": s.path / "policy.json" for s in policies}
    if loaded.samples_used:
        sources["samples"] = loaded.samples_used
    report["provenance"] = provenance(REPORT, "evaluate", report["settings"], sources)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = pl.DataFrame([_flat(r) for r in records], infer_schema_length=None)
    write_artifact(
        table,
        out / "metrics.parquet",
        METRICS,
        stage="evaluate",
        params=report["settings"],
        inputs={"curves": Path(curves_path), "problems": Path(problems_path)},
        extra_meta={"cost_unit": loaded.unit},
    )
    report["out"] = str(out)
    report["plot"] = str(out / "accuracy_vs_budget.png") if options.plot else None
    from ttcalloc.stages import report as render

    if options.plot:
        render.write_plot(out / "accuracy_vs_budget.png", report, _frontiers(on_test))
    render.write_markdown(out / "report.md", report)
    report = write_json_artifact(out / "report.json", report, REPORT)
    return EvaluateResult(out=out, report=report)


@dataclass(frozen=True)
class _Loaded:
    """The evaluation data and what the report needs to say about it."""

    data: EvalData
    test_fit: Dense | None
    problems: pl.DataFrame
    unit: str
    in_sample: bool
    score_half: str
    fit_half: str
    notes: list[str]
    samples_used: Path | None


def _load(
    curves_path: Path, problems_path: Path, samples_path: Path | None, options: EvaluateOptions
) -> _Loaded:
    """Dense train and test curves over common actions, questions, and sample replays."""
    import polars as pl

    curves_art = read_artifact(curves_path, CURVES)
    curves = curves_art.df
    problems = read_artifact(problems_path, PROBLEMS).df
    check_known_ids(
        curves, problems, Path(curves_path), Path(problems_path), "estimated for other problems?"
    )
    halves = set(curves["half"].to_list())
    score_half = "eval" if "eval" in halves else "all"
    fit_half = "fit" if "fit" in halves else "all"
    in_sample = score_half == "all"
    notes: list[str] = []
    if in_sample:
        warn(f"{curves_path}: curves are in-sample; the report scores on the samples it tuned on")
        notes.append(
            "Curves are in-sample (not cross-fitted): accuracies are optimistic for every policy "
            "tuned or trained on them."
        )
    unit = str(curves_art.meta.get("cost_unit", "unknown"))
    actions = to_dense(curves.filter(pl.col("half") == fit_half)).actions
    split = dict(problems.select("problem_id", "split").iter_rows())
    known = set(curves["problem_id"].to_list())
    test_ids = sorted(p for p in known if split.get(p) == "test")
    train_ids = sorted(p for p in known if split.get(p) == "train")
    test = dense_full(curves, score_half, test_ids, actions)
    test_fit = dense_full(curves, fit_half, test_ids, actions) if not in_sample else None
    train = dense_full(curves, fit_half, train_ids, actions)
    keep = ~np.isnan(test.acc).any(axis=1)
    if test_fit is not None:
        keep &= ~np.isnan(test_fit.acc).any(axis=1)
    if (~keep).any():
        warn(f"{int((~keep).sum())} test problems lack some action's curve; left out")
        notes.append(f"{int((~keep).sum())} test problems lacked some action's curve; left out.")
    test = _subset(test, keep)
    test_fit = _subset(test_fit, keep) if test_fit is not None else None
    train = _subset(train, ~np.isnan(train.acc).any(axis=1))
    if len(test.problem_ids) < 2:
        raise DataError(
            f"{problems_path}: {len(test.problem_ids)} test problems with curves; need at least 2 "
            "(make a test split with `ttcalloc data --test-frac`)"
        )
    if len(train.problem_ids) < 2:
        raise DataError(f"{problems_path}: too few train problems with curves to tune baselines")

    q = dict(problems.select("problem_id", "question").iter_rows())
    explicit = samples_path is not None
    samples_path = samples_path or input_path(curves_art.meta, "samples")
    replay_note = ""
    test_rep = train_rep = None
    ks = curves.filter(pl.col("strategy") == "majority")["k"].to_list()
    max_k = max(ks) if ks else 1
    wants_replays = any(b in ("esc", "adaptive") for b in options.baselines)
    if wants_replays and samples_path is not None and (explicit or Path(samples_path).exists()):
        test_rep, train_rep, replay_note = load_replays(
            Path(samples_path),
            problems,
            Path(problems_path),
            curves_art.meta,
            (score_half, fit_half),
            (test.problem_ids, train.problem_ids),
            options.orders,
            options.seed,
        )
    elif wants_replays:
        replay_note = f"the curves' samples file {samples_path} is gone (pass --samples)"
    if replay_note:
        warn(replay_note)
        notes.append(f"Early-stopping baselines left out: {replay_note}.")
    data = EvalData(
        actions=actions,
        test=test,
        train=train,
        test_questions=[q[p] for p in test.problem_ids],
        train_questions=[q[p] for p in train.problem_ids],
        test_replays=test_rep,
        train_replays=train_rep,
        replay_note=replay_note,
        max_k=max_k,
    )

    return _Loaded(
        data=data,
        test_fit=test_fit,
        problems=problems,
        unit=unit,
        in_sample=in_sample,
        score_half=score_half,
        fit_half=fit_half,
        notes=notes,
        samples_used=Path(samples_path) if test_rep is not None and samples_path else None,
    )


def verdicts(records: list[dict[str, Any]]) -> list[str]:
    """Plain sentences on what the intervals say about each learned policy, and surprises."""
    out = []
    for r in records:
        b = f"{r['budget']:g}"
        if r["policy"] in ("esc", "adaptive") and (r["regret"] or 0.0) < -1e-9:
            out.append(
                f"{r['policy']} at {b} beats the oracle by {-r['regret']:.4f}: the oracle "
                "chooses one fixed action per problem, early stopping adapts within a problem."
            )
        if r["kind"] != "learned" or r["gain_vs_uniform_ci"] is None:
            continue
        lo, hi = r["gain_vs_uniform_ci"]
        gain = f"{r['gain_vs_uniform']:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        if hi < 0:
            verdict = f"loses to uniform at the same cost: {gain}"
        elif lo > 0:
            verdict = f"beats uniform at the same cost: {gain}"
        else:
            verdict = f"is not distinguishable from uniform at the same cost: {gain}"
        rivals = [
            o
            for o in records
            if o["budget"] == r["budget"] and o["kind"] == "baseline" and o["policy"] != "uniform"
        ]
        best = max(rivals, key=lambda o: o["gain_vs_uniform"] or 0.0, default=None)
        if best is not None and (best["gain_vs_uniform"] or 0.0) > (r["gain_vs_uniform"] or 0.0):
            verdict += (
                f"; {best['policy']} does better ({best['gain_vs_uniform']:+.4f} over uniform)"
            )
        out.append(f"{r['policy']} at {b} {verdict}.")
    return out


def _subset(dense: Dense, keep: np.ndarray) -> Dense:
    ids = [p for p, k in zip(dense.problem_ids, keep, strict=True) if k]
    return Dense(ids, dense.actions, dense.acc[keep], dense.cost[keep])


def _learned_row(
    name: str,
    members: dict[float, Policy],
    budget: float,
    data: EvalData,
    test_problems: pl.DataFrame,
    train_problems: pl.DataFrame,
    problems_path: Path,
    on_test: bool = False,
) -> _Row:
    """A learned policy's actions on the test problems at ``budget``.

    The member trained at ``budget`` is used as trained.  Otherwise the member trained at the
    nearest budget is recalibrated: its multiplier mu is set so that its expected cost on the
    train problems meets ``budget`` (a stand-in; train a policy at that budget to compare fairly).
    With ``on_test`` every member is recalibrated on the test questions themselves (label-free,
    as ``ttcalloc allocate --budget`` does for a new batch).
    """
    trained = min(members, key=lambda b: (abs(b - budget), b))
    policy = members[trained]
    amap = _action_map(policy, data.actions, f"policy {name}")
    metas = policy.metas(test_problems, problems_path)
    scores = policy.scores(test_problems["question"].to_list(), metas)
    mu = policy.mu
    recalibrated: bool | str = trained != budget
    if on_test:
        mu = policy.calibrated_mu(test_problems["question"].to_list(), budget, metas)
        recalibrated = "test questions"
    elif recalibrated:
        warn(
            f"policy {name}: trained at budget {trained:g}, recalibrated to {budget:g} on the "
            "train problems (train one at this budget for a fair comparison)"
        )
        train_scores = policy.scores(
            train_problems["question"].to_list(), policy.metas(train_problems, problems_path)
        )
        mu = calibrate(train_scores, policy.costs, data.train.cost[:, amap], budget)
    choice = amap[decide(scores, policy.costs, mu)]
    probs = np.zeros_like(data.test.acc)
    probs[np.arange(len(choice)), choice] = 1.0
    params = {
        "learner": policy.learner,
        "trained_budget": trained,
        "recalibrated": recalibrated,
        "mu": mu,
    }
    return _Row(
        name, "learned", budget, budget, outcome_from_probs(data.test, probs, params), choice
    )


def _score(
    rows: list[_Row], data: EvalData, options: EvaluateOptions, on_test: _OracleOn
) -> list[dict[str, Any]]:
    """Every row's metrics, with one paired bootstrap over problems shared by all rows."""
    test = data.test
    n = test.acc.shape[0]
    columns: list[np.ndarray] = []
    partial: list[dict[str, Any]] = []
    for row in rows:
        acc_i, cost_i = row.outcome.acc, row.outcome.cost
        accuracy, cost = float(acc_i.mean()), float(cost_i.mean())
        uni = uniform_at_budget(test.acc, test.cost, cost)
        uni_i = uni.per_problem(test.acc) if uni else None
        try:
            probs, sol = on_test.probs(cost)
            oracle_acc: float | None = float((probs * test.acc).sum(axis=1).mean())
        except oracle.InfeasibleBudget:
            sol, oracle_acc = None, None
        if row.policy == ORACLE:
            oracle_acc = accuracy
        uniform_acc = float(uni_i.mean()) if uni_i is not None else None
        gain = accuracy - uniform_acc if uniform_acc is not None else None
        rec: dict[str, Any] = {
            "policy": row.policy,
            "kind": row.kind,
            "budget": row.budget,
            "target_cost": row.target,
            "accuracy": accuracy,
            "cost": cost,
            "cost_over_budget": cost / row.budget if row.budget > 0 else None,
            "uniform_accuracy": uniform_acc,
            "gain_vs_uniform": gain,
            "relative_gain": gain / uniform_acc if gain is not None and uniform_acc else None,
            "oracle_accuracy": oracle_acc,
            "regret": oracle_acc - accuracy if oracle_acc is not None else None,
            "oracle_gain_share": share_of_gain(accuracy, uniform_acc, oracle_acc)
            if uniform_acc is not None and oracle_acc is not None
            else None,
            "upper_bound": bool(row.extra.get("upper")),
            "problems": n,
            "params": row.outcome.params,
        }
        if row.choice is not None and sol is not None:
            truth = np.where(sol.p_hi >= 0.5, sol.action_hi, sol.action_lo)
            imi = imitation(test.acc, truth, row.choice)
            rec |= {
                "imitation_accuracy": imi.accuracy,
                "regret_vs_labels": imi.regret,
                "max_gap": imi.max_gap,
                "bound": imi.bound,
                "mean_gap_bound": imi.mean_gap_bound,
                "bound_holds": imi.holds,
                "confusion": {"actions": data.actions, "matrix": imi.matrix.tolist()},
            }
        columns.append(acc_i)
        columns.append(acc_i - uni_i if uni_i is not None else np.zeros(n))
        partial.append(rec)
    draws = bootstrap_means(np.column_stack(columns), options.n_boot, options.seed)
    for j, rec in enumerate(partial):
        rec["accuracy_ci"] = list(interval(draws[:, 2 * j]))
        gain_ci = [_clean(x) for x in interval(draws[:, 2 * j + 1])]
        rec["gain_vs_uniform_ci"] = gain_ci if rec["gain_vs_uniform"] is not None else None
        for key in ("gain_vs_uniform", "relative_gain", "regret", "oracle_gain_share"):
            rec[key] = _clean(rec[key])
    return partial


def _clean(value: float | None) -> float | None:
    """Float noise around zero (a policy against itself) shown as zero."""
    return 0.0 if value is not None and abs(value) < 1e-12 else value


def _flat(rec: dict[str, Any]) -> dict[str, Any]:
    """A report record as a metrics.parquet row (intervals split, params as JSON)."""
    out = {k: v for k, v in rec.items() if k not in ("confusion", "params")}
    acc_ci = out.pop("accuracy_ci")
    gain_ci = out.pop("gain_vs_uniform_ci")
    out["accuracy_lo"], out["accuracy_hi"] = acc_ci
    out["gain_lo"], out["gain_hi"] = gain_ci if gain_ci is not None else (None, None)
    out["params"] = json.dumps(rec["params"], sort_keys=True)
    return out


def _report(
    records: list[dict[str, Any]],
    budgets: list[float],
    options: EvaluateOptions,
    unit: str,
    notes: list[str],
    data: EvalData,
    in_sample: bool,
    score_half: str,
) -> dict[str, Any]:
    test = data.test
    return {
        "artifact": REPORT.name,
        "schema_version": REPORT.version,
        "budget": budgets[0] if len(budgets) == 1 else None,
        "budgets": budgets,
        "cost_unit": unit,
        "scored_on": (
            "test split, all samples (in-sample)"
            if score_half == "all"
            else f"test split, {score_half} half of the samples"
        ),
        "in_sample": in_sample,
        "problems": {"test": len(test.problem_ids), "train": len(data.train.problem_ids)},
        "actions": [
            {
                "name": a,
                "accuracy": float(test.acc[:, j].mean()),
                "cost": float(test.cost[:, j].mean()),
            }
            for j, a in enumerate(data.actions)
        ],
        "policies": records,
        "descriptions": {
            **{b: DESCRIPTIONS[b] for b in options.baselines},
            ORACLE_FIT: "the oracle's allocation from the other half of the samples",
            ORACLE: "the oracle on the scoring curves themselves: an upper bound, not a policy",
        },
        "notes": notes,
        "settings": {
            "budgets": list(options.budgets),
            "matched_to": "budgets" if options.budgets else "the learned policy's realized cost",
            "baselines": list(options.baselines),
            "bootstrap": options.n_boot,
            "orders": options.orders,
            "seed": options.seed,
            "recalibrate": options.recalibrate,
        },
    }


def _frontiers(on_test: _OracleOn, points: int = 60) -> dict[str, list[list[float]]]:
    """Uniform's and the oracle's accuracy as functions of mean cost, for the plot."""
    test = on_test.curves
    mean_cost = test.cost.mean(axis=0)
    lo, hi = float(mean_cost.min()), float(mean_cost.max())
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])
    uni, orc = [], []
    for c in grid:
        u = uniform_at_budget(test.acc, test.cost, float(c))
        if u is not None:
            uni.append([float(c), u.accuracy])
        with contextlib.suppress(oracle.InfeasibleBudget):
            orc.append([float(c), on_test.solve(float(c)).objective])
    return {"uniform": uni, "oracle": orc}
