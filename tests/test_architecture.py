"""The shape of the code, checked: no import cycles, small modules, short functions.

Read from the source with `ast` (nothing is imported), so a violation names the file
and line to look at.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "aivoco"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
SHORT_FUNCTION_PACKAGES = ("session", "protocols", "wire")


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def imports(path: Path, module: str) -> set[str]:
    """aivoco modules imported by `path` at any depth (lazy imports count too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("aivoco"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("aivoco"):
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
    return found


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def test_no_import_cycle_between_aivoco_packages() -> None:
    known = {m for m, _ in modules()}
    graph: dict[str, set[str]] = {}
    for module, path in modules():
        src = package_of(module)
        for name in imports(path, module):
            target = name
            while target not in known and "." in target:
                target = target.rpartition(".")[0]  # `from pkg import name` -> pkg
            dst = package_of(target)
            if dst != src and target in known:
                graph.setdefault(src, set()).add(dst)
    cycle = _find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_the_layers_point_one_way() -> None:
    """wire <- protocols <- session <- ui/cli: the lower never imports the higher."""
    forbidden = {
        "aivoco.wire": ("aivoco.protocols", "aivoco.session", "aivoco.ui", "aivoco.cli"),
        "aivoco.protocols": ("aivoco.session", "aivoco.ui", "aivoco.cli"),
        "aivoco.session": ("aivoco.ui", "aivoco.cli"),
        "aivoco.audio": ("aivoco.protocols", "aivoco.session", "aivoco.ui", "aivoco.cli"),
    }
    problems = []
    for module, path in modules():
        for target in imports(path, module):
            for bad in forbidden.get(package_of(module), ()):
                if target == bad or target.startswith(bad + "."):
                    problems.append(f"{module} imports {target}")
    assert problems == []


@pytest.mark.parametrize(("module", "path"), list(modules()), ids=str)
def test_modules_are_small(module: str, path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module}: {lines} lines"


def test_functions_in_the_core_are_short() -> None:
    long = []
    for module, path in modules():
        if module.split(".")[1:2] and module.split(".")[1] not in SHORT_FUNCTION_PACKAGES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {length} lines (line {node.lineno})")
    assert long == []


def test_no_comment_cites_a_file_outside_the_repository() -> None:
    stale = []
    for _module, path in modules():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "protocol notes" in line.lower() or "notes section" in line.lower():
                stale.append(f"{path.relative_to(ROOT.parent)}:{n}")
    assert stale == [], "cite docs/protocols.md#anchor instead"


def test_docs_anchors_cited_in_the_code_exist() -> None:
    """Every `docs/PAGE.md#anchor` a module cites names a page and an anchor in it."""
    docs = ROOT.parent / "docs"
    cited = re.compile(r"docs/([a-z0-9_-]+)\.md#([A-Za-z0-9_-]+)")
    missing = []
    for _module, path in modules():
        for page, anchor in cited.findall(path.read_text()):
            doc = docs / f"{page}.md"
            if not doc.exists() or f'id="{anchor}"' not in doc.read_text():
                missing.append(f"{path.name}: docs/{page}.md#{anchor}")
    assert missing == []
