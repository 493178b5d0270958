"""Generate the reference docs that must not drift from the code (``make docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

from ttcalloc import schemas
from ttcalloc.io import write_text

DOCS = Path(__file__).resolve().parents[1] / "docs"


def artifacts_markdown() -> str:
    """docs/artifacts.md: every artifact's columns, rendered from :mod:`ttcalloc.schemas`."""
    parts = [
        "# Artifact schemas",
        "",
        "Generated from `ttcalloc/schemas.py` by `make docs`; a test fails when it is stale.",
        "Every Parquet artifact carries JSON provenance in its key-value metadata (`ttcalloc`):",
        "artifact name, schema version, tool version, stage, parameters, and input fingerprints",
        "(`ttcalloc info FILE` shows it).",
        "",
    ]
    for schema in schemas.TABULAR.values():
        parts.append(schemas.markdown(schema))
    for js in schemas.JSON_ARTIFACTS.values():
        parts.append(f"### {js.name} (v{js.version}, JSON)\n")
        parts.append(f"{js.doc} Written by `{js.producer}`.\n")
        parts.append("| key | meaning |\n|---|---|")
        parts.extend(f"| `{k}` | {doc} |" for k, doc in js.keys)
        parts.append("")
    return "\n".join(parts)


def features_markdown() -> str:
    """docs/features.md: the cheap input features a policy can use."""
    from ttcalloc import features

    return (
        "# Policy features\n\n"
        "Generated from `ttcalloc/features.py` by `make docs`. Computed from the problem alone, "
        "before any model call; `ttcalloc train --features` selects groups, and policy.json lists "
        "the features a policy uses.\n\n" + features.docs_table()
    )


def main() -> None:
    for name, text in (
        ("artifacts.md", artifacts_markdown()),
        ("features.md", features_markdown()),
    ):
        out = DOCS / name
        write_text(out, text)
        sys.stderr.write(f"wrote {out}\n")


if __name__ == "__main__":
    main()
