"""The `aivoco` Typer application: global options and command registration."""

from __future__ import annotations

from typing import Annotated

import typer

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

app = typer.Typer(
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
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Live voice calls with Aivoco's AI agents, from the terminal."""


app.command("sts")(sts_cmd.sts)
app.command("call")(call_cmd.call)
app.command("demo")(demo_cmd.demo)
app.command("devices")(devices_cmd.devices)
app.command("emulate")(emulate_cmd.emulate)
app.command("report")(report_cmd.report)
app.command("test")(test_cmd.test)
app.add_typer(config_cmd.config_app, name="config")


def main() -> None:
    app()
