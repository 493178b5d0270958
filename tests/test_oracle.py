"""The exact oracle against LP and MILP solvers, bisection, and its own invariants."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from ttcalloc.core import oracle


@st.composite
def instances(
    draw: st.DrawFn, max_problems: int = 6, max_actions: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Random (accuracy, cost) arrays; some actions missing; ties and duplicates are likely."""
    p = draw(st.integers(1, max_problems))
    a = draw(st.integers(1, max_actions))
    grid = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
    # accuracies are ratios of sample counts: a 1e-6 grid, not arbitrary tiny floats that fall
    # below HiGHS's tolerances
    fine = st.floats(0.0, 1.0, allow_nan=False).map(lambda x: round(x, 6))
    acc = np.array(draw(st.lists(st.one_of(grid, fine), min_size=p * a, max_size=p * a))).reshape(
        p, a
    )
    # costs on a 1e-6 grid: real costs (samples, tokens, dollars) are never subnormal floats
    cost_vals = st.one_of(
        st.sampled_from([0.0, 1.0, 2.0, 4.0, 8.0]),
        st.floats(0.0, 10.0, allow_nan=False).map(lambda x: round(x, 6)),
    )
    cost = np.array(draw(st.lists(cost_vals, min_size=p * a, max_size=p * a))).reshape(p, a)
    missing = np.array(draw(st.lists(st.booleans(), min_size=p * a, max_size=p * a))).reshape(p, a)
    missing[:, 0] = False  # every problem keeps at least one action
    acc[missing] = np.nan
    cost[missing] = np.nan
    return acc, cost


def budget_for(acc: np.ndarray, cost: np.ndarray, u: float) -> float:
    """A feasible budget: between the cheapest and the most expensive mean cost."""
    lo = np.nanmin(cost, axis=1).mean()
    hi = np.nanmax(cost, axis=1).mean()
    return float(lo + u * (hi - lo) * 1.1)


def one_action_per_problem(p: int, a: int) -> np.ndarray:
    """Equality rows: each problem's action weights sum to one."""
    return np.kron(np.eye(p), np.ones((1, a)))


def lp_optimum(acc: np.ndarray, cost: np.ndarray, budget: float) -> float:
    p, a = acc.shape
    avail = ~np.isnan(acc)
    c = -np.where(avail, acc, 0.0).ravel()
    eq = one_action_per_problem(p, a)
    ub = np.where(avail, cost, 0.0).ravel()[None, :] / p
    bounds = [(0.0, 1.0 if ok else 0.0) for ok in avail.ravel()]
    res = linprog(
        c, A_ub=ub, b_ub=[budget], A_eq=eq, b_eq=np.ones(p), bounds=bounds, method="highs"
    )
    assert res.status == 0, res.message
    return float(-res.fun / p)


def milp_optimum(acc: np.ndarray, cost: np.ndarray, budget: float) -> float:
    p, a = acc.shape
    avail = ~np.isnan(acc)
    eq = one_action_per_problem(p, a)
    cons = [
        LinearConstraint(eq, 1.0, 1.0),
        LinearConstraint(np.where(avail, cost, 0.0).ravel()[None, :] / p, -np.inf, budget + 1e-12),
    ]
    res = milp(
        -np.where(avail, acc, 0.0).ravel(),
        constraints=cons,
        integrality=np.ones(p * a),
        bounds=Bounds(0.0, avail.ravel().astype(float)),
    )
    assert res.status == 0, res.message
    return float(-res.fun / p)


@settings(max_examples=300, deadline=None)
@given(instances(), st.floats(0.0, 1.0))
def test_exact_equals_lp_relaxation(inst: tuple[np.ndarray, np.ndarray], u: float) -> None:
    acc, cost = inst
    budget = budget_for(acc, cost, u)
    sol = oracle.solve_exact(acc, cost, budget)
    assert sol.objective == pytest.approx(lp_optimum(acc, cost, budget), abs=1e-9)
    assert sol.integer_cost <= budget + 1e-9  # floor rounding never exceeds the budget
    if sol.slack:
        assert sol.expected_cost <= budget + 1e-9
    else:
        assert sol.expected_cost == pytest.approx(budget, abs=1e-9)  # mixing hits B exactly
    assert np.count_nonzero(sol.p_hi) <= 1
    assert sol.objective - sol.integer_objective <= sol.max_gap / acc.shape[0] + 1e-12


@settings(max_examples=150, deadline=None)
@given(instances(max_problems=5, max_actions=3), st.floats(0.0, 1.0))
def test_rounded_solution_is_near_the_integer_optimum(
    inst: tuple[np.ndarray, np.ndarray], u: float
) -> None:
    acc, cost = inst
    budget = budget_for(acc, cost, u)
    sol = oracle.solve_exact(acc, cost, budget)
    best_integer = milp_optimum(acc, cost, budget)
    assert sol.integer_objective <= best_integer + 1e-9
    assert best_integer - sol.integer_objective <= sol.max_gap / acc.shape[0] + 1e-9


@settings(max_examples=200, deadline=None)
@given(instances(), st.floats(0.0, 1.0))
def test_bisect_agrees_with_exact(inst: tuple[np.ndarray, np.ndarray], u: float) -> None:
    acc, cost = inst
    budget = budget_for(acc, cost, u)
    exact = oracle.solve_exact(acc, cost, budget)
    bisect = oracle.solve_bisect(acc, cost, budget)
    assert bisect.objective == pytest.approx(exact.objective, abs=1e-9)
    assert bisect.expected_cost == pytest.approx(exact.expected_cost, abs=1e-9)
    assert bisect.slack == exact.slack
    assert bisect.lam == pytest.approx(exact.lam, rel=1e-9, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(instances(), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_objective_non_decreasing_in_budget(
    inst: tuple[np.ndarray, np.ndarray], u1: float, u2: float
) -> None:
    acc, cost = inst
    b1, b2 = sorted([budget_for(acc, cost, u1), budget_for(acc, cost, u2)])
    assert (
        oracle.solve_exact(acc, cost, b1).objective
        <= oracle.solve_exact(acc, cost, b2).objective + 1e-12
    )


@settings(max_examples=150, deadline=None)
@given(instances(), st.floats(0.0, 5.0), st.floats(0.0, 5.0))
def test_mean_cost_non_increasing_in_lambda(
    inst: tuple[np.ndarray, np.ndarray], l1: float, l2: float
) -> None:
    acc, cost = inst
    lo, hi = sorted([l1, l2])
    assert oracle.mean_cost_at(acc, cost, hi) <= oracle.mean_cost_at(acc, cost, lo) + 1e-12


@settings(max_examples=200, deadline=None)
@given(instances(max_problems=1, max_actions=5), st.floats(0.0, 3.0))
def test_hull_contains_every_lagrangian_choice(
    inst: tuple[np.ndarray, np.ndarray], lam: float
) -> None:
    """For any lambda, the Lagrangian choice is a hull vertex (same score), so the hull loses nothing."""
    acc, cost = inst
    hull = oracle.upper_hulls(acc, cost)
    verts = hull.vertices(0)
    choice = oracle.lagrangian_choice(acc, cost, lam)[0]
    score = acc[0] - lam * cost[0]
    assert np.nanmax(score[verts]) == pytest.approx(score[choice], abs=1e-12)
    assert np.all(np.diff(cost[0, verts]) > 0)
    assert np.all(np.diff(acc[0, verts]) > 0)
    slopes = np.diff(acc[0, verts]) / np.diff(cost[0, verts])
    assert np.all(np.diff(slopes) < 0)  # concave


def test_brute_force_on_a_tiny_instance() -> None:
    acc = np.array([[0.2, 0.6, 0.7], [0.5, 0.55, 0.9], [0.0, 0.5, 0.5]])
    cost = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    for budget in [1.0, 1.5, 2.0, 2.5, 3.0, 4.0]:
        best = max(
            np.mean(acc[range(3), list(ch)])
            for ch in product(range(3), repeat=3)
            if np.mean(cost[range(3), list(ch)]) <= budget + 1e-12
        )
        sol = oracle.solve_exact(acc, cost, budget)
        assert sol.integer_objective <= best + 1e-12
        assert best - sol.integer_objective <= sol.max_gap / 3 + 1e-12


def test_infeasible_and_slack_budgets() -> None:
    acc = np.array([[0.2, 0.6], [0.5, 0.5]])
    cost = np.array([[1.0, 3.0], [1.0, 3.0]])
    with pytest.raises(oracle.InfeasibleBudget) as info:
        oracle.solve_exact(acc, cost, 0.5)
    assert info.value.minimum == 1.0
    slack = oracle.solve_exact(acc, cost, 10.0)
    assert slack.slack and slack.lam == 0.0
    # problem 2 gets its cheapest best action (maj@1 ties maj@3 at 0.5)
    assert slack.action_lo.tolist() == [1, 0] and slack.expected_cost == 2.0


@pytest.mark.parametrize(
    ("acc", "cost", "message"),
    [
        ([[0.5, np.inf]], [[1.0, 2.0]], "finite"),
        ([[0.5, 0.6]], [[1.0, -2.0]], "non-negative"),
        ([[0.5, 1.6]], [[1.0, 2.0]], r"\[0, 1\]"),
        ([[np.nan, np.nan]], [[np.nan, np.nan]], "no available action"),
    ],
)
def test_bad_values_are_rejected(
    acc: list[list[float]], cost: list[list[float]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        oracle.solve_exact(np.array(acc), np.array(cost), 1.0)


def test_sampled_actions_follow_the_mixing_probability() -> None:
    acc = np.array([[0.0, 1.0]] * 1)
    cost = np.array([[0.0, 1.0]] * 1)
    sol = oracle.solve_exact(acc, cost, 0.3)
    assert sol.p_hi[0] == pytest.approx(0.3)
    draws = [oracle.sample_actions(sol, seed)[0] for seed in range(2000)]
    assert np.mean(draws) == pytest.approx(0.3, abs=0.04)
    assert oracle.sample_actions(sol, 7).tolist() == oracle.sample_actions(sol, 7).tolist()


@pytest.mark.parametrize("budget", [1.2, 2.0, 3.7, 6.5])
def test_sampled_bracket_finds_the_same_lambda_as_a_full_sort(budget: float) -> None:
    """Large instances bracket lambda* from a sample; it must equal the full-sort answer."""
    rng = np.random.default_rng(3)
    n, ks = 20_000, np.array([1.0, 2.0, 4.0, 8.0])
    p = rng.beta(1, 1, n)
    acc = np.round(np.clip(p[:, None] ** (1 / np.sqrt(ks)) + rng.normal(0, 0.02, (n, 4)), 0, 1), 3)
    cost = np.tile(ks, (n, 1))
    hulls = oracle.upper_hulls(acc, cost)
    is_edge = ~np.isnan(hulls.slope)
    slopes, steps = hulls.slope[is_edge], hulls.step[is_edge]
    remaining = budget * n - hulls.min_cost.sum()
    full = oracle._lambda_star(slopes, steps, remaining)
    sampled = oracle._lambda_star(slopes, steps, remaining, sort_all_below=0)
    assert sampled == full
    sol = oracle.solve_exact(acc, cost, budget, hulls=hulls)
    assert sol.expected_cost == pytest.approx(budget, abs=1e-9)
    assert sol.objective == pytest.approx(
        oracle.solve_bisect(acc, cost, budget).objective, abs=1e-9
    )


@st.composite
def tied_instances(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Many problems with the same costs and grid accuracies: lambda* is tied across problems."""
    p = draw(st.integers(2, 12))
    grid = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
    acc = np.sort(
        np.array(draw(st.lists(grid, min_size=p * 4, max_size=p * 4))).reshape(p, 4), axis=1
    )
    cost = np.tile(np.array([1.0, 2.0, 4.0, 8.0]), (p, 1))
    return acc, cost


@settings(max_examples=300, deadline=None)
@given(tied_instances(), st.floats(0.0, 1.0))
def test_ties_across_problems(inst: tuple[np.ndarray, np.ndarray], u: float) -> None:
    acc, cost = inst
    budget = budget_for(acc, cost, u)
    exact = oracle.solve_exact(acc, cost, budget)
    bisect = oracle.solve_bisect(acc, cost, budget)
    lp = lp_optimum(acc, cost, budget)
    for sol in (exact, bisect):
        assert sol.objective == pytest.approx(lp, abs=1e-9)
        assert sol.integer_cost <= budget + 1e-9
        assert np.count_nonzero(sol.p_hi) <= 1
        if not sol.slack:
            assert sol.expected_cost == pytest.approx(budget, abs=1e-9)
