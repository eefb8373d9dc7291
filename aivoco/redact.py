"""Keep secrets out of every output: the API key, any URL that embeds it, URL passwords.

Secrets are registered once (when a call is built from its options); every sink applies
the same rule through this module: records (`redact_value`, before `--json`, `--plain`
and the transcript see them), the live view's entries, the summary, log records (via
`RedactingFilter`) and error messages. That includes text the server echoes back.

The rule: a registered secret is replaced by `***` wherever it occurs as a whole token,
that is not glued to letters or digits on either side (so a key `k` does not turn
`websocket` into `websoc***et`). A secret of `MIN_SAFE_LENGTH` characters or more is
replaced wherever it occurs, even inside a longer word: a long key is never part of an
ordinary word, and if a peer glues it to one it is still the key. Each secret is also
registered in the forms a URL or a JSON string would carry it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any
from urllib.parse import quote, urlsplit

MASK = "***"
# Below this a key is too short to mask without false hits, and too short to be a key
# anyone should trust: the command line warns about it (aivoco/cli/run.py).
MIN_SAFE_LENGTH = 8


class _Registry:
    """The registered secrets and the one pattern that finds them all."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.secrets: set[str] = set()
        self.pattern: re.Pattern[str] | None = None


_registry = _Registry()


def _forms(secret: str) -> set[str]:
    escaped_json = json.dumps(secret, ensure_ascii=False)[1:-1]
    return {secret, quote(secret, safe=""), quote(secret), escaped_json}


def _token(form: str) -> str:
    body = re.escape(form)
    if len(form) >= MIN_SAFE_LENGTH:
        return body
    # A short secret counts only as a whole token (no letter or digit glued to it).
    return rf"(?<![^\W_]){body}(?![^\W_])"


def _compile(secrets: set[str]) -> re.Pattern[str] | None:
    if not secrets:
        return None
    # Longest first, so a secret that contains another is masked as a whole.
    ordered = sorted(secrets, key=lambda s: (-len(s), s))
    return re.compile("|".join(_token(s) for s in ordered))


def register_secret(secret: str | None) -> None:
    if not secret:
        return
    with _registry.lock:
        _registry.secrets.update(f for f in _forms(secret) if f)
        _registry.pattern = _compile(_registry.secrets)


def register_url_credentials(url: str | None) -> None:
    """A URL's `user:password@` part is a secret too (item: `--url http://u:p@host`)."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        register_secret(userinfo)
    if password:
        register_secret(password)


def is_short(secret: str) -> bool:
    return 0 < len(secret) < MIN_SAFE_LENGTH


def clear_secrets() -> None:
    with _registry.lock:
        _registry.secrets.clear()
        _registry.pattern = None


def redact(text: str) -> str:
    pattern = _registry.pattern
    if pattern is None:
        return text
    return pattern.sub(MASK, text)


def redact_value(value: Any) -> Any:
    """`value` with every string in it (dict keys included) redacted; other values as is."""
    if _registry.pattern is None:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


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
