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

import asyncio
import dataclasses
import importlib.util
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aivoco.errors import UsageError
from aivoco.protocols.sts_codec import FunctionParam, FunctionSpec

DEFAULT_TIMEOUT_S = 10.0
JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object")
_STDERR_TAIL_LINES = 5

# A handler gets the call's arguments and the time budget, and enforces that budget
# itself (only it knows how to stop its work). `_CallError` carries a ready-made message.
Handler = Callable[[Mapping[str, Any], float], Any]


class _CallError(Exception):
    """A failure whose message is final (no exception type prefix)."""


@dataclass(frozen=True)
class FunctionOutcome:
    ok: bool
    result: Any  # JSON-ready; for failures {"error": message, "status": "failed"}
    error: str | None
    duration_ms: float


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
                raise _CallError(f"unknown function {name!r}")
            if arguments is None:
                arguments = {}
            if not isinstance(arguments, dict):
                raise _CallError(f"arguments must be an object, got {type(arguments).__name__}")
            result = _to_json(entry[1](arguments, timeout_s))
        except Exception as exc:  # a user function may raise anything
            error = str(exc) if isinstance(exc, _CallError) else _describe(exc)
            elapsed = (time.perf_counter() - start) * 1000
            return FunctionOutcome(False, {"error": error, "status": "failed"}, error, elapsed)
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


def _make_spec(
    where: str, name: str, description: str, params: list[tuple[str, str, str, bool]]
) -> FunctionSpec:
    # The codec validates names (what function-calling models accept) and duplicates;
    # we only add where in the user's file the problem is.
    try:
        return FunctionSpec(name, description, tuple(FunctionParam(*p) for p in params))
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from exc


# --- results ------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    return str(value)


def _to_json(value: Any) -> Any:
    # A round trip guarantees the session can send it; NaN is refused because the
    # server's JSON.parse would reject the whole message.
    try:
        text = json.dumps(value, default=_json_default, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise _CallError(f"result is not JSON-serialisable: {_describe(exc)}") from exc
    return json.loads(text)


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
        raise UsageError(f"{file}{where}: {_describe(exc)}") from exc
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
        raise UsageError(f"{where}: cannot resolve type hints: {_describe(exc)}") from exc
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
    spec = _make_spec(where, fn.__name__, description, params)
    known = {p.name for p in spec.parameters}
    required = [p.name for p in spec.parameters if p.required]
    is_async = inspect.iscoroutinefunction(fn)

    def handler(arguments: Mapping[str, Any], timeout_s: float) -> Any:
        missing = [n for n in required if n not in arguments]
        if missing:
            raise _CallError("missing required argument(s): " + ", ".join(missing))
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
        raise _CallError(f"timed out after {timeout_s:g} s")
    if "error" in box:
        raise _CallError(_describe(box["error"]))
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


# --- .json files --------------------------------------------------------------------

_FUNCTION_KEYS = {"name", "description", "parameters", "command", "result"}
_PARAM_KEYS = {"name", "type", "description", "required"}


def _load_json(file: Path) -> list[tuple[FunctionSpec, Handler]]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{file}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {file}: {_describe(exc)}") from exc
    if not isinstance(data, list):
        raise UsageError(f"{file}: expected a JSON list of functions, got {_kind(data)}")
    return [_json_function(item, f"{file}: function #{i}", file) for i, item in enumerate(data, 1)]


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), "null" if value is None else "a number")


def _check_keys(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise UsageError(f"{where}: expected an object, got {_kind(obj)}")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise UsageError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    return obj


def _field(obj: dict[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    value = obj.get(key, default)
    if value is ... or type(value) is not kind:
        got = "missing" if value is ... else _kind(value)
        raise UsageError(f"{where}: {key!r} must be {_kind(kind())}, got {got}")
    return value


def _json_function(item: Any, where: str, file: Path) -> tuple[FunctionSpec, Handler]:
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        where = f"{where} ({item['name']!r})"
    obj = _check_keys(item, _FUNCTION_KEYS, where)
    name = _field(obj, "name", str, ..., where)
    params: list[tuple[str, str, str, bool]] = []
    for j, raw in enumerate(_field(obj, "parameters", list, [], where), 1):
        pw = f"{where}, parameter #{j}"
        p = _check_keys(raw, _PARAM_KEYS, pw)
        pname, ptype = _field(p, "name", str, ..., pw), _field(p, "type", str, ..., pw)
        if ptype not in JSON_TYPES:
            raise UsageError(f"{pw}: unsupported type {ptype!r} (use {', '.join(JSON_TYPES)})")
        desc = _field(p, "description", str, "", pw)
        params.append((pname, ptype, desc, _field(p, "required", bool, False, pw)))
    spec = _make_spec(where, name, _field(obj, "description", str, "", where), params)
    if ("command" in obj) == ("result" in obj):
        raise UsageError(f"{where}: give exactly one of 'command' (argv list) or 'result'")
    if "result" in obj:
        static = obj["result"]
        return spec, lambda arguments, timeout_s: static
    argv = obj["command"]
    if not argv or not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise UsageError(f"{where}: 'command' must be a non-empty list of strings")
    return spec, _command_handler(_resolve_program(argv, file, where))


def _resolve_program(argv: list[str], file: Path, where: str) -> list[str]:
    program = argv[0]
    if "/" in program or os.sep in program:
        # "./tool.sh" means next to the JSON file, wherever aivoco is started from.
        resolved = (file.parent / program).resolve()
        if not resolved.is_file() or not os.access(resolved, os.X_OK):
            raise UsageError(f"{where}: command {str(resolved)!r} is not an executable file")
        return [str(resolved), *argv[1:]]
    if shutil.which(program) is None:
        raise UsageError(f"{where}: command {program!r} not found on PATH")
    return argv


def _command_handler(argv: list[str]) -> Handler:
    def handler(arguments: Mapping[str, Any], timeout_s: float) -> Any:
        # Own session (= own process group) so a timeout kills the whole tool,
        # including anything it spawned.
        pipe = subprocess.PIPE
        with subprocess.Popen(
            argv, stdin=pipe, stdout=pipe, stderr=pipe, start_new_session=True
        ) as proc:
            try:
                out, err = proc.communicate(json.dumps(arguments).encode(), timeout_s)
            except subprocess.TimeoutExpired:
                raise _CallError(f"timed out after {timeout_s:g} s") from None
            finally:
                if proc.returncode is None:
                    _kill_group(proc)
        if proc.returncode:
            rc = proc.returncode
            killer = next((sig.name for sig in signal.Signals if sig == -rc), -rc)
            status = f"was killed by signal {killer}" if rc < 0 else f"exited with code {rc}"
            lines = err.decode(errors="replace").strip().splitlines()[-_STDERR_TAIL_LINES:]
            tail = "\n".join(line[-300:] for line in lines)
            raise _CallError(f"command {status}" + (f": {tail}" if tail else ""))
        text = out.decode(errors="replace")
        try:
            return json.loads(text)
        except ValueError:
            return {"output": text.strip()}

    return handler


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    try:
        proc.communicate(timeout=2.0)
    except subprocess.TimeoutExpired:
        # A grandchild that left the group still holds our pipes: stop reading.
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()
        proc.wait()
