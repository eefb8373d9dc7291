"""Custom functions for `aivoco sts --functions FILE`: load, describe, run.

A `.py` file exposes its public top-level functions (schema from signature, type hints
and docstring); a `.json` file lists functions in the API's own shape, each answered by
a command (`"command": [argv...]`, no shell, arguments as JSON on stdin) or a static
`"result"`. Either way the registry hands `start_call` plain `FunctionSpec`s, so
`command`/`result` never reach the server, and `run()` turns every call into a
`FunctionOutcome` whose failures already have the wire's `{"error", "status"}` shape.

`run()` keeps no mutable state, so the session may call it from several worker threads
at once; each call gets its own process or worker thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aivoco.errors import UsageError
from aivoco.session.functions._common import (
    DEFAULT_TIMEOUT_S,
    JSON_TYPES,
    CallError,
    FunctionOutcome,
    Handler,
    describe,
    to_json,
)
from aivoco.session.functions._json import _load_json
from aivoco.session.functions._python import _load_python
from aivoco.wire.functions import FunctionSpec, failure_result

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "JSON_TYPES",
    "FunctionOutcome",
    "FunctionRegistry",
    "Handler",
    "load_functions",
]


class FunctionRegistry:
    """Immutable after construction, hence safe to `run()` from many threads."""

    def __init__(self, functions: Iterable[tuple[FunctionSpec, Handler]] = ()) -> None:
        self._specs: dict[str, tuple[FunctionSpec, Handler]] = {}
        for spec, handler in functions:
            if spec.name in self._specs:
                raise UsageError(f"duplicate function name {spec.name!r}")
            self._specs[spec.name] = (spec, handler)

    @property
    def specs(self) -> tuple[FunctionSpec, ...]:
        return tuple(spec for spec, _ in self._specs.values())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def run(
        self, name: str, arguments: Any, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> FunctionOutcome:
        """Call `name`; never raises for anything the handler or the server did."""
        start = time.perf_counter()
        try:
            entry = self._specs.get(name)
            if entry is None:
                raise CallError(f"unknown function {name!r}")
            if arguments is None:
                arguments = {}
            if not isinstance(arguments, dict):
                raise CallError(f"arguments must be an object, got {type(arguments).__name__}")
            result = to_json(entry[1](arguments, timeout_s))
        except Exception as exc:  # a user function may raise anything
            error = str(exc) if isinstance(exc, CallError) else describe(exc)
            elapsed = (time.perf_counter() - start) * 1000
            return FunctionOutcome(False, failure_result(error), error, elapsed)
        return FunctionOutcome(True, result, None, (time.perf_counter() - start) * 1000)


def load_functions(path: str | os.PathLike[str]) -> FunctionRegistry:
    """Load a `.py` or `.json` functions file; every problem is a `UsageError`."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"functions file not found: {file}")
    suffix = file.suffix.lower()
    if suffix not in (".py", ".json"):
        raise UsageError(f"functions file {file} must end in .py or .json, not {suffix!r}")
    entries = _load_python(file) if suffix == ".py" else _load_json(file)
    try:
        registry = FunctionRegistry(entries)
    except UsageError as exc:  # a duplicate name
        raise UsageError(f"{file}: {exc}") from exc
    if not registry.names:
        raise UsageError(f"functions file {file} defines no functions")
    return registry
