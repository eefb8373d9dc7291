"""One-line log summaries shared by the codecs (audio replaced by its size).

Peer payloads can be megabytes of base64, so summaries are bounded in items and text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aivoco.text import clip, snippet, type_name

__all__ = ["Abbreviator", "base64_size", "clip", "snippet", "summarize", "type_name"]

# Log summaries keep ordinary strings readable but bounded (a system prompt can be long).
_TEXT_LIMIT = 60
_MAX_ITEMS = 8

# Returns a replacement summary for (key, value), or None to summarise normally.
Abbreviator = Callable[[str, Any], "str | None"]


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
