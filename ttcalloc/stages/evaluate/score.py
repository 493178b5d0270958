"""Scoring on in-memory data: policies, baselines and the oracle at each budget, then the metrics
that compare them.  No file is read or written here."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.common.console import warn
from ttcalloc.common.errors import ArtifactError, DataError, InputError
from ttcalloc.common.progress import Tracker
from ttcalloc.core import oracle
from ttcalloc.core import replays as sequential
from ttcalloc.core.baselines import APPLIES, AT_BUDGET, BASELINES, PER_MODEL, SEQUENTIAL, applicable
from ttcalloc.core.metrics import bootstrap_means, imitation, interval, share_of_gain
from ttcalloc.core.mixes import (
    EvalData,
    Outcome,
    Unavailable,
    outcome_from_probs,
    uniform_at_budget,
)
from ttcalloc.core.routes import models_of
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.policy import Policy, calibrate, decide
from ttcalloc.stages.evaluate import strongest
from ttcalloc.stages.evaluate.options import EvaluateOptions
from ttcalloc.stages.evaluate.oracle_on import OracleOn, plot_frontiers

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl

    from ttcalloc.stages.evaluate.load import Loaded

ORACLE = strongest.ORACLE
ORACLE_FIT = "oracle-fit"
BEST_SINGLE = "best-single"
PAIRED = (*SEQUENTIAL, *AT_BUDGET)  # baselines each learned policy is paired with at one cost


@dataclass(frozen=True)
class Scored:
    """Every policy's record at every budget (the report's ``policies``), and the plot's curves."""

    budgets: list[float]
    records: list[dict[str, Any]]
    frontiers: dict[str, list[list[float]]] | None  # None unless options.plot
    strongest: dict[str, Any] | None = None  # several models: the share of the strongest's cost


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


def score_policies(
    loaded: Loaded,
    groups: dict[str, dict[float, Policy | AdaptivePolicy]],
    options: EvaluateOptions,
) -> Scored:
    """Score learned policies, baselines and the oracle on the loaded test problems.

    Budgets are ``options.budgets``, else the budgets the policies were trained at; baselines
    and oracles are matched to each budget, else to the first learned policy's realized cost.
    """
    import polars as pl

    data, test, problems = loaded.data, loaded.data.test, loaded.problems
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
    on_test = OracleOn.of(test)
    on_fit = OracleOn.of(loaded.test_fit) if loaded.test_fit is not None else None
    rows: list[_Row] = []
    with Tracker("scoring", len(budgets)) as track:
        for budget in budgets:
            learned = [
                _adaptive_row(name, members, budget, loaded, test_problems, train_problems, options)
                if _is_adaptive(members)
                else _learned_row(
                    name,
                    members,  # type: ignore[arg-type]
                    budget,
                    data,
                    test_problems,
                    train_problems,
                    loaded.problems_path,
                    options.recalibrate,
                )
                for name, members in groups.items()
            ]
            target = budget if options.budgets else float(learned[0].outcome.cost.mean())
            rows.extend(_baseline_rows(data, options, budget, target))
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
            track.advance()

    records = _metrics(rows, data, options, on_test)
    frontiers = plot_frontiers(on_test) if options.plot else None
    return Scored(budgets, records, frontiers, strongest.strongest_shares(data, records))


def _for_model(
    run: Callable[[EvalData, float, str], Outcome], model: str
) -> Callable[[EvalData, float], Outcome]:
    """A per-model baseline bound to one model."""
    return lambda data, target: run(data, target, model)


def _baseline_rows(
    data: EvalData, options: EvaluateOptions, budget: float, target: float
) -> list[_Row]:
    """Every applicable baseline at one budget (``single`` once per model); one that cannot
    run there is left out with a warning saying why."""
    rows: list[_Row] = []
    for name in applicable(options.baselines, data.actions):
        if name in APPLIES and APPLIES[name] != data.strategy:
            continue  # a rule for the other strategy (majority vote or verifier)
        at = budget if name in AT_BUDGET else target
        runs: list[tuple[str, Callable[[EvalData, float], Outcome]]] = (
            [(f"{name}:{m}", _for_model(PER_MODEL[name], m)) for m in models_of(data.actions)]
            if name in PER_MODEL
            else [(name, BASELINES[name])]
        )
        for label, run in runs:
            try:
                outcome = run(data, at)
            except Unavailable as exc:
                if str(exc) != data.replay_note:  # the replay note was said once on load
                    warn(f"{label} at {budget:g}: {exc}")
                continue
            rows.append(_Row(label, "baseline", budget, at, outcome))
    return rows


def _is_adaptive(members: dict[float, Policy | AdaptivePolicy]) -> bool:
    kinds = {isinstance(m, AdaptivePolicy) for m in members.values()}
    if len(kinds) > 1:
        raise InputError("one policy name mixes adaptive (stop) and static folders")
    return kinds == {True}


def _adaptive_row(
    name: str,
    members: dict[float, Policy | AdaptivePolicy],
    budget: float,
    loaded: Loaded,
    test_problems: pl.DataFrame,
    train_problems: pl.DataFrame,
    options: EvaluateOptions,
) -> _Row:
    """An adaptive policy replayed on the test problems' scoring-half samples (the same orders
    as the early-stopping baselines).  At a budget it was not trained for, or with
    ``recalibrate``, its two prices are set label-free on the train (or test) replays."""
    data = loaded.data
    trained = min(members, key=lambda b: (abs(b - budget), b))
    policy = members[trained]
    assert isinstance(policy, AdaptivePolicy)
    if data.test_replays is None or data.train_replays is None:
        raise DataError(
            f"policy {name} is adaptive and needs the samples replayed: {data.replay_note}"
        )
    missing = [v for v in policy.sample_values if v not in loaded.sample_values]
    if missing:
        raise DataError(f"policy {name} uses per-sample {missing[0]!r}, which these samples lack")
    pick = [loaded.sample_values.index(v) for v in policy.sample_values]

    def view(r: sequential.Replays) -> sequential.Replays:
        extra = r.extra[..., pick] if r.extra is not None and pick else None
        return dataclasses.replace(r, extra=extra)

    test_rep = view(data.test_replays)
    metas = policy.metas(test_problems, loaded.problems_path)
    critical = policy.critical(test_rep, test_problems["question"].to_list(), metas)
    calibration = policy.calibration
    recalibrated: bool | str = trained != budget
    if options.recalibrate:
        calibration = policy.recalibrate(test_rep, critical, budget)
        recalibrated = "test replays"
    elif recalibrated:
        warn(
            f"policy {name}: trained at budget {trained:g}, recalibrated to {budget:g} on the "
            "train replays (train one at this budget for a fair comparison)"
        )
        train_rep = view(data.train_replays)
        train_metas = policy.metas(train_problems, loaded.problems_path)
        train_crit = policy.critical(train_rep, train_problems["question"].to_list(), train_metas)
        calibration = policy.recalibrate(train_rep, train_crit, budget)
    acc, cost = policy.outcome(test_rep, critical, calibration)
    params = {
        "learner": policy.learner,
        "trained_budget": trained,
        "recalibrated": recalibrated,
        "lambda_lo": calibration.lam_lo,
        "lambda_hi": calibration.lam_hi if np.isfinite(calibration.lam_hi) else None,
        "p_lo": calibration.p_lo,
        "cap": policy.grid.cap,
    }
    return _Row(name, "learned", budget, budget, Outcome(acc=acc, cost=cost, params=params))


def _action_map(policy: Policy, actions: list[str], source: str) -> np.ndarray:
    missing = [a for a in policy.actions if a not in actions]
    if missing:
        raise ArtifactError(
            f"{source}: the policy's action {missing[0]!r} is not in the curves "
            f"(actions: {', '.join(actions)})"
        )
    return np.array([actions.index(a) for a in policy.actions])


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
    as ``ttcalloc allocate --budget`` does for a new batch).  ``problems_path`` names the
    problems in messages.
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
        "uniform_fallback": bool((policy.info.get("shrinkage") or {}).get("fallback")),
    }
    return _Row(
        name, "learned", budget, budget, outcome_from_probs(data.test, probs, params), choice
    )


def _metrics(
    rows: list[_Row], data: EvalData, options: EvaluateOptions, on_test: OracleOn
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
    # learned vs each sequential baseline and k-each at the same budget: paired on the same
    # problems, where both spent within 5% of each other
    pairs: list[tuple[int, str, float]] = []
    for j, row in enumerate(rows):
        if row.kind != "learned":
            continue
        for other in rows:
            if (
                other.kind == "baseline"
                and other.budget == row.budget
                and other.policy in PAIRED
                and _same_cost(row.outcome, other.outcome)
            ):
                columns.append(row.outcome.acc - other.outcome.acc)
                pairs.append((j, other.policy, float(other.outcome.cost.mean())))
    if BEST_SINGLE in applicable(options.baselines, data.actions):
        for j, row in enumerate(rows):
            if row.kind == "learned" and (single := _best_single_at(data, row)) is not None:
                columns.append(row.outcome.acc - single.acc)
                pairs.append((j, BEST_SINGLE, float(single.cost.mean())))
    draws = bootstrap_means(np.column_stack(columns), options.n_boot, options.seed)
    for c, (j, name, other_cost) in enumerate(pairs, start=2 * len(partial)):
        diff = float(columns[c].mean())
        lo, hi = interval(draws[:, c])
        partial[j].setdefault("gain_vs", {})[name] = [
            _clean(diff),
            _clean(lo),
            _clean(hi),
            other_cost,
        ]
    for j, rec in enumerate(partial):
        rec["accuracy_ci"] = list(interval(draws[:, 2 * j]))
        gain_ci = [_clean(x) for x in interval(draws[:, 2 * j + 1])]
        rec["gain_vs_uniform_ci"] = gain_ci if rec["gain_vs_uniform"] is not None else None
        for key in ("gain_vs_uniform", "relative_gain", "regret", "oracle_gain_share"):
            rec[key] = _clean(rec[key])
    return partial


def _same_cost(a: Outcome, b: Outcome, tolerance: float = 0.05) -> bool:
    """Whether two policies spent within ``tolerance`` (relative) of each other: only then is a
    paired accuracy difference a comparison of the policies rather than of their spending."""
    ca, cb = float(a.cost.mean()), float(b.cost.mean())
    return abs(ca - cb) <= tolerance * max(ca, cb)


def _best_single_at(data: EvalData, row: _Row) -> Outcome | None:
    """The best single model at a learned policy's own realized cost (chosen on train at that
    cost, exact on test as uniform is): what a router is paired with, so that a router spending
    more or less than its budget is compared at the dollars it spent.  None where no model
    runs at that cost."""
    try:
        return BASELINES[BEST_SINGLE](data, float(row.outcome.cost.mean()))
    except Unavailable:
        return None


def _clean(value: float | None) -> float | None:
    """Float noise around zero (a policy against itself) shown as zero."""
    return 0.0 if value is not None and abs(value) < 1e-12 else value
