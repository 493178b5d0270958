"""Keep secrets out of artifacts, logs and error messages."""

from __future__ import annotations

import os
import re

_KEY_PATTERNS = [
    re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_\-]{8,}"),  # OpenAI-style and similar keys
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{12,}"),  # AWS access key ids
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.=]{8,}"),
    re.compile(r"(?i)(api[_-]?key[\"'=:\s]+)[A-Za-z0-9_\-.]{8,}"),
]
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)


def redact(text: str) -> str:
    """Replace API keys and the values of secret-looking environment variables with ``***``."""
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and len(value) >= 8 and value in text:
            text = text.replace(value, "***")
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + "***", text)
    return text
