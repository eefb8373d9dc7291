"""YAML with line numbers: PyYAML's node tree, read with one problem list per file.

PyYAML's `compose()` keeps each node's start mark, so every problem can name the file,
line and key it is about; `construct_object` then turns one scalar or sequence node into
Python values with the safe constructor (no tags that run code). Duplicate keys, which
PyYAML would silently resolve to the last one, are reported too.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from aivoco.errors import UsageError
from aivoco.text import clip, terminal_safe

T = TypeVar("T")
INVALID = object()  # a value the safe constructor refused (already a problem)


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ScenarioFileError(UsageError):
    """Every problem found in the scenario files, reported at once (exit code 2)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{count} in the scenario files, nothing was run:\n{lines}")


class Reader:
    """One file's node tree and the problems found in it."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        self._loader: yaml.SafeLoader | None = None

    def compose(self, text: str) -> yaml.Node | None:
        try:
            self._loader = yaml.SafeLoader(text)
            return self._loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            what = " ".join(s for s in (exc.context, exc.problem) if s)
            self.problem(line, "", f"not valid YAML: {what}")
        except yaml.YAMLError as exc:
            self.problem(0, "", f"not valid YAML: {exc}")
        return None

    def problem(self, line: int, key: str, message: str) -> None:
        self.problems.append(Problem(self.path, line, key, message))

    def value(self, node: yaml.Node) -> Any:
        """The node as Python values; INVALID (and a problem) for a tag the safe
        constructor refuses (`!!python/...`)."""
        assert self._loader is not None
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problem(line_of(node), "", f"not valid YAML: {getattr(exc, 'problem', exc)}")
            return INVALID

    def mapping(
        self, node: yaml.Node, key: str, allowed: frozenset[str]
    ) -> dict[str, tuple[int, yaml.Node]]:
        """A mapping's entries as {key: (line, value node)}; unknown and repeated keys
        are problems (and left out)."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(line_of(node), key, f"expected a mapping, got {kind_of(node)}")
            return {}
        out: dict[str, tuple[int, yaml.Node]] = {}
        for knode, vnode in node.value:
            line = line_of(knode)
            name = knode.value if isinstance(knode, yaml.ScalarNode) else None
            full = f"{key}.{name}" if key else str(name)
            if not isinstance(name, str) or name not in allowed:
                shown = terminal_safe(clip(str(name), 40))
                hint = difflib.get_close_matches(str(name), sorted(allowed), n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.problem(line, full if name else key, f"unknown key {shown!r}{extra}")
            elif name in out:
                self.problem(line, full, f"repeated key (first on line {out[name][0]})")
            else:
                out[name] = (line, vnode)
        return out

    def typed(
        self, node: yaml.Node, key: str, check: Callable[[Any], T | None], expected: str
    ) -> T | None:
        """`check(value)` returns the converted value, or None when it does not fit."""
        raw = self.value(node) if isinstance(node, yaml.ScalarNode | yaml.SequenceNode) else node
        if raw is INVALID:
            return None
        got = check(raw) if not isinstance(raw, yaml.Node) else None
        if got is None:
            shown = kind_of(node) if isinstance(raw, yaml.Node) else describe(raw)
            self.problem(line_of(node), key, f"expected {expected}, got {shown}")
        return got


def line_of(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def kind_of(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return repr(terminal_safe(clip(str(node.value), 40)))


def describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    return repr(terminal_safe(clip(str(value), 40)))


def items(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        yield from node.value


# -- value checks: the converted value, or None ---------------------------------------------
def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def boolean(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def strings(value: Any) -> tuple[str, ...] | None:
    """A string or a list of strings."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None
