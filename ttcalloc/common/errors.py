"""Errors that reach the user as one clear line (the CLI prints them and exits non-zero)."""

from __future__ import annotations


class TtcallocError(Exception):
    """Base class: a problem with the user's input, files or flags, not a bug in ttcalloc."""

    exit_code = 1


class InputError(TtcallocError):
    """A flag or argument is invalid (bad value, unknown name, conflicting options)."""

    exit_code = 2


class MissingInputError(TtcallocError):
    """An input file or folder does not exist; the message says which stage writes it."""


class ArtifactError(TtcallocError):
    """A file exists but is not what the stage expects: wrong format, columns, types or values."""


class DataError(TtcallocError):
    """The data itself cannot be used: empty, duplicated ids, ids that do not match, and so on."""
