"""``ttcalloc info``: the tools that are not pipeline stages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttcalloc.cli.commands import JsonFlag, app, fails_cleanly


@app.command("info", rich_help_panel="Tools")
@fails_cleanly
def info_cmd(
    path: Annotated[
        Path, typer.Argument(help="Any artifact: Parquet file or folder, policy/ or report/.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Show what an artifact is: kind, rows, columns and provenance (stage, parameters, inputs)."""
    from ttcalloc.artifacts.info import describe, render
    from ttcalloc.common.console import emit_json

    info = describe(path)
    render(info)
    if as_json:
        emit_json(info)
