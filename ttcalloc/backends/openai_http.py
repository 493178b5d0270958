"""The lean client of OpenAI-compatible servers (vLLM, SGLang, llama.cpp): one pooled
``aiohttp.ClientSession`` instead of a litellm call per request.

It serves ``openai/...`` and ``hosted_vllm/...`` models given an ``--api-base`` (one or several:
:mod:`ttcalloc.backends.endpoints`), unless ``--client litellm``.  It sends the request litellm
would send (model name without its prefix, messages, temperature, max_tokens, seed, n, log-probs)
and maps the answer to the same :class:`Choice` fields and its failures to the same
:class:`RetryableError`/:class:`FatalError`/:class:`RequestError`, named as litellm names them
(``RateLimitError``, ``InternalServerError``, ...).  Costs come from litellm's local price map as
on the litellm path (:class:`LiteLLMBackend` is its base class).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ttcalloc.backends.base import (
    Backend,
    Choice,
    FatalError,
    Request,
    RequestError,
    RetryableError,
    SamplingParams,
)
from ttcalloc.backends.endpoints import Endpoint, Endpoints
from ttcalloc.backends.litellm_backend import LiteLLMBackend, check_model, mean_logprob
from ttcalloc.backends.registry import register
from ttcalloc.common.console import log
from ttcalloc.common.errors import InputError

LEAN_PREFIXES = ("openai/", "hosted_vllm/")
# the most bytes of one answer read (16 choices of 8k tokens with log-probs fit many times over);
# an endpoint sending more is failed as a broken answer, not read into memory to the end
MAX_ANSWER_BYTES = 64 << 20
KEY_ENV = {"openai": "OPENAI_API_KEY", "hosted_vllm": "HOSTED_VLLM_API_KEY"}
# the exception names litellm gives these statuses (kept so errors read the same on both paths)
STATUS_NAMES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    408: "Timeout",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}


def lean_applies(model: str, params: SamplingParams) -> bool:
    """Whether ``model`` goes through the lean client: an OpenAI-compatible model with an
    ``--api-base``, and ``--client`` not ``litellm``."""
    return params.client != "litellm" and model.startswith(LEAN_PREFIXES) and bool(params.api_base)


def completions_url(base: str) -> tuple[str, tuple[str, str] | None]:
    """``{base}/chat/completions``, keeping ``base``'s query string (a key some servers take),
    and the user and password the base holds (sent as basic auth, as the OpenAI SDK does)."""
    parts = urlsplit(base.strip())
    path = parts.path.rstrip("/") + "/chat/completions"
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 address
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    url = urlunsplit((parts.scheme, netloc, path, parts.query, ""))
    # percent-decoded, as the OpenAI SDK (httpx) sends them: a password with "@" or ":" is
    # written %40 or %3A in a URL
    user = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    return url, user


def _message(body: bytes) -> str:
    """The error message a server sent (``error.message`` of a JSON body, else the text)."""
    try:
        data = json.loads(body)
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:500]
    except (ValueError, AttributeError):
        pass
    return body[:300].decode("utf-8", "replace")


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class OpenAIHTTPBackend(LiteLLMBackend):
    """An OpenAI-compatible model behind one or several base URLs, through one pooled client
    (``shares_prompt``, for ``hosted_vllm/``: n choices per request by default)."""

    def __init__(self, model: str, params: SamplingParams, client: Any, max_n: int = 16) -> None:
        super().__init__(model, params, max_n=max_n)
        provider, self.wire_model = model.split("/", 1)
        self.client = client
        assert params.api_base is not None
        self.endpoints = Endpoints([params.api_base, *params.extra_api_bases])
        key = os.environ.get(KEY_ENV[provider]) or ("EMPTY" if provider == "openai" else None)
        self.targets = {id(e): self._target(e.base, key) for e in self.endpoints.all}
        self.several = len(self.endpoints.all) > 1
        # vLLM (and SGLang) share the prompt among a request's n choices: n per request by
        # default; an openai/ base may be a server that does not (llama.cpp counts usage badly)
        self.shares_prompt = provider == "hosted_vllm"

    @staticmethod
    def _target(base: str, key: str | None) -> tuple[str, dict[str, str]]:
        """The URL and headers of requests to ``base`` (its own user and password, if it holds
        them, as basic auth; else the key as a bearer token)."""
        url, user = completions_url(base)
        headers = {"Content-Type": "application/json"}
        if user is not None:  # RFC 7617, UTF-8 (aiohttp's BasicAuth.encode is deprecated)
            token = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        elif key:
            headers["Authorization"] = f"Bearer {key}"
        return url, headers

    def body(self, request: Request) -> bytes:
        """The JSON body of ``request`` (what litellm sends for it)."""
        body: dict[str, Any] = {
            "model": self.wire_model,
            "messages": request.messages,
            "temperature": self.params.temperature,
            "max_tokens": self.params.max_tokens,
            "seed": request.seed,
        }
        if request.n > 1:
            body["n"] = request.n
        if self.params.logprobs:
            body |= {"logprobs": True, "top_logprobs": 1}
        body |= self.params.extra
        return json.dumps(body).encode()

    async def complete(self, request: Request) -> list[Choice]:
        import aiohttp

        content = self.body(request)
        avoid: Endpoint | None = None
        for attempt in range(len(self.endpoints.all)):
            endpoint = self.endpoints.pick(avoid)
            where = f" ({endpoint.label()})" if self.several else ""
            try:
                url, headers = self.targets[id(endpoint)]
                async with self.client.post(url, data=content, headers=headers) as response:
                    data = await _read_capped(response, MAX_ANSWER_BYTES)
                    status, answer_headers = response.status, response.headers
            except aiohttp.ClientConnectorError as exc:  # never reached the server: another now
                self.endpoints.done(endpoint, ok=False)
                if attempt + 1 < len(self.endpoints.all):
                    avoid = endpoint
                    continue
                raise RetryableError(f"APIConnectionError{where}: {exc}") from None
            except asyncio.TimeoutError as exc:
                self.endpoints.done(endpoint, ok=False)
                raise RetryableError(f"Timeout{where}: {type(exc).__name__} {exc}") from None
            except aiohttp.ClientError as exc:  # the connection broke mid-answer
                self.endpoints.done(endpoint, ok=False)
                raise RetryableError(
                    f"APIConnectionError{where}: {type(exc).__name__} {exc}"
                ) from None
            self.endpoints.done(endpoint, ok=status < 500)
            if status >= 300:
                raise self._failure(status, data, answer_headers, where)
            return self._parse_json(data)
        raise AssertionError("unreachable")  # pragma: no cover

    def _failure(self, status: int, data: bytes, headers: Any, where: str) -> Exception:
        """The error of an HTTP answer that is not a success, classified as litellm's is."""
        name = STATUS_NAMES.get(status, "InternalServerError" if status >= 500 else "APIError")
        text = f"{name}{where}: {_message(data)}"
        if status in (400, 422) and self.params.logprobs and "logprob" in text.lower():
            return FatalError(f"the provider rejects log-probs; rerun with --no-logprobs ({text})")
        if status in (401, 403, 404):
            return FatalError(f"HTTP {status} {text}")
        if status in (400, 422):
            return RequestError(f"HTTP {status} {text}")
        return RetryableError(f"HTTP {status} {text}", _retry_after(headers))

    def _parse_json(self, data: bytes) -> list[Choice]:
        try:
            response = json.loads(data)
            choices = response["choices"]
            texts, reasons, logprobs = [], [], []
            for c in choices:  # one pass: this runs for every sample
                texts.append(c["message"].get("content"))
                reasons.append(c.get("finish_reason"))
                lp = c.get("logprobs")
                logprobs.append(None if lp is None else mean_logprob(lp))
            usage = response.get("usage") or {}
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RetryableError(f"malformed response: {type(exc).__name__} {exc}") from None
        if not choices:
            raise RetryableError("malformed response: no choices")
        return self.choices(texts, reasons, logprobs, prompt, completion)


@contextlib.asynccontextmanager
async def open_lean(model: str, params: SamplingParams) -> AsyncIterator[Backend]:
    """The lean backend of ``model``: one pooled client for its run, closed when it exits; the
    endpoints' summary (answered, rested) is logged when there are several."""
    import aiohttp

    for base in (params.api_base, *params.extra_api_bases):
        if not base or not urlsplit(base.strip()).scheme.startswith("http"):
            raise InputError(f"--api-base {base!r}: expected an http:// or https:// base URL")
    # no cap on connections (the sampler's --concurrency is the cap); a total time per request
    timeout = aiohttp.ClientTimeout(total=params.timeout)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        backend = OpenAIHTTPBackend(model, params, session)
        try:
            yield backend
        finally:
            if backend.several:
                log(backend.endpoints.describe())


@register("litellm")
@contextlib.asynccontextmanager
async def _litellm_factory(model: str, params: SamplingParams) -> AsyncIterator[Backend]:
    """Any litellm model string: the lean client where it applies, else litellm itself."""
    check_model(model)
    if lean_applies(model, params):
        async with open_lean(model, params) as backend:
            yield backend
        return
    if params.extra_api_bases:
        raise InputError(
            f"--api-base given {1 + len(params.extra_api_bases)} times: several endpoints need "
            "an openai/ or hosted_vllm/ model on the lean client (not --client litellm)"
        )
    yield LiteLLMBackend(model, params)


async def _read_capped(response: Any, limit: int) -> bytes:
    """The body of ``response`` (an ``aiohttp.ClientResponse``), at most ``limit`` bytes.

    Raises:
        aiohttp.ClientPayloadError: the endpoint sent (or announced) more: a broken answer.
    """
    import aiohttp

    declared = response.content_length
    if declared is not None and declared > limit:
        raise aiohttp.ClientPayloadError(f"the answer is {declared} bytes, over {limit} bytes")
    data = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        data += chunk
        if len(data) > limit:
            raise aiohttp.ClientPayloadError(f"the answer is over {limit} bytes")
    return bytes(data)
