"""The command line: thin Typer wrappers over the stage functions (``ttcalloc.stages``)."""

from ttcalloc.cli.commands import app, main

__all__ = ["app", "main"]
