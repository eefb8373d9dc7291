"""`.py` functions files: schema from signatures, type hints and docstrings."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import re
import sys
import threading
import traceback
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aivoco.errors import UsageError
from aivoco.session.functions._common import (
    CallError,
    Handler,
    describe,
    make_spec,
)
from aivoco.wire.functions import FunctionSpec

# --- .py files ----------------------------------------------------------------------


def _load_python(file: Path) -> list[tuple[FunctionSpec, Handler]]:
    # A unique name can never clash with a real module; it stays registered because
    # dataclasses and typing look the module up there while the functions live.
    module_name = f"_aivoco_functions_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # Like `python FILE`: helpers next to the file are importable while it loads.
    folder = str(file.parent.resolve())
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise UsageError(
            f"{exc.filename or file}: line {exc.lineno}: SyntaxError: {exc.msg}"
            + (f"\n    {exc.text.strip()}" if exc.text else "")
        ) from exc
    except (Exception, SystemExit) as exc:
        del sys.modules[module_name]
        tb = traceback.extract_tb(exc.__traceback__)
        lines = [f.lineno for f in tb if Path(f.filename).resolve() == file.resolve()]
        where = f": line {lines[-1]}" if lines else ""
        raise UsageError(f"{file}{where}: {describe(exc)}") from exc
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    # Only functions defined here under their own name: no imports, no aliases.
    mine = [o for n, o in vars(module).items() if inspect.isfunction(o) and o.__name__ == n]
    return [
        _python_function(fn, file)
        for fn in mine
        if fn.__module__ == module_name and not fn.__name__.startswith("_")
    ]


def _python_function(fn: Callable[..., Any], file: Path) -> tuple[FunctionSpec, Handler]:
    where = f"{file}: function {fn.__name__}"
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:
        raise UsageError(f"{where}: cannot resolve type hints: {describe(exc)}") from exc
    description, param_docs = _parse_docstring(inspect.getdoc(fn) or "")
    params: list[tuple[str, str, str, bool]] = []
    fill_none: list[str] = []  # Optional without a default: the server may omit them
    takes_kwargs = False
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            takes_kwargs = True
        elif p.kind is p.POSITIONAL_ONLY:
            raise UsageError(f"{where}: positional-only parameter {p.name!r} is not supported")
        elif p.kind is not p.VAR_POSITIONAL:
            try:
                json_type, optional, choices = _json_type(hints.get(p.name, str))
            except TypeError as exc:
                raise UsageError(f"{where}: parameter {p.name!r}: {exc}") from exc
            text = param_docs.get(p.name, "")
            if choices:
                allowed = "One of: " + ", ".join(json.dumps(c) for c in choices) + "."
                text = f"{text} {allowed}" if text else allowed
            has_default = p.default is not p.empty
            if optional and not has_default:
                fill_none.append(p.name)
            params.append((p.name, json_type, text, not (has_default or optional)))
    spec = make_spec(where, fn.__name__, description, params)
    known = {p.name for p in spec.parameters}
    required = [p.name for p in spec.parameters if p.required]
    is_async = inspect.iscoroutinefunction(fn)

    def handler(arguments: Mapping[str, Any], timeout_s: float) -> Any:
        missing = [n for n in required if n not in arguments]
        if missing:
            raise CallError("missing required argument(s): " + ", ".join(missing))
        kwargs = {n: None for n in fill_none}
        kwargs.update(
            arguments if takes_kwargs else {k: v for k, v in arguments.items() if k in known}
        )
        if is_async:
            return _in_thread(lambda: asyncio.run(fn(**kwargs)), timeout_s, fn.__name__)
        return _in_thread(lambda: fn(**kwargs), timeout_s, fn.__name__)

    return spec, handler


def _in_thread(call: Callable[[], Any], timeout_s: float, name: str) -> Any:
    """Run `call` on a daemon thread and wait at most `timeout_s`.

    Python cannot kill a thread: on timeout the call is abandoned, keeps running to its
    end in the background (its result is dropped) and, being a daemon, does not keep
    the program alive at exit.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # SystemExit too: it would only end this thread
            box["error"] = exc

    # Not a ThreadPoolExecutor: its threads are joined at interpreter exit, so one hung
    # function would stop aivoco from quitting.
    thread = threading.Thread(target=work, name=f"aivoco-function-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise CallError(f"timed out after {timeout_s:g} s")
    if "error" in box:
        raise CallError(describe(box["error"]))
    return box["result"]


_SIMPLE_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", Any: "string"}
_SIMPLE_TYPES.update({bool: "boolean", list: "array", tuple: "array", dict: "object"})


def _json_type(hint: Any) -> tuple[str, bool, tuple[Any, ...]]:
    """(JSON type, optional?, Literal choices) for a resolved type hint."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        mapped = [_json_type(a) for a in args]
        kinds = {m[0] for m in mapped}
        if kinds == {"integer", "number"}:
            kinds = {"number"}  # int | float
        if len(kinds) != 1:
            raise TypeError(f"unsupported union type {hint}")
        choices = tuple(c for m in mapped for c in m[2])
        return kinds.pop(), len(args) < len(typing.get_args(hint)), choices
    if origin is typing.Literal:
        values = typing.get_args(hint)
        for kind, name in ((str, "string"), (int, "integer")):
            if all(type(v) is kind for v in values):
                return name, False, values
        raise TypeError(f"Literal values must be all strings or all integers: {hint}")
    if hint in _SIMPLE_TYPES or origin in (list, tuple, dict):
        return _SIMPLE_TYPES[origin or hint], False, ()
    raise TypeError(
        f"unsupported type {getattr(hint, '__name__', hint)} (use str, int, float, bool,"
        " list, tuple, dict, Literal or Optional of these)"
    )


_SECTION_RE = re.compile(r"(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments):\s*$")
_GOOGLE_ITEM_RE = re.compile(r"\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_REST_ITEM_RE = re.compile(r":(param|parameter|arg|argument|key|keyword|type)\s+([^:]*):\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a cleaned docstring into the description and per-parameter texts.

    Args sections (Google: `name: text`, `name (type): text`) and reST `:param name:`
    / `:type name:` fields become parameter descriptions; everything else (including
    `Returns:`) stays in the description, since it also helps the model.
    """
    kept: list[str] = []
    params: dict[str, str] = {}
    header: int | None = None  # indent of the Args: header while inside that section
    item_indent: int | None = None
    current: str | None = None  # parameter that continuation lines belong to
    for line in doc.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if header is not None:
            if not stripped:
                continue
            if indent > header:
                item = _GOOGLE_ITEM_RE.match(stripped)
                if item and (item_indent is None or indent <= item_indent):
                    item_indent, current = indent, item.group(1)
                    params[current] = item.group(2).strip()
                elif current:
                    params[current] = f"{params[current]} {stripped}".strip()
                continue
            header = None  # dedented: the next section (e.g. Returns:) begins
        elif current is not None and stripped and indent > 0:
            params[current] = f"{params[current]} {stripped}".strip()  # reST continuation
            continue
        current = None
        rest = _REST_ITEM_RE.match(stripped)
        if _SECTION_RE.match(stripped):
            header, item_indent = indent, None
        elif rest:
            # `:param str x:` puts the type first; `:type x:` only repeats the hint.
            words = rest.group(2).split()
            if rest.group(1) != "type" and words:
                current = words[-1]
                params[current] = rest.group(3).strip()
        else:
            kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip(), params
