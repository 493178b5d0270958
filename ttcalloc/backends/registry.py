"""The backend registry: model-string prefix -> factory of an async context manager.

A prefix is followed by ``/`` (``sim/medium``, ``local/smollm2``) or, for a backend whose rest
is a path, by ``:`` (``replay:out/demo/samples.parquet``); anything else goes to litellm.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from ttcalloc.backends.base import Backend, SamplingParams

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
