"""Provider batch APIs through litellm's files and batches calls (``sample --batch``).

:class:`BatchAPI` uploads a JSONL file of chat requests, creates a batch from it, retrieves and
lists batches and downloads their output.  :func:`request_body` is the body of one line,
exactly what the per-request path sends (messages, temperature, max_tokens, the sample's seed,
``n``, log-probs); :func:`choices_from_body` reads one completed line back into choices, priced
at the batch price.

Providers: OpenAI (and any OpenAI-compatible server with ``/v1/files`` and ``/v1/batches``,
through ``--api-base``) and Azure.  Others are refused up front in one line
(:func:`batch_provider`): Vertex AI and Bedrock need a storage bucket, the rest have no batch
API through litellm.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ttcalloc.backends.base import Choice, Request, SamplingParams
from ttcalloc.backends.litellm_backend import import_litellm, mean_logprob
from ttcalloc.backends.registry import backend_prefix
from ttcalloc.common.errors import InputError, TtcallocError
from ttcalloc.common.redact import redact_echo

SUPPORTED = ("openai", "azure")
BUCKET = {
    "vertex_ai": "a Cloud Storage bucket",
    "gemini": "a Cloud Storage bucket (Vertex AI batch)",
    "bedrock": "an S3 bucket and an IAM role",
}
ENDPOINT = "/v1/chat/completions"
# OpenAI's limits on one batch: 50,000 requests and a 200 MB input file (kept under, with room)
MAX_REQUESTS = 50_000
MAX_BYTES = 190 * 1024 * 1024
FINISHED = ("completed", "failed", "expired", "cancelled")
KEY = "ttcalloc_key"  # the metadata field naming a batch's journal entry


def batch_provider(model: str) -> tuple[str, str]:
    """The litellm provider of ``model`` and the model name its requests carry; a provider
    without a batch API ttcalloc can drive is a one-line :class:`InputError` naming it."""
    if backend_prefix(model) != "litellm":
        raise InputError(
            f"--batch: {model} is not a provider model; batches need a provider batch API "
            "(openai/..., azure/...)"
        )
    litellm = import_litellm()
    try:
        name, provider, _, _ = litellm.get_llm_provider(model)
    except Exception:
        raise InputError(f"--model {model!r}: litellm does not know this provider") from None
    if provider in BUCKET:
        raise InputError(
            f"--batch: {provider} batches read their input from {BUCKET[provider]}, which "
            "ttcalloc does not manage; sample without --batch"
        )
    if provider == "hosted_vllm":
        raise InputError(
            "--batch: litellm runs hosted_vllm batches itself, one request at a time; sample "
            "without --batch (or as openai/ with --api-base if the server has /v1/batches)"
        )
    if provider not in SUPPORTED:
        raise InputError(
            f"--batch: {provider} has no batch API through litellm (supported: "
            f"{', '.join(SUPPORTED)}); sample without --batch"
        )
    return str(provider), str(name)


def check_base(provider: str, api_base: str | None) -> None:
    """Refuse, in one line naming where it came from, a base URL with a query string: litellm's
    files and batches calls append ``/files`` and ``/batches`` after the query (and take no
    query of their own), so every call would go to another route.  Without ``--api-base``,
    litellm reads an OpenAI base from ``$OPENAI_BASE_URL``, else ``$OPENAI_API_BASE``."""
    where, url = "--api-base", api_base
    if not api_base and provider == "openai":
        set_ = [v for v in ("OPENAI_BASE_URL", "OPENAI_API_BASE") if os.environ.get(v)]
        where, url = (f"${set_[0]}", os.environ[set_[0]]) if set_ else (where, None)
    if url and urlsplit(url.strip()).query:
        raise InputError(
            f"{where}: --batch cannot send its query string (?...) with the files and batches "
            "requests (litellm appends their paths after it); give the base without it"
        )


def batch_prices(model: str) -> tuple[float, float] | None:
    """Dollars per million prompt and completion tokens in batches, from litellm's price map
    (``*_cost_per_token_batches``); None where it lists no batch price."""
    litellm = import_litellm()
    entry = litellm.model_cost.get(model)
    if not isinstance(entry, dict):
        entry = litellm.model_cost.get(model.split("/", 1)[-1])
    if not isinstance(entry, dict):
        return None
    cin = entry.get("input_cost_per_token_batches")
    cout = entry.get("output_cost_per_token_batches")
    if not isinstance(cin, (int, float)) or not isinstance(cout, (int, float)):
        return None
    return round(float(cin) * 1e6, 9), round(float(cout) * 1e6, 9)


def request_body(name: str, request: Request, params: SamplingParams) -> dict[str, Any]:
    """The chat request of one batch line: what the per-request path sends for ``request``."""
    body: dict[str, Any] = {
        "model": name,
        "messages": request.messages,
        "temperature": params.temperature,
        "max_tokens": params.max_tokens,
        "seed": request.seed,
    }
    if request.n > 1:
        body["n"] = request.n
    if params.logprobs:
        body |= {"logprobs": True, "top_logprobs": 1}
    return body


def choices_from_body(body: Mapping[str, Any], prices: tuple[float, float] | None) -> list[Choice]:
    """The choices of one completed chat response (a dict), each priced at ``prices`` (dollars
    per million tokens; the prompt shared among the choices, completion tokens split by
    length as the per-request path does).  A malformed body raises ValueError."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError("no choices")
    if not all(isinstance(c, Mapping) for c in choices):
        raise ValueError("a choice is not an object")
    raw_usage = body.get("usage")
    usage: Mapping[str, Any] = raw_usage if isinstance(raw_usage, Mapping) else {}
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    messages = [c.get("message") if isinstance(c.get("message"), Mapping) else {} for c in choices]
    texts = [m.get("content") for m in messages]
    if not all(t is None or isinstance(t, str) for t in texts):
        raise ValueError("a choice's content is not text")
    lengths = [len(t or "") for t in texts]
    total = sum(lengths) or 1
    out = []
    for c, text, length in zip(choices, texts, lengths, strict=True):
        own = None
        if isinstance(completion, int):
            own = round(completion * length / total) if len(texts) > 1 else completion
        cost = None
        if prices is not None and isinstance(prompt, int) and own is not None:
            cost = (prompt * prices[0] / len(texts) + own * prices[1]) / 1e6
        lp = mean_logprob(c.get("logprobs"))
        reason = c.get("finish_reason")
        out.append(Choice(text, reason if isinstance(reason, str) else None, prompt, own, cost, lp))
    return out


def _count(value: Any) -> int | None:
    """A token count from a provider's usage: a non-negative integer, else unknown (None)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


class NotAtProvider(TtcallocError):
    """The provider answered 404: no such batch or file (deleted, or another account's)."""


@dataclass(frozen=True)
class BatchInfo:
    """What the provider says of one batch."""

    id: str
    status: str
    input_file_id: str | None
    output_file_id: str | None
    error_file_id: str | None
    total: int
    completed: int
    failed: int
    metadata: dict[str, str]
    reason: str | None = None  # why the provider failed the batch as a whole (its errors)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def _info(batch: Any) -> BatchInfo:
    counts = getattr(batch, "request_counts", None)
    metadata = getattr(batch, "metadata", None) or {}
    return BatchInfo(
        id=str(batch.id),
        status=str(batch.status),
        input_file_id=getattr(batch, "input_file_id", None),
        output_file_id=getattr(batch, "output_file_id", None),
        error_file_id=getattr(batch, "error_file_id", None),
        total=int(getattr(counts, "total", 0) or 0),
        completed=int(getattr(counts, "completed", 0) or 0),
        failed=int(getattr(counts, "failed", 0) or 0),
        metadata={str(k): str(v) for k, v in dict(metadata).items()},
        reason=_reason(getattr(batch, "errors", None)),
    )


def _reason(errors: Any) -> str | None:
    """The first of a batch's own errors (``errors.data[0]``: code and message), if any."""
    data = errors.get("data") if isinstance(errors, dict) else getattr(errors, "data", None)
    if not isinstance(data, list) or not data:
        return None
    first: Any = data[0]
    fields = [first.get(k) if isinstance(first, dict) else getattr(first, k, None)
              for k in ("code", "message")]  # fmt: skip
    text = ": ".join(str(v) for v in fields if v)
    return text[:300] or None


class BatchAPI:
    """One provider's files and batches endpoints (litellm's sync calls; each call retried a
    few times on transient errors; an error no retry fixes (authentication, 4xx) or retries
    exhausted stop the run with one :class:`TtcallocError` line, the journal kept)."""

    def __init__(
        self, provider: str, api_base: str | None, timeout: float, retries: int = 4
    ) -> None:
        self.litellm = import_litellm()
        self.provider, self.retries = provider, retries
        self.kwargs: dict[str, Any] = {"custom_llm_provider": provider, "timeout": timeout}
        if api_base:
            self.kwargs["api_base"] = api_base
            if provider == "openai" and not os.environ.get("OPENAI_API_KEY"):
                self.kwargs["api_key"] = "EMPTY"  # a self-hosted server needs no key

    def _call(self, what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        lt = self.litellm
        for attempt in range(self.retries + 1):
            try:
                return func(*args, **(self.kwargs | kwargs))
            except (lt.AuthenticationError, lt.PermissionDeniedError) as exc:
                message = redact_echo(f"{what}: {type(exc).__name__}: {exc}")[:500]
                raise TtcallocError(message) from None
            except Exception as exc:
                status = getattr(exc, "status_code", None)
                hopeless = status in (400, 401, 403, 404, 422) or "api_key" in str(exc).lower()
                if hopeless or attempt == self.retries:
                    message = redact_echo(f"{what}: {type(exc).__name__}: {exc}")[:500]
                    raise (NotAtProvider if status == 404 else TtcallocError)(message) from None
                time.sleep(min(30.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    def upload(self, name: str, content: bytes) -> str:
        """Upload a JSONL file of requests; its file id."""
        lt = self.litellm
        file = (name, content, "application/jsonl")
        # a file of up to 190 MB: at least 10 minutes, whatever --timeout says
        timeout = {"timeout": max(600.0, float(self.kwargs["timeout"]))}
        created = self._call(
            "upload batch file", lt.create_file, file=file, purpose="batch", **timeout
        )
        return str(created.id)

    def create(self, file_id: str, key: str) -> BatchInfo:
        """Create a batch from an uploaded file, tagged with the journal entry's ``key``."""
        batch = self._call(
            "create batch",
            self.litellm.create_batch,
            completion_window="24h",
            endpoint=ENDPOINT,
            input_file_id=file_id,
            metadata={KEY: key},
        )
        return _info(batch)

    def retrieve(self, batch_id: str) -> BatchInfo:
        return _info(self._call("retrieve batch", self.litellm.retrieve_batch, batch_id=batch_id))

    def find(self, key: str, file_id: str, pages: int = 20) -> BatchInfo | None:
        """The batch tagged ``key`` (or created from ``file_id``) among the provider's most
        recent batches, if any: the one a run created but was killed before recording."""
        after = None
        for _ in range(pages):
            page = self._call("list batches", self.litellm.list_batches, after=after, limit=100)
            data = list(getattr(page, "data", None) or (page.get("data", []) if page else []))
            for batch in data:
                info = _info(batch)
                if info.metadata.get(KEY) == key or info.input_file_id == file_id:
                    return info
            has_more = getattr(page, "has_more", None)
            if has_more is None and isinstance(page, Mapping):
                has_more = page.get("has_more")
            if not data or not has_more:
                return None
            after = _info(data[-1]).id
        return None

    def content(self, file_id: str) -> str:
        """The text of an output or error file (bytes that are not UTF-8 replaced: their
        lines are not JSON, and are skipped)."""
        got = self._call("download batch output", self.litellm.file_content, file_id=file_id)
        raw = getattr(got, "content", got)
        return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


def batch_price(
    model: str, price_in: float | None, price_out: float | None, discount: float | None
) -> tuple[float, float] | None:
    """Dollars per million prompt and completion tokens of ``model`` in a batch: the given
    prices (``--price-in/--price-out``) or litellm's normal price times ``discount`` (0.5 when
    None), else litellm's batch price where it lists one; None when no price is known."""
    if price_in is not None or price_out is not None:
        d = 0.5 if discount is None else discount
        return (price_in or 0.0) * d, (price_out or 0.0) * d
    if discount is None and (listed := batch_prices(model)) is not None:
        return listed
    litellm = import_litellm()
    try:
        cin, cout = litellm.cost_per_token(
            model=model, prompt_tokens=1_000_000, completion_tokens=1_000_000
        )
    except Exception:  # litellm raises many types for a model it cannot price
        return None
    d = 0.5 if discount is None else discount
    return float(cin) * d, float(cout) * d
