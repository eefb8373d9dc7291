"""The config file: where it is, reading it, and checking every table and key in it.

The whole file is checked when it is read, before anything connects: an unknown key,
a value of the wrong type, or invalid TOML anywhere is a usage error naming the file,
the line and the key, whichever profile is in use (a mistake is found when it is made,
not the day that profile is first used).
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from aivoco.config.schema import KEY, KEY_ENV, URL_NAMES, BadValueError, check_env_name, settings
from aivoco.config.toml_lines import key_lines, line_of
from aivoco.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ENV_CONFIG = "AIVOCO_CONFIG"
ENV_PROFILE = "AIVOCO_PROFILE"
DEFAULTS = "defaults"
PROFILE = "profile"
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


class ConfigError(UsageError):
    """The config file is unreadable, is not TOML, or says something aivoco rejects."""


@dataclass(frozen=True)
class Entry:
    value: Any  # converted to the option's type; paths made absolute
    line: int | None


@dataclass(frozen=True)
class Layer:
    """`[defaults]` or one `[profile.NAME]`: the settings it gives, by name."""

    label: str  # "defaults" or "profile NAME"
    entries: Mapping[str, Entry] = field(default_factory=dict)
    profile: str | None = None  # the profile's name; None for [defaults]


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    found: bool = False
    defaults: Layer = field(default_factory=lambda: Layer(DEFAULTS))
    profiles: Mapping[str, Layer] = field(default_factory=dict)
    shared: bool = False  # readable or writable by group or others (a key in it is refused)

    def layers(self, profile: str | None) -> list[Layer]:
        """The layers that apply, highest first: the profile, then `[defaults]`."""
        return ([self.profiles[profile]] if profile else []) + [self.defaults]

    def where(self, entry: Entry) -> str:
        return f"{self.path}:{entry.line}" if entry.line else str(self.path)


def config_path() -> Path:
    """$AIVOCO_CONFIG, else config.toml in the platform's config directory."""
    named = os.environ.get(ENV_CONFIG)
    if named:
        return Path(named).expanduser().absolute()
    from platformdirs import user_config_path

    return user_config_path("aivoco", appauthor=False) / "config.toml"


def load_config(path: Path | None = None) -> ConfigFile:
    """Read and check the config file; a missing default file is an empty config.

    `AIVOCO_CONFIG=/dev/null` (os.devnull) means no config file, as with pip.
    """
    named = path is None and bool(os.environ.get(ENV_CONFIG))
    path = path or config_path()
    if str(path) == os.devnull:
        return ConfigFile(path)
    try:
        data = path.read_bytes()
        shared = os.name == "posix" and bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except FileNotFoundError:
        if named:
            raise ConfigError(
                f"config file {path} does not exist (named by {ENV_CONFIG})"
            ) from None
        return ConfigFile(path)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"config file {path}, line {line}: not UTF-8 text") from exc
    return parse_config(text, path, shared=shared)


def parse_config(text: str, path: Path, shared: bool = False) -> ConfigFile:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = _TOML_AT.search(message)
        where = f", line {at[1]}" if at else ""
        detail = _TOML_AT.sub(f" (column {at[2]})", message) if at else message
        raise ConfigError(f"config file {path}{where}: invalid TOML: {detail}") from exc
    check = _Checker(path, key_lines(text))
    defaults, profiles = Layer(DEFAULTS), {}
    for name, value in table.items():
        if name == DEFAULTS:
            defaults = check.layer(value, (DEFAULTS,), None)
        elif name == PROFILE:
            profiles = check.profiles(value)
        else:
            check.fail((name,), "unknown table or key (expected [defaults] or [profile.NAME])")
    return ConfigFile(path, True, defaults, profiles, shared)


@dataclass(frozen=True)
class _Checker:
    path: Path
    lines: dict[tuple[str, ...], int]

    def fail(self, where: tuple[str, ...], problem: str) -> NoReturn:
        line = line_of(self.lines, where)
        at = f", line {line}" if line else ""
        raise ConfigError(f"config file {self.path}{at}, key {dotted(where)}: {problem}")

    def profiles(self, value: Any) -> dict[str, Layer]:
        if not isinstance(value, dict):
            self.fail((PROFILE,), "expected tables [profile.NAME], got a value")
        out = {}
        for name, body in value.items():
            if not name.strip():
                self.fail((PROFILE, name), "a profile needs a name")
            out[name] = self.layer(body, (PROFILE, name), name)
        return out

    def layer(self, value: Any, where: tuple[str, ...], profile: str | None) -> Layer:
        if not isinstance(value, dict):
            self.fail(where, "expected a table of settings, got a value")
        known = settings()
        entries: dict[str, Entry] = {}
        for name, raw in value.items():
            at = (*where, name)
            line = line_of(self.lines, at)
            try:
                if name == KEY_ENV:
                    converted: Any = check_env_name(raw)
                elif name in known:
                    converted = known[name].convert(raw, self.path.parent)
                else:
                    self.fail(at, _unknown(name, known))
            except BadValueError as exc:
                # Never echo what was written as a key: it is a secret, even when mistyped.
                self.fail(at, "expected a non-empty string" if name == KEY else str(exc))
            entries[name] = Entry(converted, line)
        if KEY in entries and KEY_ENV in entries:
            self.fail((*where, KEY_ENV), "give either key or key_env, not both")
        label = DEFAULTS if profile is None else f"profile {profile}"
        return Layer(label, entries, profile)


def _unknown(name: str, known: Mapping[str, Any]) -> str:
    if name == "url":
        return f"unknown key (use {' or '.join(URL_NAMES.values())})"
    close = difflib.get_close_matches(name, [*known, KEY_ENV], n=1)
    return "unknown key" + (f" (did you mean {close[0]}?)" if close else "")


def dotted(path: tuple[str, ...]) -> str:
    return ".".join(p if _BARE.fullmatch(p) else '"' + p.replace('"', '\\"') + '"' for p in path)
