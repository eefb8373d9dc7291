"""Helpers shared by the codecs: short error snippets and one-line log summaries.

Peer payloads can be megabytes of base64, so error messages quote at most SNIPPET_LIMIT
characters of an offending value, and log summaries replace audio with its size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SNIPPET_LIMIT = 80
# Log summaries keep ordinary strings readable but bounded (a system prompt can be long).
_TEXT_LIMIT = 60
_MAX_ITEMS = 8

# Returns a replacement summary for (key, value), or None to summarise normally.
Abbreviator = Callable[[str, Any], "str | None"]


def snippet(value: Any, limit: int = SNIPPET_LIMIT) -> str:
    """A repr of `value` cut to about `limit` characters (slicing strings before repr)."""
    sliceable = isinstance(value, (str, bytes, bytearray))
    text = repr(value[: limit + 1]) if sliceable else repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def clip(text: str, limit: int = SNIPPET_LIMIT) -> str:
    """Plain text cut to `limit` characters (for messages that are already readable)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def base64_size(text: str) -> int:
    """Decoded byte count of base64 text, computed without decoding it."""
    n = len(text.rstrip("="))
    return n * 3 // 4


def summarize(value: Any, abbreviate: Abbreviator, key: str = "") -> str:
    """One-line, bounded rendering of a JSON-like value; `abbreviate` masks keys/audio."""
    if key:
        special = abbreviate(key, value)
        if special is not None:
            return special
    if isinstance(value, dict):
        items = list(value.items())
        parts = [f"{k}: {summarize(v, abbreviate, str(k))}" for k, v in items[:_MAX_ITEMS]]
        if len(items) > _MAX_ITEMS:
            parts.append(f"… +{len(items) - _MAX_ITEMS} keys")
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, (list, tuple)):
        parts = [summarize(v, abbreviate) for v in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            parts.append(f"… +{len(value) - _MAX_ITEMS} items")
        return "[" + ", ".join(parts) + "]"
    if isinstance(value, str) and len(value) > _TEXT_LIMIT:
        return f"{value[:_TEXT_LIMIT]!r}… ({len(value)} chars)"
    if isinstance(value, (bytes, bytearray)):
        return f"<binary {len(value)} bytes>"
    return repr(value)
