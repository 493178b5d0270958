"""Skip a stage whose output was made from the same inputs with the same options.

A *request* records what a stage was asked to do: the command, ttcalloc's version, the options,
and a content fingerprint of every input file.  The CLI computes it before running a stage; when
the output already carries an identical request the stage is skipped (``--force`` reruns it).
While the stage runs inside :func:`recording`, every artifact it writes stores the request
(Parquet metadata, or the ``request`` key of policy.json / report.json).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from ttcalloc import __version__
from ttcalloc.artifacts.io import fingerprint, read_meta
from ttcalloc.artifacts.recording import KEY, current, recording
from ttcalloc.common.errors import ArtifactError
from ttcalloc.common.redact import redact_data


def _plain(value: Any) -> Any:
    """JSON-normal form: dataclasses as dicts, tuples as lists, paths as strings."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def request(command: str, options: Any, inputs: Mapping[str, Path | None]) -> dict[str, Any]:
    """What a stage is asked to do: command, version, options and input fingerprints."""
    prints = {
        name: fingerprint(Path(p)) if p is not None and Path(p).exists() else None
        for name, p in inputs.items()
    }
    return {
        "command": command,
        "tool_version": __version__,
        "options": redact_data(_plain(options)),  # stored with the output: no credentials
        "inputs": prints,
    }


def stored(out: Path, json_name: str | None = None) -> dict[str, Any] | None:
    """The request recorded in an output (a Parquet file, or ``out/json_name``); None if none."""
    out = Path(out)
    try:
        if json_name is not None:
            data = json.loads((out / json_name).read_text(encoding="utf-8"))
            found = data.get(KEY) if isinstance(data, dict) else None
        elif out.is_file():
            found = read_meta(out).get(KEY)
        else:
            return None
    except (OSError, ValueError, ArtifactError):
        return None
    return found if isinstance(found, dict) else None


def is_fresh(out: Path, wanted: dict[str, Any], json_name: str | None = None) -> bool:
    """Whether ``out`` exists and was made by exactly this request."""
    return bool(stored(out, json_name) == _plain(wanted))


__all__ = ["KEY", "current", "is_fresh", "recording", "request", "stored"]
