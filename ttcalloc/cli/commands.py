"""The ``ttcalloc`` command line: the one Typer ``app`` and what every command shares.

Each command parses flags, calls one library function, and prints a summary on stderr (or the
result as JSON on stdout with ``--json``).  Stage modules are imported inside the commands so that
``ttcalloc --help`` stays fast.

The commands register themselves on :data:`app` from one module per group (imported, in this
order, by ``ttcalloc/cli/__init__.py``, which sets the order of ``ttcalloc --help``):

- :mod:`ttcalloc.cli.data_cmds`: ``data gsm8k|math|jsonl`` and ``import``
- :mod:`ttcalloc.cli.sampling`: ``sample``
- :mod:`ttcalloc.cli.estimating`: ``estimate``
- :mod:`ttcalloc.cli.modeling`: ``solve``, ``train``
- :mod:`ttcalloc.cli.policies`: ``evaluate``, ``allocate``
- :mod:`ttcalloc.cli.tools`: ``info``
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ttcalloc import __version__
from ttcalloc.artifacts import freshness
from ttcalloc.common.errors import TtcallocError, os_error_line

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
PIPELINE = "Pipeline stages"

app = typer.Typer(
    name="ttcalloc",
    help=(
        "Budgeted test-time compute allocation for reasoning LLMs.\n\n"
        "Pipeline: data -> sample (or import) -> estimate -> solve -> train -> evaluate, "
        "then allocate (a plan) or run (answers on a model); "
        "each stage reads and writes Parquet. Results go to stdout only with --json."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help: at 80 columns rich's six-column option tables cut long option names
    # and show a <bool> placeholder on every flag
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def fails_cleanly(func: F) -> F:
    """The one top-level handler of every command: what goes wrong ends as one ``error:`` line.

    A :class:`TtcallocError` prints its message; an OS error (no permission, disk full, a
    read-only file system, a folder where a file was expected) prints the path and the reason;
    Ctrl-C and SIGTERM print ``interrupted``.  Messages are redacted (no credentials) and the
    exit code is non-zero.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ttcalloc.common.redact import redact

        try:
            with terminate_as_interrupt():
                return func(*args, **kwargs)
        except TtcallocError as exc:
            sys.stderr.write(f"error: {redact(str(exc))}\n")
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            sys.stderr.write(f"error: {redact(os_error_line(exc))}\n")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt, as Ctrl-C does (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ttcalloc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Budgeted test-time compute allocation for reasoning LLMs."""


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
Force = Annotated[bool, typer.Option("--force", help="Rerun even when the output is up to date.")]


def _run_stage(
    command: str,
    out: Path,
    options: Any,
    inputs: Mapping[str, Path | None],
    force: bool,
    as_json: bool,
    run: Callable[[], T],
    json_name: str | list[str] | None = None,
) -> T | None:
    """Run a stage, recording its request in what it writes; None when skipped as up to date.

    Up to date: ``out`` (or each of the JSON files ``json_name`` names under it) was written by
    the same command and ttcalloc version, with the same options, from inputs with the same
    content.  Then the stage is skipped (``--force`` reruns).
    """
    from ttcalloc.common.console import emit_json, log

    req = freshness.request(command, options, inputs)
    names = json_name if isinstance(json_name, list) else [json_name]
    if force or not all(freshness.is_fresh(out, req, name) for name in names):
        with freshness.recording(req):
            return run()
    log(f"{out} is up to date (same inputs and options): {command} skipped; --force reruns it")
    if as_json:
        emit_json({"skipped": True, "out": str(out)})
    return None


def _csv(text: str, flag: str, cast: Callable[[str], T]) -> tuple[T, ...]:
    """Comma-separated values of ``flag`` (e.g. ``--ks 1,2,4``), one error line if malformed."""
    from ttcalloc.common.errors import InputError

    try:
        values = tuple(cast(x) for x in text.split(",") if x.strip())
    except ValueError:
        kind = "integers" if cast is int else "numbers"
        raise InputError(f"{flag} {text!r}: expected comma-separated {kind}, e.g. 1,2,4") from None
    if not values:
        raise InputError(f"{flag}: give at least one value")
    return values


def _int_or_auto(text: str | None, flag: str) -> int | None:
    """A whole number given to ``flag``, or None for ``auto`` (or nothing given); the range is
    the options' to check."""
    from ttcalloc.common.errors import InputError

    if text is None or text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{flag} {text!r}: expected a whole number or auto") from None


def main() -> None:
    """Console-script entry point."""
    app()
