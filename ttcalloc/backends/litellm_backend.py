"""Any provider litellm supports (the only module that imports litellm)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from ttcalloc.backends.base import (
    Choice,
    FatalError,
    Request,
    RequestError,
    RetryableError,
    SamplingParams,
)
from ttcalloc.common.errors import InputError


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


def count_prompt_tokens(model: str, messages: list[dict[str, str]]) -> int:
    """Prompt tokens of ``messages``: litellm's token counter (the model's tokenizer, else
    cl100k), and never fewer than one token per 4 characters."""
    litellm = import_litellm()
    chars = sum(len(m.get("content") or "") for m in messages)
    try:
        counted = int(litellm.token_counter(model=model, messages=messages))
    except Exception:  # litellm raises many types for models it cannot tokenize
        counted = 0
    return max(counted, -(-chars // 4))


def known_price(model: str) -> bool:
    """Whether litellm's price map prices ``model`` (its local copy: no network)."""
    litellm = import_litellm()
    try:
        litellm.cost_per_token(model=model, prompt_tokens=1_000_000, completion_tokens=1_000_000)
    except Exception:  # litellm raises many types for a model it cannot price
        return False
    return True


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


UNLIKELY = -9999.0  # OpenAI's placeholder for "not among the top 20 tokens", not a measurement


def _field(obj: Any, key: str) -> Any:
    """``obj[key]`` or ``obj.key`` (litellm gives objects, or plain dicts it could not type)."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _token_logprobs(logprobs: Any) -> list[Any]:
    """The per-token log-probs of a choice: chat format (``content[i].logprob``), else the legacy
    completions format (``token_logprobs``); [] when neither is there."""
    content = _field(logprobs, "content")
    if isinstance(content, (list, tuple)):
        return [_field(token, "logprob") for token in content]
    legacy = _field(logprobs, "token_logprobs")
    return list(legacy) if isinstance(legacy, (list, tuple)) else []


def mean_logprob(logprobs: Any) -> float | None:
    """Mean token log-prob of one choice's ``logprobs`` (None when absent or unreadable).

    Tokens without a usable number (None, NaN, the -9999 placeholder) are left out.
    """
    if logprobs is None:
        return None
    try:
        values = [
            float(v)
            for v in _token_logprobs(logprobs)
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
    except Exception:  # an odd object from some provider: no log-probs, never a failed sample
        return None
    values = [v for v in values if math.isfinite(v) and v > UNLIKELY]
    return sum(values) / len(values) if values else None


def _rejects_logprobs(exc: Exception, lt: Any) -> bool:
    """Whether a provider refused the request because of the log-probs parameter."""
    invalid = (lt.BadRequestError, lt.UnprocessableEntityError)
    return isinstance(exc, invalid) and "logprob" in str(exc).lower()


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

    def prices(self) -> tuple[float, float] | None:
        """Dollars per million prompt and completion tokens (None when unknown)."""
        p = self.params
        if p.price_in is not None or p.price_out is not None:
            return p.price_in or 0.0, p.price_out or 0.0
        try:
            cin, cout = self.litellm.cost_per_token(
                model=self.route, prompt_tokens=1_000_000, completion_tokens=1_000_000
            )
            return float(cin), float(cout)
        except Exception:
            return None

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
        if self.params.logprobs:
            # one alternative per token: llama.cpp sends 20 when unasked, and none when asked for 0
            kwargs |= {"logprobs": True, "top_logprobs": 1}
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
            if self.params.logprobs and _rejects_logprobs(exc, lt):
                raise FatalError(
                    f"the provider rejects log-probs; rerun with --no-logprobs "
                    f"({type(exc).__name__}: {exc})"
                ) from None
            status = getattr(exc, "status_code", None)
            if status in (401, 403, 404):  # whatever litellm named it: no retry can fix it
                raise FatalError(f"HTTP {status} {type(exc).__name__}: {exc}") from None
            if status == 400:
                raise RequestError(f"HTTP 400 {type(exc).__name__}: {exc}") from None
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
            logprobs = [mean_logprob(getattr(c, "logprobs", None)) for c in choices]
            usage = getattr(response, "usage", None)
            prompt = getattr(usage, "prompt_tokens", None)
            completion = getattr(usage, "completion_tokens", None)
        except (AttributeError, TypeError) as exc:
            raise RetryableError(f"malformed response: {exc}") from None
        if not choices:
            raise RetryableError("malformed response: no choices")
        return self.choices(texts, reasons, logprobs, prompt, completion)

    def choices(
        self,
        texts: list[str | None],
        reasons: list[str | None],
        logprobs: list[float | None],
        prompt: int | None,
        completion: int | None,
    ) -> list[Choice]:
        """The choices of one response, each with its share of the usage and its dollar cost."""
        if not prompt and not completion:  # litellm fills a missing usage with zeros
            prompt = completion = None
        # Per-choice completion tokens: the server reports a total; split it by text length.
        lengths = [len(t or "") for t in texts]
        total_len = sum(lengths) or 1
        k = len(texts)
        out = []
        for text, reason, length, lp in zip(texts, reasons, lengths, logprobs, strict=True):
            own = None
            if completion is not None:
                own = round(completion * length / total_len) if k > 1 else int(completion)
            c_in, c_out = self._cost(prompt, own)  # None at once without usage or a price
            cost = None if c_in is None or c_out is None else c_in / k + c_out
            out.append(Choice(text, reason, prompt, own, cost, lp))
        return out
