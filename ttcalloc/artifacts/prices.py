"""The price table: per-model dollars per million tokens, from flags, a file, or litellm's map.

Flags: ``--price MODEL=IN,OUT`` (dollars per million input and output tokens, repeatable) and
``--prompt-tokens MODEL=N`` (the prompt length to assume where samples record none).  A prices
file is JSON::

    {"gpt-4": {"input": 30, "output": 60, "prompt_tokens": 550, "source": "OpenAI list price"}}

A flag overrides the file; a model in neither is looked up in litellm's local cost map by the
caller (``backends.prices``), and a model priced nowhere is a one-line error naming it.  The table
is recorded in provenance (:meth:`PriceTable.to_json`) so later stages and ``run`` reuse it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ttcalloc.common.errors import ArtifactError, InputError, MissingInputError
from ttcalloc.core.prices import Price


@dataclass(frozen=True)
class PriceTable:
    """Prices by model name, with where each came from (``flag``, a file path, ``litellm``)."""

    prices: Mapping[str, Price] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    prompt_lengths: Mapping[str, float] = field(default_factory=dict)  # --prompt-tokens

    def __contains__(self, model: object) -> bool:
        return model in self.prices

    def get(self, model: str) -> Price | None:
        """The model's price, with its ``--prompt-tokens`` length where one was given."""
        p = self.prices.get(model)
        n = self.prompt_lengths.get(model)
        return p if p is None or n is None else Price(p.input, p.output, n)

    def require(
        self, models: Iterable[str], hint: str = "", detail: Mapping[str, str] | None = None
    ) -> dict[str, Price]:
        """The price of each model; a model without one is a one-line error naming it (and
        ``detail``'s words for it)."""
        out = {}
        for m in models:
            p = self.get(m)
            if p is None:
                why = (detail or {}).get(m, "")
                raise InputError(
                    f"no price for model {m!r}{why}: give --price {m}=IN,OUT (dollars per "
                    f"million input and output tokens) or a prices file{hint}"
                )
            out[m] = p
        return out

    def merged(self, other: PriceTable) -> PriceTable:
        """This table with ``other``'s entries on top."""
        return PriceTable(
            {**self.prices, **other.prices},
            {**self.sources, **other.sources},
            {**self.prompt_lengths, **other.prompt_lengths},
        )

    def with_prompt_tokens(self, lengths: Mapping[str, float]) -> PriceTable:
        """Assume these prompt lengths (tokens) for the named models' samples that record none."""
        return PriceTable(self.prices, self.sources, {**self.prompt_lengths, **lengths})

    def to_json(self) -> dict[str, dict[str, Any]]:
        """The table as JSON (prices, prompt length, source), for provenance and policy.json."""
        out = {}
        for m in sorted(self.prices):
            p = self.get(m)
            assert p is not None
            out[m] = {
                "input": p.input,
                "output": p.output,
                "prompt_tokens": p.prompt_tokens,
                "source": self.sources.get(m, ""),
            }
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> PriceTable:
        """Parse a table written by :meth:`to_json` (or a prices file); ``where`` names it."""
        if not isinstance(data, dict):
            raise ArtifactError(f"{where}: expected an object of model -> prices")
        prices, sources, lengths = {}, {}, {}
        for m, entry in data.items():
            if not isinstance(entry, dict):
                raise ArtifactError(f"{where}: {m}: expected an object with input and output")
            unknown = set(entry) - {"input", "output", "prompt_tokens", "source"}
            if unknown:
                raise ArtifactError(f"{where}: {m}: unknown field {sorted(unknown)[0]!r}")
            try:
                prices[str(m)] = Price(
                    _number(entry.get("input"), f"{where}: {m}: input"),
                    _number(entry.get("output"), f"{where}: {m}: output"),
                )
            except ValueError as exc:
                raise ArtifactError(f"{where}: {m}: {exc}") from None
            if entry.get("prompt_tokens") is not None:
                # kept apart from the price, so a --price flag for the model keeps the length
                lengths[str(m)] = _number(entry["prompt_tokens"], f"{where}: {m}: prompt_tokens")
            src = entry.get("source")
            sources[str(m)] = str(src) if src else where
        return cls(prices, sources, lengths)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArtifactError(f"{what}: expected a number, found {value!r}")
    x = float(value)
    if not math.isfinite(x) or x < 0:
        raise ArtifactError(f"{what}: {value!r} must be a finite number >= 0")
    return x


def parse_price_flags(values: Iterable[str]) -> PriceTable:
    """``--price MODEL=IN,OUT`` values (dollars per million input, output tokens)."""
    prices, sources = {}, {}
    for v in values:
        model, sep, rest = v.rpartition("=")
        parts = rest.split(",")
        try:
            if not sep or not model.strip() or len(parts) != 2:
                raise ValueError
            p_in, p_out = float(parts[0]), float(parts[1])
            prices[model.strip()] = Price(p_in, p_out)
        except ValueError:
            raise InputError(
                f"--price {v!r}: expected MODEL=IN,OUT with dollars per million input and "
                "output tokens, e.g. gpt-4=30,60"
            ) from None
        sources[model.strip()] = "--price"
    return PriceTable(prices, sources)


def parse_prompt_tokens(values: Iterable[str]) -> dict[str, float]:
    """``--prompt-tokens MODEL=N`` values."""
    out = {}
    for v in values:
        model, sep, rest = v.rpartition("=")
        try:
            if not sep or not model.strip():
                raise ValueError
            n = float(rest)
            if not math.isfinite(n) or n < 0:
                raise ValueError
        except ValueError:
            raise InputError(
                f"--prompt-tokens {v!r}: expected MODEL=N with N tokens >= 0, e.g. gpt-4=550"
            ) from None
        out[model.strip()] = n
    return out


def load_prices_file(path: Path) -> PriceTable:
    """Read a JSON prices file (see the module docstring)."""
    if not path.exists():
        raise MissingInputError(f"--prices {path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"--prices {path}: not a JSON prices file ({exc})") from None
    return PriceTable.from_json(data, str(path))


def price_table(
    flags: Iterable[str] = (), file: Path | None = None, prompt_tokens: Iterable[str] = ()
) -> PriceTable:
    """The table from a prices file and ``--price`` flags (flags win), with prompt lengths."""
    table = load_prices_file(file) if file is not None else PriceTable()
    table = table.merged(parse_price_flags(flags))
    lengths = parse_prompt_tokens(prompt_tokens)
    return table.with_prompt_tokens(lengths) if lengths else table


# how a model's samples were charged (``DollarCosts.how``), in the order the note says them
HOW_WORDS = {
    "recorded": "recorded dollar cost",
    "tokens": "recorded tokens x price",
    "characters": "completion tokens estimated from characters (4 per token) x price",
    "mean_length": "the model's mean completion tokens x price where a sample records no length",
    "question_chars": "prompt tokens estimated from the question's characters (4 per token)",
    "prompt_length": "the model's --prompt-tokens for the prompt",
}


@dataclass(frozen=True)
class DollarCosts:
    """Samples with ``cost_usd`` filled, how each model's cost was found, and how many of its
    samples were priced and how many kept a recorded cost (``priced``: model -> both)."""

    samples: Any  # pl.DataFrame
    how: dict[str, str]  # model -> keys of HOW_WORDS, "+"-joined
    priced: dict[str, tuple[int, int]] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: e.g. ``gpt-4: recorded tokens x price; ...``."""
        parts = []
        for m, how in sorted(self.how.items()):
            kinds = how.split("+")
            words = [w for k, w in HOW_WORDS.items() if k in kinds]
            parts.append(f"{m}: " + ", ".join(words + [k for k in kinds if k not in HOW_WORDS]))
        return "; ".join(parts)


def _check_lengths(model: str, no_completion: Any, no_prompt: Any) -> None:
    """A one-line error when samples to price have no completion or no prompt length."""
    if no_completion.any():
        raise InputError(
            f"model {model!r}: {int(no_completion.sum())} samples have no completion tokens, no "
            "completion characters and no recorded cost to price them by (import them with "
            "--completion-tokens-field, --chars-field or --cost-field)"
        )
    if no_prompt.any():
        raise InputError(
            f"model {model!r}: {int(no_prompt.sum())} samples record no prompt tokens: give "
            f"--prompt-tokens {model}=N, or --problems to count the question's characters / 4"
        )


def with_dollars(samples: Any, table: PriceTable, questions: Any | None = None) -> DollarCosts:
    """Fill ``cost_usd`` where it is null: tokens x the model's price.

    Completion tokens come from ``completion_tokens``, else ``completion_chars`` / 4, else the
    model's mean over the samples that have one (a failed program records no length).  Prompt
    tokens come from ``prompt_tokens``, else the model's assumed prompt length
    (``--prompt-tokens``), else the question's characters / 4 (``questions``: a frame of
    ``problem_id, question``).  A recorded ``cost_usd`` is kept.  A model that needs a price and
    has none is a one-line error naming it.  ``how`` names each way a model's tokens were found
    (:data:`HOW_WORDS`); ``priced`` counts its samples priced and those with a recorded cost.
    """
    import numpy as np
    import polars as pl

    from ttcalloc.core.prices import sample_dollars, tokens_from_chars

    cols = set(samples.columns)
    for c in ("cost_usd", "prompt_tokens", "completion_tokens", "completion_chars"):
        if c not in cols:
            samples = samples.with_columns(pl.lit(None, dtype=pl.Float64).alias(c))
    if questions is not None and "question_chars" not in cols:
        q = questions.select(
            pl.col("problem_id").cast(pl.String),
            pl.col("question").str.len_chars().cast(pl.Float64).alias("question_chars"),
        )
        samples = samples.join(q, on="problem_id", how="left", maintain_order="left")
    elif "question_chars" not in cols:
        samples = samples.with_columns(pl.lit(None, dtype=pl.Float64).alias("question_chars"))
    out, how, priced = [], {}, {}
    for (model,), part in samples.group_by("model", maintain_order=True):
        model = str(model)
        recorded = part["cost_usd"].cast(pl.Float64).to_numpy().astype(np.float64)
        need = np.isnan(recorded)
        kinds = {"recorded"} if (~need).any() else set()
        if need.any():
            price = table.require([model])[model]
            comp = part["completion_tokens"].cast(pl.Float64).to_numpy().astype(np.float64)
            chars = part["completion_chars"].cast(pl.Float64).to_numpy().astype(np.float64)
            if (need & ~np.isnan(comp)).any():
                kinds.add("tokens")
            if (need & np.isnan(comp) & ~np.isnan(chars)).any():
                kinds.add("characters")
            comp = np.where(np.isnan(comp), tokens_from_chars(chars), comp)
            unknown = np.isnan(comp) & need
            if unknown.any() and not np.isnan(comp).all():
                # no length recorded (a failed program): charged the model's mean completion
                comp = np.where(unknown, np.nanmean(comp), comp)
                kinds.add("mean_length")
            prompt = part["prompt_tokens"].cast(pl.Float64).to_numpy().astype(np.float64)
            no_prompt = np.isnan(prompt) & need
            if price.prompt_tokens is not None:
                prompt = np.where(np.isnan(prompt), price.prompt_tokens, prompt)
                if no_prompt.any():
                    kinds.add("prompt_length")
            else:
                qchars = part["question_chars"].cast(pl.Float64).to_numpy().astype(np.float64)
                prompt = np.where(np.isnan(prompt), tokens_from_chars(qchars), prompt)
                if (no_prompt & ~np.isnan(prompt)).any():
                    kinds.add("question_chars")
            _check_lengths(model, need & np.isnan(comp), need & np.isnan(prompt))
            recorded = np.where(need, sample_dollars(price, prompt, comp), recorded)
        how[model] = "+".join(sorted(kinds))
        priced[model] = (int(need.sum()), int((~need).sum()))
        out.append(part.with_columns(pl.Series("cost_usd", recorded, dtype=pl.Float64)))
    frame = pl.concat(out) if out else samples
    if "question_chars" not in cols:
        frame = frame.drop("question_chars")
    return DollarCosts(frame, dict(sorted(how.items())), dict(sorted(priced.items())))


def dollars_as_estimated(
    samples: Any, params: Mapping[str, Any], questions: Any | None, where: str
) -> Any:
    """``samples`` with ``cost_usd`` filled as ``estimate`` filled it, from the price table its
    curves recorded (``params["prices"]``; unchanged when none was recorded).

    Call it on the same samples ``estimate`` priced (usable ones of the curves' models), so a
    model's mean completion, charged where a sample records no length, is the same.
    """
    recorded = params.get("prices")
    if not recorded:
        return samples
    return with_dollars(samples, PriceTable.from_json(recorded, where), questions).samples


@dataclass(frozen=True)
class Dollars:
    """How ``cost_usd`` was found: the price table (JSON), per model ``how``, one line."""

    table: dict[str, dict[str, Any]]
    how: dict[str, str]
    summary: str
    priced: dict[str, tuple[int, int]] = field(default_factory=dict)  # model -> priced, recorded

    def params(self) -> dict[str, Any]:
        """The curves' provenance: the table (which ``run`` reuses for new samples), how each
        model's cost was found, and how many of its samples the table priced (``priced`` 0:
        the model's price was applied to none, every one carrying a recorded cost)."""
        counts = {m: {"priced": p, "recorded": r} for m, (p, r) in self.priced.items()}
        return {"prices": self.table, "cost_from": self.how, "samples_priced": counts}
