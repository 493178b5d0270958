"""The lines of a batch: custom ids, the JSONL of requests split to the provider's limits, and
the output lines read back per custom id.

A custom id names the problem and the samples a line asks for: ``<problem_id>#<i>`` for sample
``i``, ``<problem_id>#<i>-<j>`` for samples ``i..j`` asked as one request with ``n``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ttcalloc.backends import Request
from ttcalloc.backends.batch_api import ENDPOINT


def span_id(problem_id: str, first: int, last: int) -> str:
    """The custom id of the line asking for samples ``first..last`` of a problem."""
    return f"{problem_id}#{first}" if first == last else f"{problem_id}#{first}-{last}"


def custom_id(request: Request) -> str:
    """The custom id of the line asking for ``request``'s samples."""
    return span_id(request.problem_id, request.first_idx, request.first_idx + request.n - 1)


def parse_custom_id(cid: str) -> tuple[str, int, int]:
    """``(problem_id, first sample index, n)`` of a custom id (ValueError if it is not one)."""
    pid, sep, span = cid.rpartition("#")
    if not sep:
        raise ValueError(f"not a ttcalloc custom id: {cid!r}")
    lo, _, hi = span.partition("-")
    first, last = int(lo), int(hi or lo)
    if last < first:
        raise ValueError(f"not a ttcalloc custom id: {cid!r}")
    return pid, first, last - first + 1


def held_indices(cids: Iterable[str]) -> dict[str, set[int]]:
    """The sample indices, per problem, that the lines ``cids`` ask for."""
    held: dict[str, set[int]] = {}
    for cid in cids:
        pid, first, n = parse_custom_id(cid)
        held.setdefault(pid, set()).update(range(first, first + n))
    return held


def jsonl_line(cid: str, body: Mapping[str, Any]) -> bytes:
    """One line of a batch input file."""
    line = {"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": body}
    return (json.dumps(line, separators=(",", ":")) + "\n").encode("utf-8")


def split(lines: list[tuple[str, bytes]], max_requests: int, max_bytes: int) -> list[list[int]]:
    """Indices of ``lines`` (custom id, JSONL line) grouped into batches of at most
    ``max_requests`` lines and ``max_bytes`` bytes, in order."""
    groups: list[list[int]] = []
    size = 0
    for i, (_, line) in enumerate(lines):
        if not groups or len(groups[-1]) >= max_requests or size + len(line) > max_bytes:
            groups.append([])
            size = 0
        groups[-1].append(i)
        size += len(line)
    return groups


@dataclass(frozen=True)
class Outcome:
    """What a batch returned for one custom id: a chat response body, or an error."""

    body: dict[str, Any] | None
    error: str | None


def outcomes(text: str) -> dict[str, Outcome]:
    """The outcome of each custom id in an output or error file (unreadable lines skipped)."""
    out: dict[str, Outcome] = {}
    for text_line in text.splitlines():
        try:
            line = json.loads(text_line)
        except json.JSONDecodeError:
            continue
        if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
            continue
        raw = line.get("response")
        response: dict[str, Any] = raw if isinstance(raw, dict) else {}
        body = response.get("body") if isinstance(response.get("body"), dict) else None
        status = response.get("status_code")
        error = line.get("error")
        if status == 200 and body is not None and not error:
            out[line["custom_id"]] = Outcome(body, None)
            continue
        if isinstance(error, dict):
            message = f"{error.get('code') or 'error'}: {error.get('message') or ''}"
        elif body is not None and isinstance(body.get("error"), dict):
            message = f"HTTP {status}: {body['error'].get('message') or ''}"
        else:
            message = f"HTTP {status}" if status else "no response"
        out[line["custom_id"]] = Outcome(None, f"batch request failed: {message}"[:500])
    return out
