"""Static routing over several models under one dollar budget (issue 22).

Baselines for curves whose actions are (model, k) pairs, checked by brute force on small
synthetic curves: each single model's uniform allocation, the best single model (chosen on
train), random routing; the share of the strongest model's cost at which a policy reaches its
accuracy on a hand-made case; and the whole CLI on a slice of the shared Date file.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import shared_file
from helpers import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from ttcalloc.core.actions import parse_action
from ttcalloc.core.baselines import MULTI_MODEL, NAMES, applicable
from ttcalloc.core.curves import Dense
from ttcalloc.core.metrics import cost_to_reach, upper_hull
from ttcalloc.core.mixes import EvalData, Unavailable, uniform_at_budget
from ttcalloc.core.routes import best_single, model_columns, random_route, single_model
from ttcalloc.stages.evaluate.strongest import strongest_shares

PRICES = {"gpt-4": 0.0197, "gpt-3.5-turbo": 0.00035, "llama-2-13b": 0.00015}


def _data(
    actions: list[str], test_acc: np.ndarray, test_cost: np.ndarray, train_acc: np.ndarray
) -> EvalData:
    """EvalData over ``actions`` (train costs are the test costs' first row, repeated)."""
    n_test, n_train = test_acc.shape[0], train_acc.shape[0]
    test = Dense([f"t{i}" for i in range(n_test)], actions, test_acc, test_cost)
    train_cost = np.broadcast_to(test_cost[0], train_acc.shape).copy()
    train = Dense([f"r{i}" for i in range(n_train)], actions, train_acc, train_cost)
    return EvalData(
        actions=actions,
        test=test,
        train=train,
        test_questions=["q"] * n_test,
        train_questions=["q"] * n_train,
    )


@st.composite
def multi_model_data(draw: Any) -> EvalData:
    """Two or three models, one to four actions each (k = 1, 2, 4, 8), a price per model;
    accuracies random per problem and action, costs k times the model's price (per problem
    jitter, so mean costs are not exact multiples)."""
    n_models = draw(st.integers(2, 3))
    n_test = draw(st.integers(2, 5))
    actions: list[str] = []
    prices: list[float] = []
    for m in range(n_models):
        n_k = draw(st.integers(1, 4))
        price = draw(st.floats(0.1, 20.0))
        for k in (1, 2, 4, 8)[:n_k]:
            actions.append(f"m{m}:maj@{k}")
            prices.append(price * k)
    a = len(actions)
    unit = st.floats(0.0, 1.0)
    test_acc = np.array(
        draw(st.lists(st.lists(unit, min_size=a, max_size=a), min_size=n_test, max_size=n_test))
    )
    jitter = np.array(draw(st.lists(st.floats(0.8, 1.2), min_size=n_test, max_size=n_test)))
    test_cost = jitter[:, None] * np.array(prices)[None, :]
    train_acc = np.array(
        draw(st.lists(st.lists(unit, min_size=a, max_size=a), min_size=2, max_size=4))
    )
    return _data(actions, test_acc, test_cost, train_acc)


def _brute_best_mix(acc: np.ndarray, cost: np.ndarray, target: float) -> float | None:
    """The best mean accuracy of any one action or mix of two costing at most ``target``
    (every pair tried), None when no action is affordable."""
    best: float | None = None
    for i, j in itertools.product(range(acc.size), repeat=2):
        if cost[i] > target + 1e-12:
            continue
        if cost[j] <= target + 1e-12:
            value = max(acc[i], acc[j])
        else:
            p = (target - cost[i]) / (cost[j] - cost[i])
            value = (1 - p) * acc[i] + p * acc[j]
        best = value if best is None else max(best, value)
    return best


@settings(max_examples=150, deadline=None)
@given(multi_model_data(), st.floats(0.0, 1.5))
def test_single_model_uniform_is_the_best_mix_of_two_adjacent_hull_actions(
    data: EvalData, where: float
) -> None:
    """At B, a model's uniform baseline equals the best mix of two of that model's actions (all
    pairs tried) and mixes two adjacent vertices of that model's hull; below its cheapest action
    it is unavailable."""
    for model, cols in model_columns(data.actions).items():
        mean_acc = data.test.acc[:, cols].mean(axis=0)
        mean_cost = data.test.cost[:, cols].mean(axis=0)
        target = float(mean_cost.min() * 0.5 + where * mean_cost.max())
        brute = _brute_best_mix(mean_acc, mean_cost, target)
        if brute is None:
            with pytest.raises(Unavailable, match="cannot run at this budget"):
                single_model(data, target, model)
            continue
        out = single_model(data, target, model)
        assert out.acc.mean() == pytest.approx(brute, abs=1e-9)
        assert out.cost.mean() <= target * (1 + 1e-9)
        assert out.probs is not None and set(np.flatnonzero(out.probs.sum(axis=0))) <= set(cols)
        xs, ys = upper_hull(mean_cost, mean_acc)
        lo, hi = (cols.index(data.actions.index(out.params[s])) for s in ("lo", "hi"))
        vertices = [
            int(np.flatnonzero((mean_cost == x) & (mean_acc == y))[0])
            for x, y in zip(xs, ys, strict=True)
        ]
        if lo != hi and 0 < out.params["p_hi"] < 1:
            assert lo in vertices and hi in vertices
            assert vertices.index(hi) == vertices.index(lo) + 1


@settings(max_examples=150, deadline=None)
@given(multi_model_data(), st.floats(0.0, 1.0))
def test_random_route_meets_the_budget(data: EvalData, where: float) -> None:
    """Random routing spends exactly the target (when not above every model at the largest
    common k); each problem's action probabilities sum to 1; models equally likely when the
    target affords one sample of each."""
    mean_cost = data.test.cost.mean(axis=0)
    columns = model_columns(data.actions)
    ones = [mean_cost[cols[0]] for cols in columns.values()]  # k = 1 is every model's first
    common = min(len(c) for c in columns.values())
    tops = [mean_cost[cols[common - 1]] for cols in columns.values()]
    target = float(min(ones) + where * (np.mean(tops) - min(ones)))
    out = random_route(data, target)
    assert out.probs is not None
    np.testing.assert_allclose(out.probs.sum(axis=1), 1.0)
    assert out.cost.mean() == pytest.approx(target, rel=1e-9)
    weights = list(out.params["models"].values())
    if np.mean(ones) <= target:
        np.testing.assert_allclose(weights, 1 / len(columns))
    with pytest.raises(Unavailable):
        random_route(data, min(ones) * 0.5)


def test_best_single_is_chosen_on_train_not_test() -> None:
    """Model a is better on train, model b on test: best-single runs a (and scores it on test)."""
    actions = ["a:maj@1", "a:maj@2", "b:maj@1", "b:maj@2"]
    cost = np.tile([1.0, 2.0, 1.0, 2.0], (4, 1))
    test_acc = np.tile([0.3, 0.4, 0.8, 0.9], (4, 1))
    train_acc = np.tile([0.9, 0.95, 0.2, 0.3], (3, 1))
    data = _data(actions, test_acc, cost, train_acc)
    out = best_single(data, 1.5)
    assert out.params["model"] == "a"
    assert out.params["train_accuracy"] == pytest.approx({"a": 0.925, "b": 0.25})
    assert out.acc.mean() == pytest.approx(single_model(data, 1.5, "a").acc.mean())
    assert out.acc.mean() < single_model(data, 1.5, "b").acc.mean()  # b was better on test


def test_a_model_that_cannot_run_at_the_budget_is_skipped_with_its_reason() -> None:
    actions = ["big:maj@1", "small:maj@1", "small:maj@2"]
    cost = np.tile([10.0, 1.0, 2.0], (2, 1))
    data = _data(actions, np.full((2, 3), 0.5), cost, np.full((2, 3), 0.5))
    with pytest.raises(Unavailable, match=r"costs 10 per problem.*above the target 2"):
        single_model(data, 2.0, "big")
    assert best_single(data, 2.0).params["train_accuracy"] == {"small": 0.5}


def test_multi_model_baselines_apply_to_several_models_only() -> None:
    assert applicable(NAMES, ["maj@1", "maj@2"]) == tuple(n for n in NAMES if n not in MULTI_MODEL)
    assert applicable(NAMES, ["a:maj@1", "b:maj@1"]) == NAMES
    assert parse_action("openai/gpt-4o:maj@4") is not None
    assert parse_action("openai/gpt-4o:maj@4").model == "openai/gpt-4o"  # type: ignore[union-attr]
    assert parse_action("maj@0") is None


@settings(max_examples=200, deadline=None)
@given(
    # Costs on a grid of cents: two costs 1e-17 apart are one cost to the solver's tolerance
    # but two vertices to the hull (a difference no real price table makes).
    st.lists(
        st.tuples(st.integers(10, 1000).map(lambda c: c / 100), st.floats(0.0, 1.0)),
        min_size=1,
        max_size=6,
    ),
    st.floats(0.0, 1.0),
)
def test_upper_hull_interpolates_to_uniform(
    points: list[tuple[float, float]], where: float
) -> None:
    """Interpolating the hull's vertices gives uniform's accuracy at any cost it can run at."""
    cost = np.array([p[0] for p in points])
    acc = np.array([p[1] for p in points])
    xs, ys = upper_hull(cost, acc)
    c = float(cost.min() + where * (cost.max() - cost.min()))
    mix = uniform_at_budget(acc[None, :], cost[None, :], c)
    assert mix is not None
    assert float(np.interp(c, xs, ys)) == pytest.approx(mix.accuracy, abs=1e-9)
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) > 0)


def _rec(policy: str, cost: float, accuracy: float, **params: Any) -> dict[str, Any]:
    return {"policy": policy, "cost": cost, "accuracy": accuracy, "params": params}


def test_share_of_the_strongest_models_cost_on_a_hand_made_case() -> None:
    """Strong model s: maj@1 accuracy 0.9 at cost 10.  Weak model w: maj@1 0.5 at 1, maj@4 0.7
    at 4.  Uniform's hull reaches 0.9 only at s itself (share 1); w alone never; a learned
    policy at (2, 0.6) and (6, 0.95) reaches it at 2 + 4 * 0.3 / 0.35 by interpolation; the
    oracle sends the problem w solves to w:maj@1 and the other to s: cost (1 + 10) / 2."""
    actions = ["s:maj@1", "w:maj@1", "w:maj@4"]
    acc = np.array([[1.0, 1.0, 1.0], [0.8, 0.0, 0.4]])
    cost = np.tile([10.0, 1.0, 4.0], (2, 1))
    data = _data(actions, acc, cost, acc)
    records = [
        _rec("uniform", 3.0, 0.633),
        _rec("single:w", 3.0, 0.633),
        _rec("imitate", 2.0, 0.6),
        _rec("imitate", 6.0, 0.95),
        _rec("cheap", 3.0, 0.95),
        _rec("oracle", 3.0, 0.8),
    ]
    out = strongest_shares(data, records)
    assert out is not None
    assert (out["model"], out["action"], out["cost"]) == ("s", "s:maj@1", 10.0)
    assert out["accuracy"] == pytest.approx(0.9)
    shares = {n: e["share"] for n, e in out["policies"].items()}
    assert shares["uniform"] == pytest.approx(1.0)
    assert shares["single:w"] is None
    assert out["policies"]["single:w"]["how"] == "not reached at any cost"
    assert shares["imitate"] == pytest.approx((2 + 4 * 0.3 / 0.35) / 10)
    assert shares["cheap"] == pytest.approx(0.3)
    assert out["policies"]["cheap"]["how"].startswith("at most")
    assert shares["oracle"] == pytest.approx(0.55, abs=1e-9)
    one_model = _data(["maj@1", "maj@2"], acc[:, :2], cost[:, :2], acc[:, :2])
    assert strongest_shares(one_model, records) is None


def test_cost_to_reach_interpolates_and_says_when_not_reached() -> None:
    assert cost_to_reach(np.array([1.0, 3.0]), np.array([0.2, 0.6]), 0.4).cost == pytest.approx(2)
    assert cost_to_reach(np.array([1.0, 3.0]), np.array([0.2, 0.6]), 0.7).cost is None
    first = cost_to_reach(np.array([3.0, 1.0]), np.array([0.9, 0.5]), 0.5)
    assert first.cost == 1.0 and first.at_most


def _ok(*args: Any) -> Any:
    res = run_cli(*args)
    assert res.exit_code == 0, f"{args[0]}: {res.stderr}"
    return res


def _date_slice(
    shared_data: Path, tmp: Path, n: int, test_frac: str, no_gpt4_below: int = 0
) -> dict[str, Path]:
    """The first ``n`` Date questions (problems, then imported samples with dollar costs), without
    gpt-4's samples of the first ``no_gpt4_below``."""
    import polars as pl

    source = shared_file(shared_data, "date_3models_mot_samples.parquet")
    questions = shared_file(shared_data, "date_problems.jsonl")
    (
        pl.read_parquet(source)
        .filter(pl.col("problem_id") < n)
        .filter(~((pl.col("model") == "gpt-4") & (pl.col("problem_id") < no_gpt4_below)))
        .with_columns(pl.col("model").replace_strict(PRICES).alias("cost_usd"))
        .drop("tokens")
        .write_parquet(tmp / "date.parquet")
    )
    p = {n: tmp / n for n in ("problems.parquet", "samples.parquet", "curves.parquet")}
    _ok("data", "jsonl", "--source", questions, "--grader", "exact", "--limit", str(n),
        "--test-frac", test_frac, "--out", p["problems.parquet"])  # fmt: skip
    _ok("import", tmp / "date.parquet", "--problems", p["problems.parquet"],
        "--out", p["samples.parquet"])  # fmt: skip
    return p


def test_cli_routing_on_a_slice_of_the_date_file(shared_data: Path, tmp_path: Path) -> None:
    """import -> estimate --cost usd -> solve -> train --learner imitate -> evaluate on 90 Date
    questions of three models: the multi-model baselines and the share of gpt-4's cost are in
    report.json; gpt-4 alone cannot run at $0.004 per question and is left out."""
    p = _date_slice(shared_data, tmp_path, 90, "0.4")
    _ok("estimate", p["samples.parquet"], "--problems", p["problems.parquet"], "--cost", "usd",
        "--ks", "1,2,4", "--out", p["curves.parquet"])  # fmt: skip
    alloc = tmp_path / "alloc.parquet"
    _ok("solve", p["curves.parquet"], "--problems", p["problems.parquet"], "--budget", "0.004",
        "--out", alloc)  # fmt: skip
    _ok("train", alloc, "--problems", p["problems.parquet"], "--learner", "imitate",
        "--folds", "3", "--n-estimators", "20", "--out", tmp_path / "router")  # fmt: skip
    res = _ok("evaluate", f"router={tmp_path / 'router'}", "--budgets", "0.004",
              "--no-plot", "--bootstrap", "200", "--out", tmp_path / "report", "--json")  # fmt: skip
    report = json.loads(res.stdout)
    names = {r["policy"] for r in report["policies"]}
    assert {"single:gpt-3.5-turbo", "single:llama-2-13b", "best-single", "random-route"} <= names
    assert "single:gpt-4" not in names  # $0.0197 a sample: not at $0.004 per question
    assert {"router", "oracle", "uniform"} <= names
    assert set(report["settings"]["baselines"]) >= {"single", "best-single", "random-route"}
    best = next(r for r in report["policies"] if r["policy"] == "best-single")
    assert best["params"]["model"] in ("gpt-3.5-turbo", "llama-2-13b")
    router = next(r for r in report["policies"] if r["policy"] == "router")
    assert "best-single" in router.get("gain_vs", {})
    strongest = report["strongest"]
    assert strongest["model"] == "gpt-4" and strongest["action"] == "gpt-4:maj@1"
    assert set(strongest["policies"]) == names
    assert strongest["policies"]["uniform"]["share"] <= 1.0 + 1e-9  # gpt-4:maj@1 is an action
    md = (tmp_path / "report" / "report.md").read_text()
    assert "Share of the strongest model's cost (gpt-4)" in md and "$ per question" in md
    assert "$0.004" in res.stderr
    # why the sequential baselines cannot run here: said once, not again for each of them
    said = [x for x in res.stderr.splitlines() if x.startswith("warning:") and "replayed" in x]
    assert len(said) == 1, said
    # the router's actions are checked model by model: a model's maj@2 cheaper than its maj@1
    policy = json.loads((tmp_path / "router" / "policy.json").read_text())
    names = [a["name"] for a in policy["actions"]]
    assert "gpt-4:maj@1" in names and "llama-2-13b:maj@4" in names  # prices 130x apart: fine
    policy["actions"][names.index("gpt-3.5-turbo:maj@2")]["cost"] = 0.0001
    (tmp_path / "router" / "policy.json").write_text(json.dumps(policy))
    res = run_cli("evaluate", tmp_path / "router", "--budgets", "0.004", "--no-plot",
                  "--out", tmp_path / "report2")  # fmt: skip
    assert res.exit_code != 0
    assert "less than gpt-3.5-turbo:maj@1's" in res.stderr and "actions[" in res.stderr


def test_k_each_over_several_models_picks_the_model_on_train() -> None:
    """In samples, every model's maj@2 costs 2: k-each runs the one best on train."""
    from ttcalloc.core.baselines import same_k_each

    actions = ["a:maj@1", "a:maj@2", "b:maj@1", "b:maj@2"]
    cost = np.tile([1.0, 2.0, 1.0, 2.0], (3, 1))
    data = _data(
        actions, np.tile([0.1, 0.2, 0.8, 0.9], (3, 1)), cost, np.tile([0.9, 0.95, 0.2, 0.3], (3, 1))
    )
    assert same_k_each(data, 2.0).params["action"] == "a:maj@2"


def test_test_problems_a_model_lacks_are_named(shared_data: Path, tmp_path: Path) -> None:
    """Samples with no gpt-4 sample of a few questions: estimate says so in one line, and
    evaluate names the actions its left-out test problems lack."""
    p = _date_slice(shared_data, tmp_path, 60, "0.5", no_gpt4_below=20)
    res = _ok("estimate", p["samples.parquet"], "--problems", p["problems.parquet"],
              "--cost", "usd", "--out", p["curves.parquet"])  # fmt: skip
    assert "gpt-4 has no samples of 20 of the 60 problems" in res.stderr, res.stderr
    alloc = tmp_path / "alloc.parquet"
    _ok("solve", p["curves.parquet"], "--problems", p["problems.parquet"], "--budget", "0.004",
        "--out", alloc)  # fmt: skip
    _ok("train", alloc, "--problems", p["problems.parquet"], "--learner", "imitate",
        "--folds", "3", "--n-estimators", "20", "--out", tmp_path / "router")  # fmt: skip
    res = _ok("evaluate", tmp_path / "router", "--no-plot", "--bootstrap", "200",
              "--out", tmp_path / "report")  # fmt: skip
    line = next(x for x in res.stderr.splitlines() if "lack some action" in x)
    assert "(gpt-4:maj@1 on " in line and line.startswith("warning: "), line
