"""Keep secrets out of every output: the API key and any call URL that embeds it.

Secrets are registered once (when the command reads `--key`); `redact()` is applied to
every message the CLI prints and every log record (via `RedactingFilter`). The key is
also registered URL-escaped, since the agent-call URL carries it that way.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import quote

_MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(secret: str | None) -> None:
    if not secret:
        return
    with _lock:
        _secrets.add(secret)
        _secrets.add(quote(secret, safe=""))
        _secrets.add(quote(secret))


def clear_secrets() -> None:
    with _lock:
        _secrets.clear()


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        if s:
            text = text.replace(s, _MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now, redacted, so handlers never format the raw one.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
