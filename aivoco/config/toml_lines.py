"""Line numbers of the keys in a TOML file, for error messages.

TOML parsers (tomllib, tomli) return plain dicts without positions, so an error about
a key's value could not name its line. This scan finds each `[table]` header and each
`key = ` line and records the full dotted path it defines. It only ever serves error
messages: anything it cannot follow (a key inside an inline table, say) falls back to
the nearest enclosing key or table it did see.
"""

from __future__ import annotations

import json
import re

_BARE = r"[A-Za-z0-9_-]+"
_BASIC = r'"(?:[^"\\]|\\.)*"'
_LITERAL = r"'[^']*'"
_PART = rf"(?:{_BARE}|{_BASIC}|{_LITERAL})"
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*(?P<path>{_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^\s*(?P<path>{_DOTTED})\s*=(?P<rest>.*)$")
_PARTS = re.compile(_PART)

Path = tuple[str, ...]


def _parts(dotted: str) -> Path:
    out = []
    for raw in _PARTS.findall(dotted):
        if raw[0] == '"':
            try:
                out.append(str(json.loads(raw)))  # TOML's basic strings escape as JSON's
            except ValueError:
                out.append(raw[1:-1])
        elif raw[0] == "'":
            out.append(raw[1:-1])
        else:
            out.append(raw)
    return tuple(out)


def _opens_multiline(rest: str) -> str | None:
    """The delimiter of a multi-line string that starts on this line and stays open."""
    for delim in ('"""', "'''"):
        if rest.count(delim) % 2 == 1:
            return delim
    return None


def key_lines(text: str) -> dict[Path, int]:
    """Each table and key path the file defines -> its 1-based line (the first one)."""
    found: dict[Path, int] = {}
    table: Path = ()
    open_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if open_string is not None:
            if line.count(open_string) % 2 == 1:
                open_string = None
            continue
        header = _HEADER.match(line)
        if header:
            table = _parts(header["path"])
            found.setdefault(table, number)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            found.setdefault(table + _parts(assign["path"]), number)
            open_string = _opens_multiline(assign["rest"])
    return found


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of `path`, else of the nearest enclosing table or key that was seen."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
