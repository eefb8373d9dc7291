"""Precedence, in one place: command line > environment > profile > [defaults] > built-in.

`resolve()` is pure: it takes what the command line and the environment gave (each
value with where it came from, as Click recorded it), the config file and the chosen
profile, and returns every option's value with its origin. The CLI (`aivoco.cli.
configured`) and `aivoco config show` both go through it, so what `config show` prints
is what a call uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from aivoco.config.file import ENV_PROFILE, ConfigError, ConfigFile, Entry, Layer
from aivoco.config.schema import KEY, KEY_ENV, URL_FIELD, URL_NAMES, setting_name, settings
from aivoco.session.options import OptionInfo
from aivoco.wire.driver import ProtocolName


class From(Enum):
    FLAG = "flag"
    ENV = "env"
    PROFILE = "profile"
    DEFAULTS = "defaults"
    BUILTIN = "built-in"


@dataclass(frozen=True)
class Origin:
    source: From
    detail: str = ""  # the flag, the variable, or the file and line

    def __str__(self) -> str:
        if not self.detail:
            return self.source.value
        sep = ", " if self.source is From.DEFAULTS else " "  # "defaults, line 3"
        return f"{self.source.value}{sep}{self.detail}"


BUILTIN = Origin(From.BUILTIN)


@dataclass(frozen=True)
class Given:
    """A value as the command line parsed it: from a flag, a variable, or its default."""

    value: Any
    origin: Origin = BUILTIN


@dataclass
class Resolved:
    values: dict[str, Any]  # CallOptions field -> value
    origins: dict[str, Origin]
    profile: str | None
    profile_origin: Origin
    config: ConfigFile
    notes: list[str] = field(default_factory=list)  # why a key source gave nothing
    warnings: list[str] = field(default_factory=list)  # printed on stderr by the CLI


OptionFields = Sequence[tuple[str, Any, OptionInfo]]  # (field, default, declaration)


def choose_profile(
    config: ConfigFile, given: Given, fallback: str | None = None
) -> tuple[str | None, Origin]:
    """The profile named by --profile / $AIVOCO_PROFILE, else `fallback` (a scenario's)."""
    name, origin = given.value, given.origin
    if not name and fallback:
        name, origin = fallback, Origin(From.PROFILE, "named by the caller")
    if not name:
        return None, BUILTIN
    if name not in config.profiles:
        if not config.found:
            raise ConfigError(
                f"unknown profile {name!r} ({origin}): there is no config file at "
                f"{config.path} (`aivoco config init` writes one)"
            )
        known = ", ".join(sorted(config.profiles)) or "none"
        raise ConfigError(
            f"unknown profile {name!r} ({origin}) in config file {config.path} (profiles: {known})"
        )
    return name, origin


def resolve(
    config: ConfigFile,
    options: OptionFields,
    *,
    protocol: ProtocolName,
    given: Mapping[str, Given],
    profile: str | None,
    profile_origin: Origin = BUILTIN,
) -> Resolved:
    """Each of `options` from the highest source that gives it."""
    layers = config.layers(profile)
    out = Resolved({}, {}, profile, profile_origin, config)
    _warn_shared_key(config, layers, out)
    for name, default, info in options:
        start = given.get(name, Given(default))
        if name == KEY:
            value, origin = _key(start, _env_var(name, info, protocol), layers, config, out.notes)
        else:
            file_name = URL_NAMES[protocol] if name == URL_FIELD else setting_name(info)
            value, origin = _value(start, _env_var(name, info, protocol), file_name, layers, config)
        out.values[name], out.origins[name] = value, origin
    return out


def _env_var(name: str, info: OptionInfo, protocol: ProtocolName) -> str | None:
    """The variable an option reads: the URL's is the protocol's ($AIVOCO_STS_URL for
    sts, whichever command calls it and whatever its --url declares); others their own."""
    if name == URL_FIELD:
        return settings()[URL_NAMES[protocol]].info.envvar
    return info.envvar


def _value(
    given: Given, env_var: str | None, name: str, layers: list[Layer], config: ConfigFile
) -> tuple[Any, Origin]:
    if given.origin.source in (From.FLAG, From.ENV):
        return given.value, given.origin
    if env_var and os.environ.get(env_var):
        return os.environ[env_var], Origin(From.ENV, env_var)
    for layer in layers:
        entry = layer.entries.get(name)
        if entry is not None:
            return entry.value, _layer_origin(layer, entry)
    return given.value, given.origin


def _key(
    given: Given, env_var: str | None, layers: list[Layer], config: ConfigFile, notes: list[str]
) -> tuple[str | None, Origin]:
    """--key, $AIVOCO_API_KEY, then each layer's key_env or key, as ssh refuses a key
    file that others can read: such a key is skipped (and warned about)."""
    if given.origin.source in (From.FLAG, From.ENV):
        return given.value, given.origin
    if env_var and os.environ.get(env_var):
        return os.environ[env_var], Origin(From.ENV, env_var)
    for layer in layers:
        if (entry := layer.entries.get(KEY_ENV)) is not None:
            var = entry.value
            if os.environ.get(var):
                origin = _layer_origin(layer, entry)
                return os.environ[var], Origin(origin.source, f"{origin.detail}: ${var}")
            notes.append(f"${var} (key_env of {layer.label}) is not set")
        elif (entry := layer.entries.get(KEY)) is not None:
            if not config.shared:
                return entry.value, _layer_origin(layer, entry)
            notes.append(f"the key of {layer.label} was refused: {_shared(config)}")
    return None, given.origin


def _warn_shared_key(config: ConfigFile, layers: list[Layer], out: Resolved) -> None:
    if config.shared and any(KEY in layer.entries for layer in layers):
        out.warnings.append(f"not using the key stored in the config file: {_shared(config)}")


def _shared(config: ConfigFile) -> str:
    return (
        f"{config.path} is readable by others (run `chmod 600 {config.path}`, "
        "or use key_env to read the key from a variable)"
    )


def _layer_origin(layer: Layer, entry: Entry) -> Origin:
    line = f"line {entry.line}" if entry.line else ""
    if layer.profile is not None:
        return Origin(From.PROFILE, f"{layer.profile}, {line}" if line else layer.profile)
    return Origin(From.DEFAULTS, line)


__all__ = ["ENV_PROFILE", "From", "Given", "Origin", "Resolved", "choose_profile", "resolve"]
