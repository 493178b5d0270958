"""The backend registry: model-string prefix -> factory of an async context manager.

A prefix is followed by ``/`` (``sim/medium``, ``local/smollm2``) or, for a backend whose rest
is a path, by ``:`` (``replay:out/demo/samples.parquet``); anything else goes to litellm.
:func:`open_backends` opens one backend per model name, behind one :class:`ModelBackends`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping

from ttcalloc.backends.base import Backend, Choice, FatalError, Request, SamplingParams

BackendFactory = Callable[[str, SamplingParams], contextlib.AbstractAsyncContextManager[Backend]]
REGISTRY: dict[str, BackendFactory] = {}
SEPARATORS: dict[str, str] = {}


def register(prefix: str, separator: str = "/") -> Callable[[BackendFactory], BackendFactory]:
    """Register a backend factory for model strings starting with ``prefix`` + ``separator``."""

    def wrap(factory: BackendFactory) -> BackendFactory:
        REGISTRY[prefix] = factory
        SEPARATORS[prefix] = separator
        return factory

    return wrap


def backend_prefix(model: str) -> str:
    """The registered prefix ``model`` starts with (with its separator), else ``litellm``."""
    for prefix, sep in SEPARATORS.items():
        if prefix != "litellm" and model.startswith(prefix + sep):
            return prefix
    return "litellm"


def open_backend(
    model: str, params: SamplingParams
) -> contextlib.AbstractAsyncContextManager[Backend]:
    """The backend for ``model`` (a context manager: local servers stop when it exits)."""
    return REGISTRY[backend_prefix(model)](model, params)


class ModelBackends:
    """Several models behind one backend: each request goes to the backend of its
    ``request.model`` (``run`` on a policy over several models).

    A sample whose backend reports no dollar cost is charged its tokens at its model's price
    (``prices``: dollars per million prompt and completion tokens, by model name), so every
    sample of a model with a price has a cost in dollars.
    """

    def __init__(
        self,
        backends: Mapping[str, Backend],
        prices: Mapping[str, tuple[float, float]],
        dollars: bool = False,
    ) -> None:
        self.backends, self.price_of = dict(backends), dict(prices)
        self.dollars = dollars  # a sample without a dollar cost is an error (a budget in usd)
        self.name = ", ".join(f"{m}={b.name}" for m, b in self.backends.items())
        self.simulated = any(b.simulated for b in self.backends.values())
        self.replayed = any(getattr(b, "replayed", False) for b in self.backends.values())
        self.max_n = min(b.max_n for b in self.backends.values())
        self.shares_prompt = all(getattr(b, "shares_prompt", False) for b in self.backends.values())

    def prices_for(self, model: str) -> tuple[float, float] | None:
        """Dollars per million prompt and completion tokens of ``model`` (None: unknown)."""
        if model in self.price_of:
            return self.price_of[model]
        prices = getattr(self.backends.get(model), "prices", None)
        return prices() if callable(prices) else None

    async def complete(self, request: Request) -> list[Choice]:
        backend = self.backends.get(request.model or "")
        if backend is None:
            raise FatalError(f"no backend for model {request.model!r} (--model NAME=SPEC)")
        choices = await backend.complete(request)
        price = self.price_of.get(request.model or "")
        out = [priced(c, price) for c in choices]
        if self.dollars and any(c.cost_usd is None for c in out):
            bare = next(c for c in out if c.cost_usd is None)
            if price is not None and bare.prompt_tokens is None:
                raise FatalError(
                    f"model {request.model!r}: a sample of question {request.problem_id!r} "
                    "records no prompt tokens to price it by; give --prompt-tokens "
                    f"{request.model}=N"
                )
            if price is not None:
                raise FatalError(
                    f"model {request.model!r}: a sample of question {request.problem_id!r} "
                    "records no completion length (tokens or text) to price it by"
                )
            raise FatalError(
                f"model {request.model!r}: a sample of question {request.problem_id!r} has no "
                f"dollar cost and no price to count one by; give --price {request.model}=IN,OUT"
            )
        return out


def priced(choice: Choice, price: tuple[float, float] | None) -> Choice:
    """``choice`` with its dollar cost: as reported, else its tokens at ``price`` (completion
    tokens estimated from characters, 4 per token, when the backend reports none)."""
    if choice.cost_usd is not None or price is None:
        return choice
    completion = choice.completion_tokens
    if completion is None and choice.text is not None:
        completion = -(-len(choice.text) // 4)
    if completion is None or choice.prompt_tokens is None:
        return choice
    cost = (choice.prompt_tokens * price[0] + completion * price[1]) / 1e6
    return dataclasses.replace(choice, cost_usd=cost)


@contextlib.asynccontextmanager
async def open_backends(
    specs: Mapping[str, str],
    params: Mapping[str, SamplingParams],
    prices: Mapping[str, tuple[float, float]],
    dollars: bool = False,
) -> AsyncIterator[ModelBackends]:
    """One backend per model name (``specs``: name -> model string, each opened with its own
    ``params``), as one :class:`ModelBackends` (``dollars``: every sample must have a dollar
    cost); every backend closes when it exits."""
    async with contextlib.AsyncExitStack() as stack:
        opened = {
            name: await stack.enter_async_context(open_backend(spec, params[name]))
            for name, spec in specs.items()
        }
        yield ModelBackends(opened, prices, dollars)
