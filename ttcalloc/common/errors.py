"""Errors that reach the user as one clear line (the CLI prints them and exits non-zero)."""

from __future__ import annotations

import errno
import os


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


class OutputError(TtcallocError):
    """An output cannot be written: no permission, disk full, a read-only file system."""


_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "file too large (disk full or a file size limit)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}


def os_reason(exc: BaseException) -> str:
    """A short reason for an OS error (``[Errno 28] ...`` becomes "no space left ...")."""
    code = getattr(exc, "errno", None)
    if code in _REASONS:
        return _REASONS[code]
    text = getattr(exc, "strerror", None) or str(exc)
    for code, reason in _REASONS.items():  # pyarrow folds the errno into its message
        if f"errno {code}]" in text.lower() or os.strerror(code) in text:
            return reason
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def os_error_line(exc: OSError) -> str:
    """One line for an OS error: the path it concerns, then the reason."""
    where = exc.filename if exc.filename is not None else None
    return f"{where}: {os_reason(exc)}" if where is not None else os_reason(exc)
