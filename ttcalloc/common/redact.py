"""Keep secrets out of artifacts, logs and error messages.

:func:`redact` masks API keys, bearer and basic credentials, secret-looking header values, the
password of a URL (``scheme://user:password@host``), secret-looking URL query parameters
(``?api-key=...``, ``&token=...``) and the values of secret-looking environment variables.
:func:`redact_data` applies it to every string of a JSON-like value; the artifact writers call
it on everything they store, and the console on everything it prints.

A credential echoed back by a server (in an error message or a completion) need not carry a
label: :func:`redact_echo` also masks the credentials this process sends (:func:`keep_secret`:
the key-like query parameters and password of ``--api-base``) and the values of secret-looking
environment variables, whatever their length: from 8 characters wherever they are, from 3 as
whole words (a shorter value cannot be told from ordinary text).  It is applied to what a
server sends back before it reaches a file or a log.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_SECRET_WORDS = "key|token|secret|passw(?:or)?d|pwd|sig|signature|auth|credential|session"
_SECRET_NAME = rf"[A-Za-z0-9_\-]*(?:{_SECRET_WORDS})[A-Za-z0-9_\-]*"
_KEY_PATTERNS = [
    re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_\-]{8,}"),  # OpenAI-style and similar keys
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{12,}"),  # AWS access key ids
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.=~+/]{8,}"),
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]{8,}"),
    re.compile(r"(?i)(api[_-]?key[\"'=:\s]+)[A-Za-z0-9_\-.]{8,}"),
    # a key-like header or field given as name: value (or name=value), whatever its length
    re.compile(r"(?i)(\bapi[_-]?key[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;]+"),
    re.compile(
        r"(?i)(\bauthorization[\"']?\s*[=:]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)[^\s\"'&,;]+"
    ),
    re.compile(r"(?i)((?:x-)?(?:auth|access|refresh|session)[_-]?token[\"'=:\s]+)[^\s\"'&,;]{4,}"),
    # scheme://user:password@host
    re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^/\s:@\"']*:)[^/\s@\"']+(?=@)"),
    # ?api-key=... &token=... in a URL's query
    re.compile(rf"(?i)([?&;]{_SECRET_NAME}=)[^&#\s\"']+"),
]
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_ECHO_MIN = 3  # shorter values are masked only where a label says they are a credential
_KEPT: set[str] = set()
_SECRET_PARAM = re.compile(rf"(?i)^{_SECRET_NAME}$")


def keep_secret(value: str | None) -> None:
    """Remember a credential this process sends: :func:`redact_echo` masks it wherever a
    server echoes it, however short."""
    if value and len(value) >= _ECHO_MIN:
        _KEPT.add(value)


def keep_url_secrets(url: str | None) -> None:
    """Remember the password and the key-like query parameters of ``url`` (``--api-base``)."""
    for value in _url_secrets(url):
        keep_secret(value)


def _url_secrets(url: str | None) -> list[str]:
    if not url or "://" not in url:
        return []
    try:
        parts = urlsplit(url.strip())
        found = [parts.password or ""]
        found += [v for k, v in parse_qsl(parts.query) if _SECRET_PARAM.match(k)]
    except ValueError:
        return []
    return [v for v in found if len(v) >= _ECHO_MIN]


def echoed() -> list[str]:
    """The credentials in use, to mask in what a server sends back (longest first); pass them
    to :func:`mask_echo` when masking many strings at once."""
    values = set(_KEPT)
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and len(value) >= _ECHO_MIN:
            values.add(value)
        values.update(_url_secrets(value))  # e.g. OPENAI_API_BASE=https://h/v1?key=...
    return sorted(values, key=len, reverse=True)


def redact_echo(text: str) -> str:
    """:func:`redact`, and every credential in use masked as a whole word whatever its length:
    for text a server sent back (an error message, a completion), which may echo a key."""
    return redact(mask_echo(text, echoed()))


def mask_echo(text: str, values: list[str] | None = None) -> str:
    """Only the credentials in use masked (a completion keeps everything else): those of 8
    characters or more wherever they are, shorter ones as whole words."""
    for value in echoed() if values is None else values:
        if value not in text:
            continue
        if len(value) >= 8:
            text = text.replace(value, "***")
        else:
            word = rf"(?<![A-Za-z0-9_\-]){re.escape(value)}(?![A-Za-z0-9_\-])"
            text = re.sub(word, "***", text)
    return text


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
