"""Prices of models litellm knows, from its local cost map (no network)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ttcalloc.artifacts.prices import Dollars, PriceTable, price_table, with_dollars
from ttcalloc.backends.litellm_backend import import_litellm
from ttcalloc.common.console import warn
from ttcalloc.core.prices import Price, sample_dollars


def litellm_price(model: str) -> Price | None:
    """Dollars per million input and output tokens of ``model`` in litellm's map, or None."""
    litellm = import_litellm()
    entry = litellm.model_cost.get(model)
    if not isinstance(entry, dict):
        return None
    cin, cout = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
    if not isinstance(cin, (int, float)) or not isinstance(cout, (int, float)):
        return None
    # per token -> per million, rounded off the float noise (3e-05 * 1e6 = 30.000000000000004)
    return Price(round(float(cin) * 1e6, 9), round(float(cout) * 1e6, 9))


def complete(table: PriceTable, models: Iterable[str]) -> PriceTable:
    """``table`` with litellm's price for each model it lacks (where litellm knows one)."""
    prices, sources = dict(table.prices), dict(table.sources)
    for m in models:
        if m in prices:
            continue
        p = litellm_price(m)
        if p is not None:
            prices[m] = p
            sources[m] = "litellm cost map"
    return PriceTable(prices, sources, table.prompt_lengths)


def samples_in_dollars(
    samples: Any,
    flags: Sequence[str] = (),
    file: Path | None = None,
    prompt_tokens: Sequence[str] = (),
    problems: Any | None = None,
) -> tuple[Any, Dollars]:
    """``samples`` with ``cost_usd`` filled where null, and how each model's cost was found.

    Prices come from ``file`` (``--prices``) and ``flags`` (``--price``; flags win), then
    litellm's local cost map for the models still without one; a model that needs a price and
    has none is a one-line error naming it.  Prompt tokens: the sample's, else
    ``prompt_tokens`` (``--prompt-tokens``), else the question's characters / 4 (``problems``).
    """
    import polars as pl

    given = price_table(flags, file, prompt_tokens)
    has_cost = "cost_usd" in samples.columns
    unpriced = samples.filter(pl.col("cost_usd").is_null()) if has_cost else samples
    need = sorted(set(unpriced["model"].unique()))  # recorded costs need no price
    table = complete(given, need)
    counts = dict(samples.group_by("model").len().iter_rows())
    short = dict(unpriced.group_by("model").len().iter_rows())
    detail = {  # a model with recorded costs on some samples: how many need a price
        m: f" ({short[m]} of its {counts[m]} samples have no recorded dollar cost)"
        for m in need
        if short[m] < counts[m]
    }
    table.require(need, hint=" (--prices FILE); litellm's cost map does not list it", detail=detail)
    questions = problems.select("problem_id", "question") if problems is not None else None
    filled = with_dollars(samples, table, questions)
    for m, (priced, recorded) in filled.priced.items():
        if recorded and m in given:
            warn(unapplied_price(m, given, priced, recorded, samples))
    used = {m: e for m, e in table.to_json().items() if m in set(samples["model"])}
    return filled.samples, Dollars(used, filled.how, filled.summary(), filled.priced)


def unapplied_price(m: str, given: PriceTable, priced: int, recorded: int, samples: Any) -> str:
    """One line: the given price of ``m`` priced none (or only ``priced``) of its samples, the
    others carrying a recorded dollar cost, which is kept; how far the recorded costs are from
    the price's on the samples that record tokens too, and how to price them instead."""
    import polars as pl

    src = given.sources.get(m, "--price")
    where = f"--price {m}" if src == "--price" else f"{m}'s price in --prices {src}"
    tokens = {"prompt_tokens", "completion_tokens"} <= set(samples.columns)
    rows = (
        samples.filter(
            (pl.col("model") == m) & pl.col("cost_usd").is_not_null(),
            pl.col("prompt_tokens").is_not_null() & pl.col("completion_tokens").is_not_null(),
        )
        if tokens
        else samples.clear()
    )
    price = given.get(m)
    assert price is not None
    at_price = float(sample_dollars(price, rows["prompt_tokens"], rows["completion_tokens"]).sum())
    ratio = (
        f" ({float(rows['cost_usd'].sum()) / at_price:.2f}x what the price gives for the "
        f"tokens of the {rows.height} that record them)"
        if rows.height and at_price > 0
        else ""
    )
    how = "re-import the file without its cost column (`ttcalloc import --cost-field ''`)"
    if not priced:
        return (
            f"{where} is not applied: all {recorded} of its samples carry a recorded dollar "
            f"cost, which is kept{ratio}; to price them from their tokens, {how}"
        )
    return (
        f"{where} priced {priced} of its {priced + recorded} samples; the other {recorded} carry "
        f"a recorded dollar cost, which is kept{ratio}; to price every sample from its tokens, "
        f"{how}"
    )
