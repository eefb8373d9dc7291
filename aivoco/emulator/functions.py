"""Custom functions on the STS service: check the definitions, invent plausible arguments.

`start_call.custom_functions` items are `{name, description, parameters: [{name, type,
description, required}]}` (docs/protocols.md#sts-functions). Clients written against other
function-calling APIs send JSON-Schema style parameters (`{"type": "object",
"properties": {...}, "required": [...]}`); the emulator accepts both so that such a
client gets its arguments rather than an opaque failure, but logs it as a deviation.

Arguments include every parameter, required and optional, so a client's handler sees
the full shape it declared; the value follows the parameter's `type`, with a few name
hints ("city", "email", ...) to look like something a model would produce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Billing per the playground (docs/protocols.md#sts-functions).
UNITS_PER_DEFINITION = 0.05
UNITS_PER_1000_TOKENS = 0.5
UNITS_PER_CALL = 0.05

_NAME_HINTS: list[tuple[tuple[str, ...], Any]] = [
    (("email",), "ada@example.com"),
    (("city", "location", "place"), "Paris"),
    (("country",), "France"),
    (("date", "day"), "2025-01-15"),
    (("time",), "14:30"),
    (("phone",), "+1-555-0100"),
    (("name", "user", "person"), "Ada Lovelace"),
    (("url", "link"), "https://example.com"),
    (("unit",), "celsius"),
    (("lang",), "en"),
]


@dataclass
class DeclaredParam:
    name: str
    type: str
    required: bool


@dataclass
class DeclaredFunction:
    name: str
    params: list[DeclaredParam] = field(default_factory=list)


def example_value(name: str, type_: str) -> Any:
    t = type_.lower()
    if t in ("number", "float", "double"):
        return 21.5
    if t in ("integer", "int"):
        return 3
    if t in ("boolean", "bool"):
        return True
    if t == "array":
        return ["example"]
    if t == "object":
        return {"key": "value"}
    lowered = name.lower()
    for hints, value in _NAME_HINTS:
        if any(h in lowered for h in hints):
            return value
    return f"example {name}"


def build_arguments(spec: DeclaredFunction) -> dict[str, Any]:
    return {p.name: example_value(p.name, p.type) for p in spec.params}


def parse_functions(raw: Any) -> tuple[list[DeclaredFunction], list[str]]:
    """Usable function specs and a list of problems (each one a logged deviation)."""
    problems: list[str] = []
    if raw is None:
        return [], problems
    if not isinstance(raw, list):
        return [], [f"custom_functions must be a list, got {type(raw).__name__}"]
    specs: list[DeclaredFunction] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            problems.append(f"custom_functions[{i}] has no string name; skipped")
            continue
        params, issues = _parse_params(item.get("parameters", []))
        problems.extend(f"function {item['name']!r}: {m}" for m in issues)
        specs.append(DeclaredFunction(item["name"], params))
    return specs, problems


def _parse_params(raw: Any) -> tuple[list[DeclaredParam], list[str]]:
    if isinstance(raw, dict) and isinstance(raw.get("properties"), dict):
        required = raw.get("required") or []
        from_schema = [
            DeclaredParam(
                name,
                str(schema.get("type", "string")) if isinstance(schema, dict) else "string",
                name in required,
            )
            for name, schema in raw["properties"].items()
        ]
        return from_schema, ["JSON-Schema style parameters (the API documents a list); accepted"]
    if not isinstance(raw, list):
        return [], [f"parameters must be a list, got {type(raw).__name__}"]
    params: list[DeclaredParam] = []
    issues: list[str] = []
    for j, p in enumerate(raw):
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            issues.append(f"parameters[{j}] has no string name; skipped")
            continue
        type_ = p.get("type", "string")
        if not isinstance(type_, str):
            issues.append(f"parameter {p['name']!r} has a non-string type; using string")
            type_ = "string"
        params.append(DeclaredParam(p["name"], type_, bool(p.get("required", False))))
    return params, issues


def definition_units(raw: Any, specs: list[DeclaredFunction]) -> float:
    """Admin units for loading the definitions: per function plus per ~1000 tokens."""
    if not specs:
        return 0.0
    # A rough token count (4 characters per token) is enough for an emulator.
    tokens = len(repr(raw)) / 4
    return UNITS_PER_DEFINITION * len(specs) + UNITS_PER_1000_TOKENS * tokens / 1000
