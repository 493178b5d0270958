"""The budgeted allocation problem, solved exactly (Lagrangian relaxation on concave hulls).

Problem: choose an action ``a_i`` per problem to maximize ``mean_i p_i(a_i)`` subject to
``mean_i c_i(a_i) <= B``.  Inputs are dense ``(P, A)`` arrays of accuracy and cost with NaN where
an action is unavailable for a problem.

Exact method: the Lagrangian choice ``argmax_a p_i(a) - lambda c_i(a)`` (ties to the cheaper
action) only ever picks vertices of each problem's upper concave hull in the (cost, accuracy)
plane, moving from vertex j-1 to j when lambda falls below the slope of hull edge j.  Sorting all
edges of all problems by slope once gives mean cost as a step function of lambda, and lambda* is
read off where it crosses B.  Edges whose slope equals lambda* are tied: taking whole edges while
the budget allows and a fraction of the last one hits B exactly, which is the optimum of the LP
relaxation; rounding that one fraction down gives an integer solution within
``max_i gap_i / P`` of it.

Bisection method (the paper's): binary search on lambda for the smallest value whose Lagrangian
choice meets the budget, then the same mixing between the two sides.  Kept as a cross-check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
REL_TOL = 1e-12


class InfeasibleBudget(ValueError):
    """The budget is below the mean cost of every problem's cheapest action."""

    def __init__(self, budget: float, minimum: float) -> None:
        super().__init__(f"budget {budget:g} is below the minimum feasible mean cost {minimum:.6g}")
        self.budget = budget
        self.minimum = minimum


@dataclass(frozen=True)
class Hulls:
    """Per-problem upper concave hulls, in a column layout (actions sorted by cost per problem).

    Arrays are ``(A, P)``: row ``j`` holds, for every problem, its ``j``-th cheapest action.
    """

    order: IntArray  # (A, P) action index at sorted position j
    cost: FloatArray  # (A, P) sorted costs (inf where unavailable)
    acc: FloatArray  # (A, P) sorted accuracies (-inf where unavailable)
    is_vertex: NDArray[np.bool_]  # (A, P) position j is a hull vertex
    slope: FloatArray  # (A, P) slope of the hull edge ending at vertex j (nan elsewhere)
    step: FloatArray  # (A, P) cost increase of that edge (nan elsewhere)
    first: IntArray  # (P,) position of the cheapest vertex
    last: IntArray  # (P,) position of the most accurate (last) vertex

    def _at(self, table: FloatArray, pos: IntArray) -> FloatArray:
        out: FloatArray = table[pos, np.arange(pos.shape[0])]
        return out

    @property
    def min_cost(self) -> FloatArray:
        return self._at(self.cost, self.first)

    @property
    def gap(self) -> FloatArray:
        """Best accuracy minus the cheapest action's accuracy, per problem."""
        return self._at(self.acc, self.last) - self._at(self.acc, self.first)

    def vertices(self, problem: int) -> list[int]:
        """Action indices of one problem's hull vertices, cheapest first."""
        return [int(x) for x in self.order[self.is_vertex[:, problem], problem]]


@dataclass(frozen=True)
class Solution:
    """The oracle's allocation at one budget."""

    budget: float
    lam: float
    action_lo: IntArray  # (P,) action index of the deterministic (rounded-down) choice
    action_hi: IntArray  # (P,) costlier tied action (= action_lo where none)
    p_hi: FloatArray  # (P,) probability of action_hi (non-zero for at most one problem)
    expected_cost: float  # mean cost of the mixed solution (== budget unless slack)
    objective: float  # mean accuracy of the mixed solution (== the LP bound)
    integer_cost: float  # mean cost of the rounded-down solution (<= budget)
    integer_objective: float  # mean accuracy of the rounded-down solution
    max_gap: float  # max over problems of best minus cheapest-hull accuracy
    slack: bool  # the budget affords every problem's best action

    @property
    def lp_bound(self) -> float:
        return self.objective


def check_inputs(acc: FloatArray, cost: FloatArray) -> None:
    """Raise ValueError for shapes or values the oracle cannot use."""
    if acc.shape != cost.shape or acc.ndim != 2:
        raise ValueError("accuracy and cost must be (problems, actions) arrays of one shape")
    if acc.shape[0] == 0:
        raise ValueError("no problems to allocate")
    avail = ~np.isnan(acc)
    if not np.array_equal(avail, ~np.isnan(cost)):
        raise ValueError("accuracy and cost disagree on which actions are available")
    if not avail.any(axis=1).all():
        raise ValueError("some problems have no available action")
    if np.isinf(acc).any() or np.isinf(cost).any():
        raise ValueError("accuracy and cost must be finite")
    if (cost[avail] < 0).any():
        raise ValueError("costs must be non-negative")
    if ((acc[avail] < 0) | (acc[avail] > 1)).any():
        raise ValueError("accuracies must be in [0, 1]")


def upper_hulls(acc: FloatArray, cost: FloatArray) -> Hulls:
    """The upper concave hull of each problem's (cost, accuracy) points, dominated points dropped.

    Vertices have strictly increasing cost and accuracy and strictly decreasing edge slopes.
    Among equal points the action with the lower index is kept.  Vectorized over problems; the
    Python loops run over the (few) actions only.
    """
    with np.errstate(invalid="ignore", divide="ignore"):  # unavailable actions are masked
        return _upper_hulls(acc, cost)


def _sorted_columns(acc: FloatArray, cost: FloatArray) -> tuple[IntArray, FloatArray, FloatArray]:
    """Each row's actions sorted by cost, then accuracy descending, then index; as (A, P) arrays."""
    n_prob, n_act = acc.shape
    # Fast path: one permutation sorts every row (costs proportional to k, say).  Checked one
    # sorted position at a time, so no (A, P) temporaries beyond the two outputs.
    c0 = np.where(np.isnan(cost[0]), np.inf, cost[0])
    a0 = np.where(np.isnan(acc[0]), -np.inf, acc[0])
    guess = np.lexsort((np.arange(n_act), -a0, c0))
    ct = np.empty((n_act, n_prob))
    at = np.empty((n_act, n_prob))
    for j, col in enumerate(guess):
        np.copyto(ct[j], cost[:, col])
        np.copyto(at[j], acc[:, col])
    np.copyto(ct, np.inf, where=np.isnan(ct))
    np.copyto(at, -np.inf, where=np.isnan(at))
    ordered = True
    dc, da = np.empty(n_prob), np.empty(n_prob)
    with np.errstate(invalid="ignore"):
        for j in range(1, n_act):
            np.subtract(ct[j], ct[j - 1], out=dc)
            np.subtract(at[j], at[j - 1], out=da)
            later = bool(guess[j] > guess[j - 1])
            ok = (dc > 0) | ((dc == 0) & ((da < 0) | ((da == 0) & later)))
            if not ok.all():
                ordered = False
                break
    if ordered:
        return np.broadcast_to(guess[:, None], (n_act, n_prob)), ct, at
    c = np.where(np.isnan(cost), np.inf, cost)
    a = np.where(np.isnan(acc), -np.inf, acc)
    order = np.lexsort((np.broadcast_to(np.arange(n_act), c.shape), -a, c), axis=1)
    ct = np.ascontiguousarray(np.take_along_axis(c, order, axis=1).T)
    at = np.ascontiguousarray(np.take_along_axis(a, order, axis=1).T)
    return np.ascontiguousarray(order.T), ct, at


def _upper_hulls(acc: FloatArray, cost: FloatArray) -> Hulls:
    n_prob, n_act = acc.shape
    order, ct, at = _sorted_columns(acc, cost)
    # Point j (in sorted order) is a hull vertex iff some line through it with slope >= 0 has
    # every other point strictly below: max(0, max_{k>j} slope(j,k)) < min_{i<j} slope(i,j).
    # Equal costs: a later point of equal cost is never above (sorted by accuracy), so it gets
    # slope -inf from the earlier one and is dropped; duplicates keep the first (lowest index).
    left_min = np.full((n_act, n_prob), np.inf)
    right_max = np.zeros((n_act, n_prob))
    # every action available at a distinct cost (the usual case): plain slopes, no masking
    plain = bool(np.isfinite(ct).all() and np.isfinite(at).all() and (ct[1:] > ct[:-1]).all())
    slope, run = np.empty(n_prob), np.empty(n_prob)  # reused: fresh 8 MB arrays cost page faults
    for j in range(1, n_act):
        for i in range(j):
            if plain:
                np.subtract(at[j], at[i], out=slope)
                np.subtract(ct[j], ct[i], out=run)
                np.divide(slope, run, out=slope)
            else:
                dc = ct[j] - ct[i]
                pos = dc > 0
                slope = np.where(pos, (at[j] - at[i]) / np.where(pos, dc, 1.0), -np.inf)
                slope[np.isnan(slope)] = -np.inf
            np.minimum(left_min[j], slope, out=left_min[j])
            np.maximum(right_max[i], slope, out=right_max[i])
    is_vertex = (right_max < left_min) & np.isfinite(ct)
    # edge slopes between consecutive vertices, scanning positions in cost order
    edge = np.full((n_act, n_prob), np.nan)
    step = np.full((n_act, n_prob), np.nan)
    prev_c = np.full(n_prob, np.nan)
    prev_a = np.full(n_prob, np.nan)
    has_prev = np.empty(n_prob, dtype=bool)
    for j in range(n_act):  # in place: fresh (P,) temporaries cost page faults at 10^6
        v = is_vertex[j]
        np.isnan(prev_c, out=has_prev)
        np.logical_not(has_prev, out=has_prev)
        has_prev &= v
        np.subtract(ct[j], prev_c, out=step[j], where=has_prev)
        np.subtract(at[j], prev_a, out=edge[j], where=has_prev)
        np.divide(edge[j], step[j], out=edge[j], where=has_prev)
        np.copyto(prev_c, ct[j], where=v)
        np.copyto(prev_a, at[j], where=v)
    first = np.argmax(is_vertex, axis=0).astype(np.int64)
    last = (n_act - 1 - np.argmax(is_vertex[::-1], axis=0)).astype(np.int64)
    return Hulls(order, ct, at, is_vertex, edge, step, first, last)


def lagrangian_choice(acc: FloatArray, cost: FloatArray, lam: float) -> IntArray:
    """``argmax_a acc - lam * cost`` per problem, ties to the cheaper action (then lower index)."""
    score = np.where(np.isnan(acc), -np.inf, acc - lam * np.nan_to_num(cost, nan=0.0))
    best = score.max(axis=1, keepdims=True)
    tied_cost = np.where(score >= best, np.nan_to_num(cost, nan=np.inf), np.inf)
    choice: IntArray = np.argmin(tied_cost, axis=1).astype(np.int64)
    return choice


def _finish(
    acc: FloatArray,
    cost: FloatArray,
    budget: float,
    lam: float,
    lo: IntArray,
    hi: IntArray,
    frac: FloatArray,
    hulls: Hulls,
    slack: bool,
) -> Solution:
    rows = np.arange(acc.shape[0])
    a_lo, a_hi = acc[rows, lo], acc[rows, hi]
    c_lo, c_hi = cost[rows, lo], cost[rows, hi]
    gap = hulls.gap
    return Solution(
        budget=budget,
        lam=lam,
        action_lo=lo,
        action_hi=hi,
        p_hi=frac,
        expected_cost=float(np.mean(c_lo + frac * (c_hi - c_lo))),
        objective=float(np.mean(a_lo + frac * (a_hi - a_lo))),
        integer_cost=float(np.mean(c_lo)),
        integer_objective=float(np.mean(a_lo)),
        max_gap=float(gap.max()),
        slack=slack,
    )


def _lambda_star(
    slopes: FloatArray, steps: FloatArray, remaining: float, sort_all_below: int = 400_000
) -> float | None:
    """The slope of the first edge, in decreasing slope order, whose cost no longer fits.

    ``remaining`` is the budget left after every problem's cheapest vertex.  None when every
    edge fits (the budget is slack).  Large inputs avoid a full sort: a random sample brackets
    the answer, and only the edges inside the bracket are sorted (falling back to a full sort
    if the bracket misses).
    """
    if float(steps.sum()) <= remaining:
        return None
    candidates = np.arange(slopes.size)
    spent = 0.0
    if slopes.size > sort_all_below:
        rng = np.random.default_rng(0)
        sample = rng.integers(0, slopes.size, min(100_000, slopes.size))
        desc = np.argsort(-slopes[sample])
        est = np.cumsum(steps[sample][desc]) * (slopes.size / sample.size)
        at = int(np.searchsorted(est, remaining))
        margin = max(2_000, sample.size // 50)
        s_hi = float(slopes[sample][desc][max(at - margin, 0)])
        s_lo = float(slopes[sample][desc][min(at + margin, sample.size - 1)])
        above = slopes > s_hi
        inside = ~above & (slopes >= s_lo)
        spent_above = float(steps[above].sum())
        if spent_above <= remaining < spent_above + float(steps[inside].sum()):
            candidates = np.flatnonzero(inside)
            spent = spent_above
    order = candidates[np.argsort(-slopes[candidates], kind="stable")]
    cum = spent + np.cumsum(steps[order])
    first_over = int(np.searchsorted(cum, remaining, side="right"))
    return float(slopes[order[min(first_over, order.size - 1)]])


def solve_exact(
    acc: FloatArray, cost: FloatArray, budget: float, seed: int = 0, hulls: Hulls | None = None
) -> Solution:
    """Exact solution by sorting hull-edge slopes (see the module docstring)."""
    check_inputs(acc, cost)
    hulls = hulls or upper_hulls(acc, cost)
    n_prob = acc.shape[0]
    cols = np.arange(n_prob)
    total = budget * n_prob
    base = float(hulls.min_cost.sum())
    if total < base * (1 - REL_TOL) - REL_TOL:
        raise InfeasibleBudget(budget, base / n_prob)
    limit = total * (1 + REL_TOL) + REL_TOL
    is_edge = ~np.isnan(hulls.slope)
    slopes, steps = hulls.slope[is_edge], hulls.step[is_edge]
    lam_or_none = _lambda_star(slopes, steps, limit - base)
    frac = np.zeros(n_prob)
    hi_pos = None
    if lam_or_none is None:  # every edge fits: the budget is slack
        lam, slack = 0.0, True
        taken = is_edge
    else:
        lam, slack = lam_or_none, False
        taken = is_edge & (hulls.slope > lam)
        spent = base + float(hulls.step[taken].sum())
        # edges tied at lambda*: whole ones in a seeded order while they fit, then one fraction
        flat = np.flatnonzero(is_edge)
        tied = flat[np.flatnonzero(slopes == lam)]
        tied = tied[np.random.default_rng(seed).permutation(tied.size)]
        tied_steps = hulls.step.ravel()[tied]
        fits = spent + np.cumsum(tied_steps) <= limit
        taken = taken.copy()
        taken.ravel()[tied[fits]] = True
        spent += float(tied_steps[fits].sum())
        if (~fits).any():
            j, p = divmod(int(tied[~fits][0]), n_prob)
            frac[p] = max(0.0, min(1.0, (total - spent) / hulls.step[j, p]))
            hi_pos = (j, p)
    # the chosen vertex: the last position reached through taken edges
    pos = hulls.first.copy()
    for j in range(hulls.order.shape[0]):
        pos = np.where(taken[j], j, pos)
    lo = hulls.order[pos, cols].astype(np.int64)
    hi = lo.copy()
    if hi_pos is not None and frac[hi_pos[1]] > 0:
        hi[hi_pos[1]] = hulls.order[hi_pos]
    return _finish(acc, cost, budget, lam, lo, hi, frac, hulls, slack)


def mean_cost_at(acc: FloatArray, cost: FloatArray, lam: float) -> float:
    """Mean cost of the Lagrangian choice at ``lam`` (non-increasing in ``lam``)."""
    choice = lagrangian_choice(acc, cost, lam)
    return float(np.mean(cost[np.arange(acc.shape[0]), choice]))


def solve_bisect(
    acc: FloatArray,
    cost: FloatArray,
    budget: float,
    seed: int = 0,
    tol: float = 1e-13,
    max_iter: int = 200,
) -> Solution:
    """The paper's method: bisection on lambda, then mixing the two sides of lambda*."""
    check_inputs(acc, cost)
    hulls = upper_hulls(acc, cost)
    n_prob = acc.shape[0]
    rows = np.arange(n_prob)
    minimum = float(hulls.min_cost.mean())
    if budget < minimum * (1 - REL_TOL) - REL_TOL:
        raise InfeasibleBudget(budget, minimum)
    limit = budget * (1 + REL_TOL) + REL_TOL
    if mean_cost_at(acc, cost, 0.0) <= limit:
        choice = lagrangian_choice(acc, cost, 0.0)
        return _finish(acc, cost, budget, 0.0, choice, choice, np.zeros(n_prob), hulls, True)
    # above the steepest hull edge every problem takes its cheapest vertex
    finite = hulls.slope[np.isfinite(hulls.slope)]
    lo_lam, hi_lam = 0.0, (float(finite.max()) if finite.size else 0.0) * 2 + 1.0
    for _ in range(max_iter):
        if hi_lam - lo_lam <= tol * max(1.0, hi_lam):
            break
        mid = 0.5 * (lo_lam + hi_lam)
        if mean_cost_at(acc, cost, mid) <= limit:
            hi_lam = mid
        else:
            lo_lam = mid
    cheap = lagrangian_choice(acc, cost, hi_lam)  # meets the budget
    dear = lagrangian_choice(acc, cost, lo_lam)  # exceeds it
    c_cheap, c_dear = cost[rows, cheap], cost[rows, dear]
    spent = float(c_cheap.sum())
    total = budget * n_prob
    total_limit = total * (1 + REL_TOL) + REL_TOL
    lo, hi = cheap.copy(), cheap.copy()
    frac = np.zeros(n_prob)
    diff = np.flatnonzero(cheap != dear)
    rng = np.random.default_rng(seed)
    diff = diff[rng.permutation(diff.size)]
    for i in diff:  # the tied problems: whole upgrades while they fit, then one fraction
        step = c_dear[i] - c_cheap[i]
        if spent + step <= total_limit:
            lo[i] = hi[i] = dear[i]
            spent += step
        else:
            hi[i] = dear[i]
            frac[i] = max(0.0, min(1.0, (total - spent) / step))
            break
    # report lambda* as the hull slope it converged to (exact for a tie at that slope)
    return _finish(acc, cost, budget, hi_lam, lo, hi, frac, hulls, False)


def sample_actions(solution: Solution, seed: int) -> IntArray:
    """A deterministic action per problem: action_hi with probability p_hi (seeded)."""
    u = np.random.default_rng(seed).random(solution.p_hi.shape[0])
    return np.where(u < solution.p_hi, solution.action_hi, solution.action_lo)
