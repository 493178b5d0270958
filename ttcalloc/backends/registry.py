"""The backend registry: model-string prefix -> factory of an async context manager."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from ttcalloc.backends.base import Backend, SamplingParams

BackendFactory = Callable[[str, SamplingParams], contextlib.AbstractAsyncContextManager[Backend]]
REGISTRY: dict[str, BackendFactory] = {}


def register(prefix: str) -> Callable[[BackendFactory], BackendFactory]:
    """Register a backend factory for model strings starting with ``prefix/``."""

    def wrap(factory: BackendFactory) -> BackendFactory:
        REGISTRY[prefix] = factory
        return factory

    return wrap


def open_backend(
    model: str, params: SamplingParams
) -> contextlib.AbstractAsyncContextManager[Backend]:
    """The backend for ``model`` (a context manager: local servers stop when it exits)."""
    prefix = model.split("/", 1)[0] if "/" in model else ""
    factory = REGISTRY.get(prefix, REGISTRY["litellm"])
    return factory(model, params)
