"""Prices of models litellm knows, from its local cost map (no network)."""

from __future__ import annotations

from collections.abc import Iterable

from ttcalloc.artifacts.prices import PriceTable
from ttcalloc.backends.litellm_backend import import_litellm
from ttcalloc.core.prices import Price


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
