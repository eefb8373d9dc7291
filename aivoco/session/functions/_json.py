"""`.json` functions files: the API's own shape, answered by a command or a result."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aivoco.errors import UsageError
from aivoco.session.functions._common import (
    JSON_TYPES,
    STDERR_TAIL_LINES,
    CallError,
    Handler,
    describe,
    make_spec,
)
from aivoco.wire.functions import FunctionSpec

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
        raise UsageError(f"cannot read {file}: {describe(exc)}") from exc
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
    spec = make_spec(where, name, _field(obj, "description", str, "", where), params)
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
                raise CallError(f"timed out after {timeout_s:g} s") from None
            finally:
                if proc.returncode is None:
                    _kill_group(proc)
        if proc.returncode:
            rc = proc.returncode
            killer = next((sig.name for sig in signal.Signals if sig == -rc), -rc)
            status = f"was killed by signal {killer}" if rc < 0 else f"exited with code {rc}"
            lines = err.decode(errors="replace").strip().splitlines()[-STDERR_TAIL_LINES:]
            tail = "\n".join(line[-300:] for line in lines)
            raise CallError(f"command {status}" + (f": {tail}" if tail else ""))
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
