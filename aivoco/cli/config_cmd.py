"""`aivoco config show|path|init`: the config file's effective settings, where it is,
and a commented starting file.

`show` takes every option of `sts` and `call` too, so `aivoco config show --profile
staging --voice male` prints exactly what `aivoco sts --profile staging --voice male`
would use, each value with its origin (flag, env, profile, defaults, built-in). It goes
through the same resolution as the calls (`aivoco.cli.configured.resolve_given`). The
key is always shown as `***`.
"""

from __future__ import annotations

import inspect
import json
import os
import typing
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from aivoco.cli.configured import (
    PROFILE_PARAM,
    ProfileOption,
    given_values,
    resolve_given,
    warn,
)
from aivoco.cli.errors import guarded
from aivoco.cli.options import _typer_option
from aivoco.config.schema import URL_FIELD, URL_NAMES, setting_name
from aivoco.errors import UsageError
from aivoco.session.options import CallOptions, OptionInfo, cli_fields
from aivoco.wire.driver import ProtocolName

config_app = typer.Typer(
    name="config",
    help="The config file: \\[defaults] and profiles for sts and call.",
    no_args_is_help=True,
)
_COMMANDS = ("sts", "call")
_MASK = "***"


def _show_fields() -> list[tuple[str, Any, OptionInfo]]:
    """Every option of sts and call once (its first declaration), url apart."""
    seen: dict[str, tuple[str, Any, OptionInfo]] = {}
    for command in _COMMANDS:
        for name, default, info in cli_fields(command):
            seen.setdefault(name, (name, default, info))
    return list(seen.values())


def _with_call_flags(fn: Any) -> Any:
    """Give `show` a flag for each call option (none required; no --url, which means a
    different service per command: sts_url and call_url are shown instead)."""
    hints = typing.get_type_hints(CallOptions)
    own = list(inspect.signature(fn, eval_str=True).parameters.values())[:-1]  # not **options
    extra = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=default,
            annotation=_typer_option(hints[name], info, name),
        )
        for name, default, info in _show_fields()
        if name != URL_FIELD
    ]
    params = own + extra
    fn.__signature__ = inspect.Signature(params, return_annotation=None)
    fn.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return fn


@config_app.command("show")
@_with_call_flags
def show(
    ctx: typer.Context,
    profile: ProfileOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the settings as JSON.")] = False,
    **options: Any,
) -> None:
    """Print the effective settings and where each came from (the key masked).

    Options given here count as flags, as they would in `sts` or `call`.
    """
    guarded(lambda: _show(ctx, profile, as_json, options))


def _show(ctx: Any, profile: str | None, as_json: bool, options: dict[str, Any]) -> None:
    given = given_values(ctx, {**options, PROFILE_PARAM: profile})
    fields = _show_fields()
    url = [f for f in fields if f[0] == URL_FIELD]
    sts = resolve_given(given, fields, ProtocolName.STS)
    call = resolve_given(given, url, ProtocolName.CALL)
    warn(sts.warnings)
    rows = []
    for name, _, info in sorted(fields, key=_first_keys):
        if name == URL_FIELD:
            for protocol, res in ((ProtocolName.STS, sts), (ProtocolName.CALL, call)):
                value = res.values[name] or CallOptions(protocol=protocol).resolved_url()
                rows.append((URL_NAMES[protocol], value, str(res.origins[name]), protocol.value))
            continue
        value = _MASK if name == "key" and sts.values[name] else sts.values[name]
        used_by = ", ".join(c for c in _COMMANDS if c in info.commands)
        rows.append((setting_name(info), value, str(sts.origins[name]), used_by))
    record = {
        "config_file": str(sts.config.path),
        "found": sts.config.found,
        "profile": sts.profile,
        "profile_from": str(sts.profile_origin),
        "settings": [
            {"name": n, "value": _plain(v), "from": o, "commands": c} for n, v, o, c in rows
        ],
        "notes": sts.notes,
    }
    _print(record, as_json)


def _first_keys(option: tuple[str, Any, OptionInfo]) -> int:
    """Where a call goes first (key, URLs, agent), then the options in declared order."""
    order = ("key", URL_FIELD, "agent")
    return order.index(option[0]) if option[0] in order else len(order)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


def _print(record: dict[str, Any], as_json: bool) -> None:
    from aivoco.redact import redact

    if as_json:
        typer.echo(redact(json.dumps(record, indent=2)))
        return
    from aivoco.text import terminal_safe

    def cell(value: Any) -> str:
        text = "-" if value is None else str(value)
        return escape(terminal_safe(redact(text)))

    console = Console(highlight=False)
    found = "" if record["found"] else " (not found)"
    console.print(f"config file: {cell(record['config_file'])}{found}")
    if record["profile"]:
        origin = cell(record["profile_from"])
        console.print(f"profile: {cell(record['profile'])}  [dim]({origin})[/]")
    else:
        console.print("profile: (none)")
    table = Table(title_justify="left", show_edge=False)
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")  # a URL or path shown whole, never cut
    table.add_column("from", overflow="fold")
    table.add_column("used by", no_wrap=True)
    for row in record["settings"]:
        table.add_row(cell(row["name"]), cell(row["value"]), cell(row["from"]), row["commands"])
    console.print(table)
    for note in record["notes"]:
        console.print(f"note: {cell(note)}")


@config_app.command("path")
def path() -> None:
    """Print where the config file is ($AIVOCO_CONFIG, else the platform's config dir)."""
    from aivoco.config import config_path

    where = config_path()
    typer.echo(str(where))
    if not where.exists():
        typer.echo("(it does not exist yet: `aivoco config init` writes one)", err=True)


@config_app.command("init")
def init(
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing file (it is not kept).")
    ] = False,
) -> None:
    """Write a commented starting file, readable only by you."""

    def body() -> None:
        from aivoco.config import config_path
        from aivoco.config.template import TEMPLATE

        where = config_path()
        if where.exists() and not force:
            raise UsageError(f"{where} exists already (use --force to replace it)")
        try:
            where.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(TEMPLATE)
            os.chmod(where, 0o600)  # O_CREAT's mode applies to new files only
        except OSError as exc:
            raise UsageError(f"cannot write {where}: {exc.strerror or exc}") from exc
        typer.echo(f"wrote {where}")

    guarded(body)
