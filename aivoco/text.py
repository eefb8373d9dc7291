"""Short, bounded renderings of values for messages: peers can send megabytes.

Error messages quote at most `SNIPPET_LIMIT` characters of an offending value, so a
hostile or broken peer cannot flood a terminal or a log through one error.
"""

from __future__ import annotations

from typing import Any

SNIPPET_LIMIT = 80


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
