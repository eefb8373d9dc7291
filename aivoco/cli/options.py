"""Command-line options: generated from `CallOptions`' declarations, plus output modes.

Each call option is declared once, as a field of `aivoco.session.options.CallOptions`
with its flag, help and limits in the field's metadata. `call_options(command)` turns
the fields a command takes into Typer parameters and appends them to the command
function's own signature; the command receives them as keyword arguments named like
the fields, so `CallOptions(**values)` needs no copying by hand.
"""

from __future__ import annotations

import inspect
import os
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from aivoco.errors import UsageError
from aivoco.session.options import CallOptions, OptionInfo, cli_fields

F = TypeVar("F", bound=Callable[..., Any])
_OUT = "Output"

Plain = Annotated[
    bool,
    typer.Option(
        "--plain",
        help="Timestamped log lines instead of the live view.",
        metavar="",  # a flag takes no value: no `<bool>` in the help
        rich_help_panel=_OUT,
    ),
]
Json = Annotated[
    bool,
    typer.Option(
        "--json",
        help="One JSON object per event on stdout, for scripts.",
        metavar="",
        rich_help_panel=_OUT,
    ),
]
LogFile = Annotated[
    Path | None,
    typer.Option(
        "--log-file",
        metavar="FILE",
        help="Log every message sent and received (audio abbreviated to sizes; key masked).",
        rich_help_panel=_OUT,
    ),
]
_OUTPUT_PARAMS: tuple[tuple[str, Any, Any], ...] = (
    ("plain", Plain, False),
    ("as_json", Json, False),
    ("log_file", LogFile, None),
)


class OutputMode(Enum):
    LIVE = "live"
    PLAIN = "plain"
    JSON = "json"


@dataclass(frozen=True)
class OutputOptions:
    plain: bool = False
    as_json: bool = False
    log_file: Path | None = None

    def mode(self) -> OutputMode:
        if self.plain and self.as_json:
            raise UsageError("--plain and --json cannot be used together")
        if self.as_json:
            return OutputMode.JSON
        if self.plain or not sys.stdout.isatty() or not _drivable_terminal():
            return OutputMode.PLAIN
        return OutputMode.LIVE


def _drivable_terminal() -> bool:
    """False for terminals the live view cannot draw on (TERM=dumb, as in Emacs' shell,
    or unknown): they get plain lines instead of a blank screen. Windows terminals set
    no TERM and are driven through the console API."""
    term = os.environ.get("TERM", "").strip().lower()
    if term in ("dumb", "unknown"):
        return False
    return bool(term) or os.name == "nt"


def split_options(values: dict[str, Any]) -> tuple[dict[str, Any], OutputOptions]:
    """A command's keyword arguments -> (CallOptions fields, output options)."""
    output = OutputOptions(**{name: values.pop(name) for name, _, _ in _OUTPUT_PARAMS})
    return values, output


def range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{lo:g} to {hi:g}"
    return f"at least {lo:g}" if lo is not None else f"at most {hi:g}"


def range_check(lo: float | None, hi: float | None) -> Callable[[Any], Any]:
    """A Typer callback for a number's limits, with our wording: the limits appear in
    the help text, not as `[x>=0.1]` in the metavar column, which left the help column
    too narrow for the defaults at 80 columns."""

    def check(value: Any) -> Any:
        too_low = lo is not None and value is not None and value < lo
        too_high = hi is not None and value is not None and value > hi
        if too_low or too_high:
            raise typer.BadParameter(f"must be {range_text(lo, hi)}, not {value:g}")
        return value

    return check


def _typer_option(annotation: Any, info: OptionInfo, name: str = "") -> Any:
    from aivoco.cli.completion import COMPLETERS

    limited = info.min is not None or info.max is not None
    text = info.help
    if limited:
        text = f"{text.rstrip('.')} ({range_text(info.min, info.max)})."
    if info.required:
        # Checked once the config file is merged (cli/configured.py) and by
        # CallOptions.check(): a profile may give it, and Typer's own mark adds a column
        # to every row of the panel, so the default URLs no longer fit at 80 columns.
        text = f"{text.rstrip('.')} (required: here or in the config file)."
    option = typer.Option(
        info.flag,
        help=text,
        metavar="" if annotation is bool else info.metavar,
        rich_help_panel=info.panel,
        envvar=info.envvar,
        show_envvar=info.envvar is not None,
        callback=range_check(info.min, info.max) if limited else None,
        show_default=info.show_default,
        autocompletion=COMPLETERS.get(name),
    )
    return Annotated[annotation, option]


def _call_parameters(command: str) -> list[inspect.Parameter]:
    hints = typing.get_type_hints(CallOptions)
    params = []
    # Commands that take a key connect somewhere: they read the config file
    # (aivoco/cli/configured.py), which may give a required option, so Click must not
    # insist on seeing it; `with_config` checks it once the sources are merged.
    configured = any(name == "key" for name, _, _ in cli_fields(command))
    if configured:
        from aivoco.cli.configured import CONTEXT_PARAM, PROFILE_PARAM, ProfileOption

        for own, kind in ((PROFILE_PARAM, ProfileOption), (CONTEXT_PARAM, typer.Context)):
            params.append(
                inspect.Parameter(
                    own, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind
                )
            )
    for name, default, info in cli_fields(command):
        annotation, value = hints[name], default
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=value,
                annotation=_typer_option(annotation, info, name),
            )
        )
    for name, annotation, default in _OUTPUT_PARAMS:
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
    return params


def call_options(command: str) -> Callable[[F], F]:
    """Give a command function the call options `command` takes and the output options,
    after its own parameters; it receives them as `**options`."""

    def decorate(fn: F) -> F:
        own = [
            p
            for p in inspect.signature(fn, eval_str=True).parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        params = own + _call_parameters(command)
        fn.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        fn.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
        return fn

    return decorate


# `demo` and `emulate` share it: one name, one type, one range.
LatencyMs = Annotated[
    float,
    typer.Option(
        "--latency-ms",
        metavar="MS",
        help="The emulated agent's delay between the end of an utterance and its reply "
        "(0 to 10000).",
        callback=range_check(0, 10_000),
    ),
]
