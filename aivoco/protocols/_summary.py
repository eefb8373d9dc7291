"""One-line log summaries shared by the codecs (audio replaced by its size).

Peer payloads can be megabytes of base64, nested thousands of levels deep, or hold
integers of thousands of digits, and a summary is written for every message before it
is decoded. So a summary is bounded in depth, items and text, never recurses further
than `_MAX_LEVELS`, and never calls `repr` on a container or a huge integer: it is total
(any value gives a string) and short.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from aivoco import text as _text
from aivoco.text import SNIPPET_LIMIT, clip, type_name

__all__ = ["Abbreviator", "base64_size", "clip", "snippet", "summarize", "type_name"]

# Log summaries keep ordinary strings readable but bounded (a system prompt can be long).
_TEXT_LIMIT = 60
_MAX_ITEMS = 8
_MAX_LEVELS = 4  # deeper containers are shown as {…} / […]
_MAX_NODES = 48  # values rendered in one summary, all levels together
_BIG_INT = 10**30

# Returns a replacement summary for (key, value), or None to summarise normally.
Abbreviator = Callable[[str, Any], "str | None"]


def base64_size(text: str) -> int:
    """Decoded byte count of base64 text, computed without decoding it."""
    n = len(text.rstrip("="))
    return n * 3 // 4


def _plain(key: str, value: Any) -> str | None:
    return None


def summarize(value: Any, abbreviate: Abbreviator = _plain, key: str = "") -> str:
    """One-line, bounded rendering of a JSON-like value; `abbreviate` masks keys/audio."""
    return _Summary(abbreviate).render(value, key, 0)


def snippet(value: Any, limit: int = SNIPPET_LIMIT) -> str:
    """A short quote of a peer's value for an error message (total, unlike `repr`)."""
    if isinstance(value, (str, bytes, bytearray)):
        return _text.snippet(value, limit)
    return clip(summarize(value), limit)


class _Summary:
    def __init__(self, abbreviate: Abbreviator) -> None:
        self.abbreviate = abbreviate
        self.nodes = _MAX_NODES

    def render(self, value: Any, key: str, level: int) -> str:
        self.nodes -= 1
        if key:
            special = self.abbreviate(key, value)
            if special is not None:
                return special
        if isinstance(value, dict):
            return self._container(value, level, "{", "}", "keys")
        if isinstance(value, (list, tuple)):
            return self._container(value, level, "[", "]", "items")
        return _scalar(value)

    def _container(self, value: Any, level: int, left: str, right: str, noun: str) -> str:
        if not value:
            return left + right
        if level >= _MAX_LEVELS or self.nodes <= 0:
            return f"{left}…{right}"
        items = value.items() if isinstance(value, dict) else value
        parts = []
        for item in itertools.islice(items, _MAX_ITEMS):
            if self.nodes <= 0:
                break
            if isinstance(value, dict):
                k, v = item
                name = clip(k, _TEXT_LIMIT) if isinstance(k, str) else _scalar(k)
                parts.append(f"{name}: {self.render(v, str(name), level + 1)}")
            else:
                parts.append(self.render(item, "", level + 1))
        if len(value) > len(parts):
            parts.append(f"… +{len(value) - len(parts)} {noun}")
        return left + ", ".join(parts) + right


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        if len(value) > _TEXT_LIMIT:
            return f"{value[:_TEXT_LIMIT]!r}… ({len(value)} chars)"
        return repr(value)
    if isinstance(value, (bytes, bytearray)):
        return f"<binary {len(value)} bytes>"
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        if abs(value) >= _BIG_INT:  # repr of >4300 digits raises; long ones say nothing
            return f"<integer of ~{int(value.bit_length() * 0.30103) + 1} digits>"
        return repr(value)
    return f"<{type(value).__name__}>"
