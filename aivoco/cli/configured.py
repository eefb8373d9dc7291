"""A command's option values with the config file applied: the one call a command makes.

`call_options()` gives a command `--profile NAME` ($AIVOCO_PROFILE) and Click's context;
`with_config(values, command=..., protocol=...)` reads which values came from the
command line or the environment (Click records each parameter's source), loads and
checks the config file, and fills every other option from the profile, then
`[defaults]`, then the built-in default (`aivoco.config.resolve`).

A command of its own (`aivoco test`, a scenario naming a profile) adopts it with one
line: `fields = with_config(options, command="test", protocol=p, default_profile=name)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from aivoco.cli.completion import complete_profiles
from aivoco.config import ENV_PROFILE, From, Given, Origin, Resolved
from aivoco.config.schema import setting_name
from aivoco.errors import UsageError
from aivoco.session.options import OptionInfo, cli_fields
from aivoco.wire.driver import ProtocolName

PROFILE_PARAM = "profile"
CONTEXT_PARAM = "cli_context"

ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        envvar=ENV_PROFILE,
        show_envvar=True,
        help="Settings from this profile of the config file (`aivoco config show`).",
        autocompletion=complete_profiles,
        show_default=False,
    ),
]


def with_config(
    values: Mapping[str, Any],
    *,
    command: str,
    protocol: ProtocolName,
    ctx: Any = None,
    default_profile: str | None = None,
) -> dict[str, Any]:
    """`values` (a command's keyword arguments) with the config file applied.

    `ctx` is Click's context of the command (taken from `values` when `call_options`
    put it there); `default_profile` is used when neither --profile nor
    $AIVOCO_PROFILE names one. Raises `UsageError` (exit 2) for anything wrong in the
    config file, before anything connects.
    """
    out = dict(values)
    ctx = out.pop(CONTEXT_PARAM, None) or ctx
    profile = out.pop(PROFILE_PARAM, None)
    options = [f for f in cli_fields(command) if f[0] in out]
    resolved = resolve_given(
        given_values(ctx, {**out, PROFILE_PARAM: profile}),
        options,
        protocol,
        default_profile,
    )
    warn(resolved.warnings)
    _check(resolved, options)
    out.update(resolved.values)
    return out


def resolve_given(
    given: Mapping[str, Given],
    options: list[tuple[str, Any, OptionInfo]],
    protocol: ProtocolName,
    default_profile: str | None = None,
) -> Resolved:
    from aivoco.config import choose_profile, load_config, resolve
    from aivoco.redact import register_secret

    config = load_config()
    profile, origin = choose_profile(config, given.get(PROFILE_PARAM, Given(None)), default_profile)
    resolved = resolve(
        config, options, protocol=protocol, given=given, profile=profile, profile_origin=origin
    )
    register_secret(resolved.values.get("key"))
    return resolved


def given_values(ctx: Any, values: Mapping[str, Any]) -> dict[str, Given]:
    """Each value with its origin as Click recorded it: a flag, a variable, or neither."""
    params = {p.name: p for p in getattr(getattr(ctx, "command", None), "params", [])}
    out = {}
    for name, value in values.items():
        source = ctx.get_parameter_source(name) if ctx is not None else None
        # Compared by name: Typer vendors Click from 0.2x on, so the enum class differs.
        kind = getattr(source, "name", "DEFAULT")
        param = params.get(name)
        if kind in ("COMMANDLINE", "PROMPT"):
            flag = param.opts[0] if param is not None and param.opts else name
            out[name] = Given(value, Origin(From.FLAG, flag))
        elif kind == "ENVIRONMENT":
            out[name] = Given(value, Origin(From.ENV, _envvar(param)))
        else:
            out[name] = Given(value)
    return out


def warn(messages: list[str]) -> None:
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    for message in messages:
        console.print(f"[yellow]aivoco: warning:[/] {escape(message)}")


def _envvar(param: Any) -> str:
    import os

    names = getattr(param, "envvar", None) or []
    names = [names] if isinstance(names, str) else list(names)
    return next((n for n in names if os.environ.get(n)), names[0] if names else "")


def _check(resolved: Resolved, options: list[tuple[str, Any, OptionInfo]]) -> None:
    """What only the merged settings can tell: a required option no source gave, a key
    that the file named but could not give."""
    for name, _, info in options:
        if info.required and resolved.values.get(name) in (None, ""):
            raise UsageError(
                f"missing option {info.flag}: give it on the command line, or as "
                f"`{setting_name(info)}` in a profile or [defaults] of the config file"
            )
    takes_key = any(n == "key" for n, _, _ in options)
    if takes_key and not resolved.values.get("key") and resolved.notes:
        raise UsageError(
            "no API key: pass --key KEY or set AIVOCO_API_KEY; " + "; ".join(resolved.notes)
        )
