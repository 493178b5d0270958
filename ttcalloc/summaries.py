"""Rich summaries of stage results, printed on stderr."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from ttcalloc.console import err_console

if TYPE_CHECKING:
    from ttcalloc.estimate import EstimateResult


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
