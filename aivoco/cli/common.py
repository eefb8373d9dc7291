"""Small helpers shared by the call commands: key, URL and text-or-@file options."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from aivoco.errors import UsageError
from aivoco.redact import register_secret


def require_key(key: str | None) -> str:
    """The API key from --key or $AIVOCO_API_KEY; registered as a secret at once."""
    if key is None or not key.strip():
        raise UsageError("no API key: pass --key KEY or set AIVOCO_API_KEY")
    key = key.strip()
    register_secret(key)
    return key


def resolve_url(url: str | None, env_var: str, default: str, schemes: tuple[str, ...]) -> str:
    chosen = url or os.environ.get(env_var) or default
    parts = urlsplit(chosen)
    if parts.scheme not in schemes or not parts.netloc:
        raise UsageError(
            f"invalid URL {chosen!r}: expected {' or '.join(s + '://' for s in schemes)}HOST"
        )
    return chosen.rstrip("/")


def text_or_file(value: str | None) -> str:
    """`--system TEXT` or `--system @FILE` (the file's contents, UTF-8)."""
    if not value:
        return ""
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"cannot read {path}: {reason}") from exc
