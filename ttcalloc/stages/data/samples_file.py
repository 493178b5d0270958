"""Problems from a samples file: one row per sample, the question and gold answer on every row.

``ttcalloc data jsonl --from-samples`` reads such a file (the shared sample files, or a
researcher's own) as a problems source: one problem per id, its question, gold answer and
metadata taken from its rows.  Rows of one id that disagree on one of those fields are an error
naming the id and the field: the file is then not what it seems (a predicted-answer column taken
for the gold one, or two problems under one id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ttcalloc.common.errors import DataError


def field_text(value: Any) -> str | None:
    """A field's value as stripped text (integral floats without ``.0``); None when empty."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def one_per_problem(
    records: list[dict[str, Any]],
    id_field: str | None,
    compared: Sequence[tuple[str, str]],
    where: str,
) -> list[tuple[int, dict[str, Any]]]:
    """One record per problem id, each with the position of its first row in ``records``.

    Args:
        records: the samples file's rows, in order.
        id_field: the field holding the problem id (required: row indices would make every
            sample its own problem).
        compared: ``(field, flag)`` pairs that every row of an id must agree on (as text); the
            flag names the option that chose the field in the error.
        where: the source, named in errors.

    Returns:
        ``(row, record)`` of each id's first row, in order of first appearance.
    """
    if id_field is None:
        raise DataError(
            f"{where}: --from-samples needs the problem id of each row: no id field found "
            "(tried problem_id, id, idx, question_id); name it with --id-field"
        )
    first: dict[str, int] = {}
    kept: list[tuple[int, dict[str, Any]]] = []
    for index, record in enumerate(records):
        pid = field_text(record.get(id_field))
        if pid is None:
            raise DataError(f"{where}: record {index}: field {id_field!r} (--id-field) is empty")
        if pid not in first:
            first[pid] = index
            kept.append((index, record))
            continue
        seen = records[first[pid]]
        for name, flag in compared:
            if field_text(record.get(name)) != field_text(seen.get(name)):
                raise DataError(
                    f"{where}: rows of problem_id {pid!r} disagree on {name!r} ({flag}; "
                    f"records {first[pid]} and {index}): one problem per id needs one value"
                )
    return kept
