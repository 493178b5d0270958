"""Keep secrets out of artifacts, logs and error messages.

:func:`redact` masks API keys, bearer and basic credentials, secret-looking header values, the
password of a URL (``scheme://user:password@host``), secret-looking URL query parameters
(``?api-key=...``, ``&token=...``) and the values of secret-looking environment variables.
:func:`redact_data` applies it to every string of a JSON-like value; the artifact writers call
it on everything they store, and the console on everything it prints.
"""

from __future__ import annotations

import os
import re
from typing import Any

_SECRET_WORDS = "key|token|secret|passw(?:or)?d|pwd|sig|signature|auth|credential|session"
_SECRET_NAME = rf"[A-Za-z0-9_\-]*(?:{_SECRET_WORDS})[A-Za-z0-9_\-]*"
_KEY_PATTERNS = [
    re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_\-]{8,}"),  # OpenAI-style and similar keys
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{12,}"),  # AWS access key ids
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.=~+/]{8,}"),
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]{8,}"),
    re.compile(r"(?i)(api[_-]?key[\"'=:\s]+)[A-Za-z0-9_\-.]{8,}"),
    re.compile(r"(?i)((?:x-)?(?:auth|access|refresh|session)[_-]?token[\"'=:\s]+)[^\s\"'&,;]{4,}"),
    # scheme://user:password@host
    re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^/\s:@\"']*:)[^/\s@\"']+(?=@)"),
    # ?api-key=... &token=... in a URL's query
    re.compile(rf"(?i)([?&;]{_SECRET_NAME}=)[^&#\s\"']+"),
]
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)


def redact(text: str) -> str:
    """Replace credentials and the values of secret-looking environment variables with ``***``."""
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and len(value) >= 8 and value in text:
            text = text.replace(value, "***")
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + "***", text)
    return text


def redact_data(value: Any) -> Any:
    """``value`` with :func:`redact` applied to every string in it (dicts, lists, tuples)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_data(v) for v in value)
    return value
