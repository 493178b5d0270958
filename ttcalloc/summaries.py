"""Rich summaries of stage results, printed on stderr."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from ttcalloc.console import err_console

if TYPE_CHECKING:
    from ttcalloc.estimate import EstimateResult
    from ttcalloc.solve import SolveResult


def print_estimate(result: EstimateResult) -> None:
    """Mean accuracy and cost per action, with counts and cross-fitting status."""
    half = "fit half" if result.cross_fitted else "in-sample"
    table = Table(title=f"curves ({half}; cost in {result.cost_unit})", title_justify="left")
    table.add_column("action")
    table.add_column("accuracy", justify="right")
    table.add_column("cost", justify="right")
    table.add_column("problems", justify="right")
    for row in result.actions:
        table.add_row(
            escape(row["action"]),
            f"{row['accuracy']:.4f}",
            f"{row['cost']:.4g}",
            str(row["problems"]),
        )
    err_console.print(table)
    err_console.print(
        f"wrote [bold]{escape(str(result.out))}[/bold]: {result.problems} problems, "
        f"{result.samples} samples"
        + (f" ({result.failed_samples} failed requests left out)" if result.failed_samples else "")
        + f"; halves: {', '.join(result.halves)}"
    )
    for action, count in result.left_out.items():
        err_console.print(
            f"{escape(action)}: left out for {count} problem-halves with fewer than k samples"
        )


def _num(value: float | None, fmt: str = ".4f") -> str:
    return "-" if value is None else format(value, fmt)


def print_solve(result: SolveResult) -> None:
    """One row per budget: lambda*, cost, objective, LP bound, and uniform at the same budget."""
    label = "in-sample" if result.in_sample else f"{result.half} half"
    table = Table(
        title=(
            f"oracle allocation ({result.problems} problems, split {result.split}, {label}; "
            f"cost in {result.cost_unit})"
        ),
        title_justify="left",
    )
    for col in ("budget", "lambda*", "cost", "accuracy", "LP bound", "uniform", "gain"):
        table.add_column(col, justify="right")
    for s in result.solutions:
        table.add_row(
            f"{s['budget']:g}",
            _num(s["lambda"], ".4g"),
            _num(s["achieved_cost"], ".4g") + (" (slack)" if s["slack"] else ""),
            _num(s["objective"]),
            _num(s["lp_bound"]),
            _num(s["uniform_accuracy"]),
            _num(s["gain_vs_uniform"], "+.4f"),
        )
    err_console.print(table)
    err_console.print(f"wrote [bold]{escape(str(result.out))}[/bold]")
