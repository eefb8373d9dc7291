"""Custom functions as both sides of the call see them: definitions and failures.

Definitions go to the server in `start_call` (docs/protocols.md#sts-functions); the
session's function runner builds them from the user's file and answers calls with a
result or `failure_result()`. Living here, below both `protocols/` and `session/`, they
are defined once and neither package imports the other for them.

Wire shape: `{name, description, parameters: [{name, type, description, required}]}`.
Specs come from the user's file, so an invalid one raises `UsageError` (a message for
the user), not `ProtocolMisuseError`. Names follow what function-calling models accept:
letters, digits, '_', '.', '-', at most 64, not starting with a digit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aivoco.errors import UsageError
from aivoco.text import snippet, type_name

_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# JSON-schema style type names ("string", "number", ...); the notes list none, so any
# identifier is passed through.
_PARAM_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


@dataclass(frozen=True)
class FunctionParam:
    name: str
    type: str
    description: str
    required: bool

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _PARAM_NAME.fullmatch(self.name):
            raise UsageError(f"invalid function parameter name {snippet(self.name)}")
        where = f"parameter {self.name!r}"
        if not isinstance(self.type, str) or not _PARAM_TYPE.fullmatch(self.type):
            raise UsageError(f"{where}: invalid type {snippet(self.type)} (e.g. 'string')")
        if not isinstance(self.description, str):
            raise UsageError(f"{where}: description must be text")
        if not isinstance(self.required, bool):
            raise UsageError(f"{where}: 'required' must be true or false")

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "required": self.required,
        }


@dataclass(frozen=True)
class FunctionSpec:
    """A custom function the model may call; comes from the user's file (UsageError)."""

    name: str
    description: str
    parameters: tuple[FunctionParam, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _FUNCTION_NAME.fullmatch(self.name):
            raise UsageError(
                f"invalid function name {snippet(self.name)}: use letters, digits, '_', "
                "'.' or '-' (at most 64), starting with a letter or '_'"
            )
        if not isinstance(self.description, str):
            raise UsageError(f"function {self.name!r}: description must be text")
        params = tuple(self.parameters)
        seen: set[str] = set()
        for p in params:
            if not isinstance(p, FunctionParam):
                raise UsageError(f"function {self.name!r}: parameters must be FunctionParam")
            if p.name in seen:
                raise UsageError(f"function {self.name!r}: duplicate parameter {p.name!r}")
            seen.add(p.name)
        object.__setattr__(self, "parameters", params)

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": [p.to_wire() for p in self.parameters],
        }

    @classmethod
    def from_dict(cls, data: Any) -> FunctionSpec:
        """Build from the wire shape (as found in a user's JSON file); UsageError if bad."""
        if not isinstance(data, dict):
            raise UsageError(f"a function must be an object, got {type_name(data)}")
        params = data.get("parameters", [])
        if not isinstance(params, list):
            raise UsageError(f"function {snippet(data.get('name'))}: parameters must be a list")
        built = []
        for p in params:
            if not isinstance(p, dict):
                raise UsageError(
                    f"function {snippet(data.get('name'))}: a parameter is not an object"
                )
            built.append(
                FunctionParam(
                    p.get("name", ""),
                    p.get("type", "string"),
                    p.get("description", ""),
                    p.get("required", False),
                )
            )
        name: Any = data.get("name")  # validated by __post_init__
        return cls(name, data.get("description", ""), tuple(built))


def failure_result(error: str) -> dict[str, str]:
    """The `result` the reference clients send for a failed call: {error, status}."""
    return {"error": str(error), "status": "failed"}
