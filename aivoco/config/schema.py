"""What a config file may say, derived from `CallOptions`' declarations.

Every call option is settable by its long option name with `_` for `-` (`--input-device`
-> `input_device`), so an option added to `CallOptions` is settable with no change here.
Three names are the file's own: `sts_url` and `call_url` (the one `--url` means a
different service per command) and `key_env` (read the key from this variable).
Values are checked against the field's type and the option's limits, and paths are
taken relative to the config file.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, fields
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, Literal

from aivoco.session.options import CallOptions, OptionInfo
from aivoco.wire.driver import ProtocolName

KEY = "key"
KEY_ENV = "key_env"
URL_FIELD = "url"
URL_NAMES: dict[ProtocolName, str] = {
    ProtocolName.STS: "sts_url",
    ProtocolName.CALL: "call_url",
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class BadValueError(ValueError):
    """A value of the wrong type or out of range; the message says what was expected."""


@dataclass(frozen=True)
class Setting:
    """One name a config file may use, and the `CallOptions` field it sets."""

    name: str
    field: str
    info: OptionInfo
    base: Any  # str, int, float, bool, Path, an Enum subclass or a Literal[...]
    protocol: ProtocolName | None = None  # sts_url, call_url: the service's URL

    @property
    def commands(self) -> frozenset[str]:
        return self.info.commands

    def convert(self, value: Any, base_dir: Path) -> Any:
        """The file's `value` as the field's type; paths relative to `base_dir`."""
        out = _convert(self.base, value)
        if self.base is Path:
            return _relative(out, base_dir)
        at_file = self.base is str and "@FILE" in (self.info.metavar or "")
        if at_file and out.startswith("@"):  # `@prompts/x.txt`: a file next to the config
            return "@" + str(_relative(Path(out[1:]), base_dir))
        _check_limits(self.info, out)
        if self.protocol is not None:
            _check_url(self.protocol, out)
        return out


def setting_name(info: OptionInfo) -> str:
    """`--input-device` -> `input_device`; `--echo/--no-echo` -> `echo`."""
    return info.flag.split("/")[0].strip().lstrip("-").replace("-", "_")


@cache
def settings() -> dict[str, Setting]:
    """Every settable name but `key_env`, by name (`url` appears as sts_url/call_url)."""
    hints = typing.get_type_hints(CallOptions)
    out: dict[str, Setting] = {}
    for f in fields(CallOptions):
        info = f.metadata.get("cli")
        if not isinstance(info, OptionInfo):
            continue
        base = _base_type(hints[f.name])
        if f.name == URL_FIELD:
            for protocol, name in URL_NAMES.items():
                variant = info.for_command(protocol.value)
                scoped = OptionInfo(**{**variant.__dict__, "commands": frozenset({protocol.value})})
                out[name] = Setting(name, f.name, scoped, base, protocol)
            continue
        out[setting_name(info)] = Setting(setting_name(info), f.name, info, base)
    return out


def check_env_name(value: Any) -> str:
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise BadValueError(f"expected the name of an environment variable, got {_show(value)}")
    return value


def _base_type(annotation: Any) -> Any:
    """`X | None` -> X; the field types the CLI knows how to declare."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported option type {annotation!r}")
        return _base_type(args[0])
    if origin is Literal:
        return annotation
    if annotation in (str, int, float, bool, Path) or _is_enum(annotation):
        return annotation
    raise TypeError(f"unsupported option type {annotation!r}: teach aivoco/config/schema.py")


def _is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Enum)


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _convert(base: Any, value: Any) -> Any:
    if isinstance(value, dict):
        raise BadValueError("expected a value, got a table")
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif base in (str, Path):
        ok = isinstance(value, str) and value != ""
        if ok and base is Path:
            value = Path(value).expanduser()
    else:
        choices = _choices(base)
        if isinstance(value, str) and value in choices:
            return choices[value]
        shown = ", ".join(repr(c) for c in choices)
        raise BadValueError(f"expected one of {shown}, got {_show(value)}")
    if not ok:
        expected = "a non-empty string" if base in (str, Path) else _NAMES[base]
        raise BadValueError(f"expected {expected}, got {_show(value)}")
    return value


def _choices(base: Any) -> dict[str, Any]:
    if _is_enum(base):
        return {str(m.value): m for m in base}
    return {str(a): a for a in typing.get_args(base)}


def _check_limits(info: OptionInfo, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if info.min is not None and value < info.min:
        raise BadValueError(f"must be at least {info.min:g}, got {value:g}")
    if info.max is not None and value > info.max:
        raise BadValueError(f"must be at most {info.max:g}, got {value:g}")


def _check_url(protocol: ProtocolName, url: str) -> None:
    """The same check a URL from the command line gets (`CallOptions.resolved_url`)."""
    from aivoco.errors import UsageError

    try:
        CallOptions(protocol=protocol, url=url).resolved_url()
    except UsageError as exc:
        raise BadValueError(str(exc)) from exc


def _relative(path: Path, base_dir: Path) -> Path:
    return path if path.is_absolute() else base_dir / path


def _show(value: Any) -> str:
    """A value as the file wrote it, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return str(value)
