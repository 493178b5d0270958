"""Generate the reference docs that must not drift from the code (``make docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

from ttcalloc.artifacts import schemas
from ttcalloc.artifacts.io import write_text

DOCS = Path(__file__).resolve().parents[2] / "docs"  # the repository's docs/


def artifacts_markdown() -> str:
    """docs/artifacts.md: every artifact's columns, rendered from :mod:`ttcalloc.schemas`."""
    parts = [
        "# Artifact schemas",
        "",
        "Generated from `ttcalloc/artifacts/schemas.py` by `make docs`; a test fails when it is "
        "stale.",
        "Every Parquet artifact carries JSON provenance in its key-value metadata (`ttcalloc`):",
        "artifact name, schema version, tool version, stage, parameters, and input fingerprints",
        "(`ttcalloc info FILE` shows it).",
        "A folder artifact (`sample`'s output, `run --samples-out`) holds Parquet parts beside its",
        "hidden bookkeeping files (`.lock`, `.questions.json`, the journal): read its parts",
        'elsewhere with a glob, e.g. `polars.read_parquet("samples/*.parquet")`.',
        "",
    ]
    for schema in schemas.TABULAR.values():
        parts.append(schemas.markdown(schema))
    for js in schemas.JSON_ARTIFACTS.values():
        parts.append(f"### {js.name} (v{js.version}, JSON)\n")
        parts.append(f"{js.doc} Written by {schemas.commands(js.producer)}.\n")
        parts.append("| key | meaning |\n|---|---|")
        parts.extend(f"| `{k}` | {doc} |" for k, doc in js.keys)
        parts.append("")
    return "\n".join(parts)


def features_markdown() -> str:
    """docs/features.md: the cheap input features a policy can use."""
    from ttcalloc.learn import features

    return (
        "# Policy features\n\n"
        "Generated from `ttcalloc/learn/features.py` by `make docs`. Computed from the problem "
        "alone, before any model call; `ttcalloc train --features` selects groups, and "
        "policy.json lists the features a policy uses.\n\n" + features.docs_table()
    )


def cli_markdown() -> str:
    """docs/cli.md: every command and option, read from the CLI definition itself."""
    import typer.main

    from ttcalloc.cli import app

    root = typer.main.get_command(app)
    lines = [
        "# CLI reference",
        "",
        "Generated from the `ttcalloc/cli/` package by `make docs`; a test fails when it is "
        "stale. `ttcalloc COMMAND --help` shows the same.",
        "",
    ]

    def command(path: str, cmd: object) -> None:
        sub = getattr(cmd, "commands", None)
        if sub:
            for name in sub:
                command(f"{path} {name}", sub[name])
            return
        lines.append(f"## `{path}`\n")
        lines.append(f"{(getattr(cmd, 'help', '') or '').strip()}\n")
        lines.append("| argument / option | default | meaning |")
        lines.append("|---|---|---|")
        for param in getattr(cmd, "params", []):
            names = [*param.opts, *getattr(param, "secondary_opts", [])]
            opts = ", ".join(f"`{o}`" for o in names)
            if param.required:
                default = "required"
            elif param.default is None or param.default is False:
                default = ""
            else:
                default = f"`{param.default}`"
            text = (getattr(param, "help", None) or "").replace("|", "\\|")
            lines.append(f"| {opts} | {default} | {text} |")
        lines.append("")

    command("ttcalloc", root)
    return "\n".join(lines)


def main() -> None:
    for name, text in (
        ("artifacts.md", artifacts_markdown()),
        ("features.md", features_markdown()),
        ("cli.md", cli_markdown()),
    ):
        out = DOCS / name
        write_text(out, text)
        sys.stderr.write(f"wrote {out}\n")


if __name__ == "__main__":
    main()
