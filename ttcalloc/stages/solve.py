"""``ttcalloc solve``: the budgeted oracle allocation from curves, at one or several budgets."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.artifacts.frames import to_dense
from ttcalloc.artifacts.io import check_known_ids, check_output, read_artifact, write_artifact
from ttcalloc.artifacts.schemas import ALLOCATION, CURVES, PROBLEMS, require_labels
from ttcalloc.common.console import warn
from ttcalloc.common.errors import ArtifactError, DataError, InputError
from ttcalloc.core import oracle
from ttcalloc.core.mixes import uniform_at_budget

if TYPE_CHECKING:
    import polars as pl

    from ttcalloc.core.curves import Dense


@dataclass(frozen=True)
class SolveOptions:
    """How to solve: budgets, method, rounding, and which curves and problems to use."""

    budgets: tuple[float, ...]
    method: str = "exact"
    rounding: str = "mix"
    half: str | None = None  # None: fit when the curves are cross-fitted, else all
    split: str | None = None  # None: train when problems are given, else all
    seed: int = 0

    def check(self, flag: str = "--budget") -> None:
        """``flag``: the option the budgets were given with, named in the errors."""
        if not self.budgets:
            raise InputError("give --budget B or --budgets B1,B2,...")
        for b in self.budgets:
            if not np.isfinite(b) or b < 0:
                raise InputError(f"{flag} {b}: must be a non-negative number")
        if self.method not in ("exact", "bisect"):
            raise InputError(f"--method {self.method!r}: expected exact or bisect")
        if self.rounding not in ("mix", "floor"):
            raise InputError(f"--rounding {self.rounding!r}: expected mix or floor")
        if self.half not in (None, "fit", "eval", "all"):
            raise InputError(f"--half {self.half!r}: expected fit, eval or all")
        if self.split not in (None, "train", "test", "all"):
            raise InputError(f"--split {self.split!r}: expected train, test or all")


@dataclass(frozen=True)
class SolveResult:
    """Per budget: lambda*, costs and objectives, the LP bound, and uniform at the same cost."""

    out: Path
    problems: int
    actions: list[str]
    half: str
    split: str
    in_sample: bool
    cost_unit: str
    solutions: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"out": str(self.out)}


def load_curves(
    curves_path: Path, half: str | None, split: str | None, problems_path: Path | None
) -> tuple[pl.DataFrame, dict[str, Any], str, str]:
    """Read curves and keep one half and one split of problems (defaults as documented)."""
    import polars as pl

    art = read_artifact(curves_path, CURVES)
    curves, meta = art.df, art.meta
    halves = set(curves["half"].unique())
    chosen_half = half or ("fit" if "fit" in halves else "all")
    if chosen_half not in halves:
        raise DataError(
            f"{curves_path}: no {chosen_half!r} curves "
            f"(halves present: {', '.join(sorted(halves))})"
        )
    curves = curves.filter(pl.col("half") == chosen_half)
    chosen_split = split or ("train" if problems_path is not None else "all")
    if problems_path is not None:
        problems = read_artifact(problems_path, PROBLEMS).df
        require_labels(problems, problems_path, "solve")
        check_known_ids(
            curves,
            problems,
            Path(curves_path),
            Path(problems_path),
            "were the curves estimated from samples of these problems?",
        )
        if chosen_split != "all":
            keep = problems.filter(pl.col("split") == chosen_split)["problem_id"]
            curves = curves.filter(pl.col("problem_id").is_in(keep.implode()))
    elif chosen_split != "all":
        raise InputError(f"--split {chosen_split}: needs --problems (the split is stored there)")
    if curves.height == 0:
        raise DataError(
            f"{curves_path}: no curves left for half={chosen_half}, split={chosen_split}"
        )
    return curves, meta, chosen_half, chosen_split


@dataclass(frozen=True)
class SolveInputs:
    """What :func:`load_solve_inputs` read: the chosen curves as dense arrays, and their labels."""

    dense: Dense
    half: str
    split: str
    in_sample: bool
    cost_unit: str


def load_solve_inputs(
    curves_path: Path,
    options: SolveOptions,
    problems_path: Path | None = None,
    flag: str = "--budget",
) -> SolveInputs:
    """Check the options (``flag``: the budgets' option, for the errors), read one half and
    split of the curves, and check them as arrays."""
    options.check(flag)
    curves, meta, half, split = load_curves(curves_path, options.half, options.split, problems_path)
    in_sample = bool(meta.get("in_sample", half == "all"))
    if in_sample:
        warn(f"{curves_path}: curves are in-sample; the oracle's objective is optimistic")
    dense = to_dense(curves)
    try:
        oracle.check_inputs(dense.acc, dense.cost)
    except ValueError as exc:
        raise ArtifactError(f"{curves_path}: {exc}") from exc
    return SolveInputs(dense, half, split, in_sample, str(meta.get("cost_unit", "unknown")))


def infeasible_message(
    budget: float, minimum: float, cost_unit: str = "", flag: str = "--budget"
) -> str:
    """Why a budget cannot be met, in the curves' cost unit, and what to do about it (``flag``:
    the option the budget was given with)."""
    unit = f" {cost_unit}" if cost_unit and cost_unit != "unknown" else ""
    text = (
        f"{flag} {budget:g}{unit} is below the minimum feasible mean cost "
        f"{minimum:.6g}{unit} (every problem at its cheapest action); budgets are a mean cost "
        f"per problem in the curves' unit{unit and ','}{unit}: give at least {minimum:.4g}"
    )
    if cost_unit not in ("samples", "", "unknown"):
        text += (
            ", or count samples instead: `ttcalloc estimate --cost samples`, then solve with "
            "budgets in samples per problem"
        )
    return text


def compute_allocation(
    dense: Dense, options: SolveOptions, cost_unit: str = "", flag: str = "--budget"
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Solve at every budget, without IO: the allocation rows and one summary per budget.

    ``cost_unit`` and ``flag`` (the budgets' option) only word the error of a budget below the
    cheapest actions."""
    import polars as pl

    hulls = oracle.upper_hulls(dense.acc, dense.cost)
    n = len(dense.problem_ids)
    rows = np.arange(n)
    names = pl.Series("action", dense.actions, dtype=pl.String)
    ids = pl.Series("problem_id", dense.problem_ids, dtype=pl.String)
    frames: list[pl.DataFrame] = []
    solutions = []
    for budget in options.budgets:
        try:
            if options.method == "exact":
                sol = oracle.solve_exact(dense.acc, dense.cost, budget, options.seed, hulls)
            else:
                sol = oracle.solve_bisect(dense.acc, dense.cost, budget, options.seed)
        except oracle.InfeasibleBudget as exc:
            raise DataError(infeasible_message(budget, exc.minimum, cost_unit, flag)) from exc
        if options.rounding == "mix":
            chosen = oracle.sample_actions(sol, options.seed)
            lo, hi, p_hi = sol.action_lo, sol.action_hi, sol.p_hi
        else:
            chosen = lo = hi = sol.action_lo
            p_hi = np.zeros(n)
        frames.append(
            _allocation_rows(dense, budget, (chosen, lo, hi), p_hi, hulls.gap, (ids, names))
        )
        uniform = uniform_at_budget(dense.acc, dense.cost, budget)
        mixed = options.rounding == "mix"
        solutions.append(
            {
                "budget": float(budget),
                "lambda": sol.lam,
                "slack": sol.slack,
                "achieved_cost": sol.expected_cost if mixed else sol.integer_cost,
                "objective": sol.objective if mixed else sol.integer_objective,
                "realized_cost": float(dense.cost[rows, chosen].mean()),
                "realized_objective": float(dense.acc[rows, chosen].mean()),
                "lp_bound": sol.lp_bound,
                "integer_objective": sol.integer_objective,
                "integer_gap": sol.lp_bound - sol.integer_objective,
                "gap_bound": sol.max_gap / n,
                "uniform_accuracy": uniform.accuracy if uniform else None,
                "uniform_cost": uniform.cost if uniform else None,
                "gain_vs_uniform": (sol.objective if mixed else sol.integer_objective)
                - uniform.accuracy
                if uniform
                else None,
            }
        )
    return pl.concat(frames), solutions


def _allocation_rows(
    dense: Dense,
    budget: float,
    actions: tuple[np.ndarray, np.ndarray, np.ndarray],
    p_hi: np.ndarray,
    gap: np.ndarray,
    labels: tuple[pl.Series, pl.Series],
) -> pl.DataFrame:
    """One budget's allocation rows; ``actions`` = (chosen, lo, hi) indices, ``labels`` = (problem
    ids, action names) as Series (gathered by index: lists of 10^6 strings cost 0.5 s here)."""
    import polars as pl

    chosen, lo, hi = actions
    ids, names = labels
    rows = np.arange(len(dense.problem_ids))
    return pl.DataFrame(
        {
            "budget": np.full(rows.size, float(budget)),
            "problem_id": ids,
            "action": names.gather(chosen),
            "accuracy": dense.acc[rows, chosen],
            "cost": dense.cost[rows, chosen],
            "action_lo": names.gather(lo),
            "action_hi": names.gather(hi),
            "p_hi": p_hi,
            "gap": gap,
        }
    )


def write_allocation(
    allocation: pl.DataFrame,
    solutions: list[dict[str, Any]],
    out: Path,
    options: SolveOptions,
    loaded: SolveInputs,
    curves_path: Path,
    problems_path: Path | None = None,
) -> None:
    """Write ``allocation.parquet`` atomically, with provenance and the per-budget solutions."""
    inputs = {"curves": Path(curves_path)}
    if problems_path is not None:
        inputs["problems"] = Path(problems_path)
    write_artifact(
        allocation,
        out,
        ALLOCATION,
        stage="solve",
        params={
            "budgets": list(options.budgets),
            "method": options.method,
            "rounding": options.rounding,
            "half": loaded.half,
            "split": loaded.split,
            "seed": options.seed,
        },
        inputs=inputs,
        extra_meta={
            "cost_unit": loaded.cost_unit,
            "in_sample": loaded.in_sample,
            "actions": loaded.dense.actions,
            "solutions": solutions,
        },
    )


def solve_allocation(
    curves_path: Path,
    out: Path,
    options: SolveOptions,
    problems_path: Path | None = None,
    flag: str = "--budget",
) -> SolveResult:
    """Solve the budgeted allocation exactly and write ``allocation.parquet``.

    Args:
        curves_path: curves artifact from ``ttcalloc estimate``.
        out: where to write the allocation (one block of rows per budget).
        options: budgets, ``exact`` or ``bisect``, ``mix`` or ``floor`` rounding, half, split.
        problems_path: problems artifact, needed to select a split (train by default).
        flag: the option the budgets were given with (``--budget`` or ``--budgets``), named
            in the errors about them.

    Returns:
        A :class:`SolveResult`; per budget lambda*, achieved cost, objective, LP bound, the
        integer solution's gap to it, and uniform allocation at the same budget.

    Steps: :func:`load_solve_inputs`, :func:`compute_allocation`, :func:`write_allocation`.
    """
    check_output(out, {"curves": curves_path, "problems": problems_path})
    loaded = load_solve_inputs(curves_path, options, problems_path, flag)
    allocation, solutions = compute_allocation(loaded.dense, options, loaded.cost_unit, flag)
    write_allocation(allocation, solutions, out, options, loaded, curves_path, problems_path)
    return SolveResult(
        out=Path(out),
        problems=len(loaded.dense.problem_ids),
        actions=loaded.dense.actions,
        half=loaded.half,
        split=loaded.split,
        in_sample=loaded.in_sample,
        cost_unit=loaded.cost_unit,
        solutions=solutions,
    )
