"""Helpers the sessions share: tagged log lines, deviation bookkeeping, the emit type."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from aivoco.emulator.records import SessionRecord

LOGGER = logging.getLogger("aivoco.emulator")

# Deviations are counted without limit, but each kind is logged (at WARNING) and stored
# verbatim only this many times: a client that gets one field wrong in every 20 ms
# frame would otherwise drown the log.
DEVIATION_LOG_LIMIT = 5
DEVIATION_KEEP_LIMIT = 100

# Sends one Socket.IO event (name, payload) to one client: what an STS session and its
# function broker are given instead of the server object.
EmitEvent = Callable[[str, Any], Awaitable[None]]


if TYPE_CHECKING:
    _AdapterBase = logging.LoggerAdapter[logging.Logger]
else:  # LoggerAdapter is subscriptable at runtime only from Python 3.11
    _AdapterBase = logging.LoggerAdapter


class SessionLog(_AdapterBase):
    """Prefixes every line with the session's tag, e.g. `[sts#3]`."""

    def __init__(self, tag: str) -> None:
        super().__init__(LOGGER, {"tag": tag})
        self.tag = tag

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return f"[{self.tag}] {msg}", kwargs


def note_deviation(record: SessionRecord, log: SessionLog, kind: str, detail: str) -> None:
    """Count a protocol deviation by the client; the session keeps going."""
    record.deviation_counts[kind] += 1
    n = record.deviation_counts[kind]
    if len(record.deviations) < DEVIATION_KEEP_LIMIT:
        record.deviations.append(f"{kind}: {detail}")
    if n <= DEVIATION_LOG_LIMIT:
        more = " (further ones counted, not logged)" if n == DEVIATION_LOG_LIMIT else ""
        log.warning("protocol deviation %s: %s%s", kind, detail, more)
    else:
        log.debug("protocol deviation %s: %s", kind, detail)


def short(value: Any, limit: int = 80) -> str:
    """A one-line preview of a client value for the log."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
