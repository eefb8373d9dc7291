"""The `aivoco` Typer application: global options and command registration."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer import BadParameter
from typer.core import TyperCommand, TyperGroup

from aivoco import __version__
from aivoco.cli import (
    call_cmd,
    config_cmd,
    demo_cmd,
    devices_cmd,
    emulate_cmd,
    report_cmd,
    sts_cmd,
    test_cmd,
)


def _plain_help_flag(option: Any) -> Any:
    """Typer's --help option, shown as a flag (no `<bool>`), and False when absent.

    A None default made Typer coerce the value through pydantic, whose import alone cost
    ~0.1 s of every `aivoco COMMAND --help` (bench/bench_startup.py)."""
    if option is not None:
        option.metavar = ""
        if option.default is None:
            option.default = False
    return option


class _Group(TyperGroup):
    def get_help_option(self, ctx: Any) -> Any:
        return _plain_help_flag(super().get_help_option(ctx))

    def get_params(self, ctx: Any) -> list[Any]:
        # Typer adds --install-completion / --show-completion after building the group:
        # flags like --help, so the same treatment (no `<bool>`, no pydantic import).
        params: list[Any] = super().get_params(ctx)
        for param in params:
            if param.name in ("install_completion", "show_completion"):
                _plain_help_flag(param)
        return params


class _Command(TyperCommand):
    def get_help_option(self, ctx: Any) -> Any:
        return _plain_help_flag(super().get_help_option(ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except BadParameter as exc:
            # Typer validates through pydantic, whose messages start "Value error, ".
            exc.message = exc.message.removeprefix("Value error, ")
            raise


app = typer.Typer(
    cls=_Group,
    name="aivoco",
    help="Live voice calls with Aivoco's AI agents, from the terminal.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aivoco {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            metavar="",
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    """Live voice calls with Aivoco's AI agents, from the terminal."""


app.command("sts", cls=_Command)(sts_cmd.sts)
app.command("call", cls=_Command)(call_cmd.call)
app.command("demo", cls=_Command)(demo_cmd.demo)
app.command("devices", cls=_Command)(devices_cmd.devices)
app.command("emulate", cls=_Command)(emulate_cmd.emulate)
app.command("report", cls=_Command)(report_cmd.report)
app.command("test", cls=_Command)(test_cmd.test)
app.add_typer(config_cmd.config_app, name="config")


def main() -> None:
    app()
