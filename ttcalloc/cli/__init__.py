"""The command line: thin Typer wrappers over the stage functions (``ttcalloc.stages``).

:mod:`ttcalloc.cli.commands` holds the one ``app``; importing a command module registers its
commands on it.  They are imported in pipeline order, which is the order ``ttcalloc --help``
lists them in, so the imports below are kept out of isort's alphabetical sorting.
"""

from ttcalloc.cli.commands import app, main

# isort: off
from ttcalloc.cli import data_cmds  # noqa: F401  data gsm8k|math|jsonl, import
from ttcalloc.cli import sampling  # noqa: F401  sample
from ttcalloc.cli import estimating  # noqa: F401  estimate
from ttcalloc.cli import modeling  # noqa: F401  solve, train
from ttcalloc.cli import policies  # noqa: F401  evaluate, allocate
from ttcalloc.cli import serving  # noqa: F401  serve
from ttcalloc.cli import tools  # noqa: F401  info
# isort: on

__all__ = ["app", "main"]
