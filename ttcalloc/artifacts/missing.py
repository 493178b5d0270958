"""What to say of a missing input artifact: the command that writes it, or, for a policy asked
for in a ``b<budget>`` folder, where a one-budget policy is (``train`` writes it in --out)."""

from __future__ import annotations

import re
from pathlib import Path

from ttcalloc.artifacts.schemas import JsonSchema, Schema, commands


def missing_message(path: Path, schema: Schema | JsonSchema) -> str:
    """One line for a missing ``path`` of ``schema``."""
    above = path.parent.parent / path.name  # a one-budget policy is in OUT, not OUT/bB
    budget_folder = re.fullmatch(r"b[0-9.e+-]+", path.parent.name) is not None
    if schema.name == "policy" and budget_folder and above.exists():
        return (
            f"{path}: {schema.name} file not found; {above} is one (a single budget's "
            "policy is written in --out itself, not in a b<budget> folder)"
        )
    return f"{path}: {schema.name} file not found (run {commands(schema.producer)} first)"
