"""Shared pieces of the custom-function loaders: types, failures, JSON results."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aivoco.errors import UsageError
from aivoco.wire.functions import FunctionParam, FunctionSpec

DEFAULT_TIMEOUT_S = 10.0
JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object")
STDERR_TAIL_LINES = 5

# A handler gets the call's arguments and the time budget, and enforces that budget
# itself (only it knows how to stop its work). `CallError` carries a ready-made message.
Handler = Callable[[Mapping[str, Any], float], Any]


class CallError(Exception):
    """A failure whose message is final (no exception type prefix)."""


@dataclass(frozen=True)
class FunctionOutcome:
    ok: bool
    result: Any  # JSON-ready; for failures {"error": message, "status": "failed"}
    error: str | None
    duration_ms: float


def make_spec(
    where: str, name: str, description: str, params: list[tuple[str, str, str, bool]]
) -> FunctionSpec:
    # The codec validates names (what function-calling models accept) and duplicates;
    # we only add where in the user's file the problem is.
    try:
        return FunctionSpec(name, description, tuple(FunctionParam(*p) for p in params))
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from exc


# --- results ------------------------------------------------------------------------


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    return str(value)


def to_json(value: Any) -> Any:
    # A round trip guarantees the session can send it; NaN is refused because the
    # server's JSON.parse would reject the whole message.
    try:
        text = json.dumps(value, default=json_default, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise CallError(f"result is not JSON-serialisable: {describe(exc)}") from exc
    return json.loads(text)
