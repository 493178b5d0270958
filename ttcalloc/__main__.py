"""``python -m ttcalloc``: same as the ``ttcalloc`` command."""

from ttcalloc.cli import main

main()
