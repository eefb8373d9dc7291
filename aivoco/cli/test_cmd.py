"""`aivoco test SCENARIO.yaml...`: scripted conversation tests of a voice agent.

Thin: the scenario package parses, prepares, runs and reports (aivoco/scenario/); this
command checks everything up front (all problems at once, exit code 2), picks the
output, owns Ctrl-C (once: hang up every call and start no more; twice: leave), writes
the reports and maps the outcome to an exit code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aivoco.cli.configured import ProfileOption
from aivoco.cli.errors import guarded

_RUN = "Runs"
_OUT = "Output"


def test(
    ctx: typer.Context,
    scenarios: Annotated[
        list[Path], typer.Argument(metavar="SCENARIO.yaml...", help="Scenario files to run.")
    ],
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            metavar="KEY",
            envvar="AIVOCO_API_KEY",
            show_envvar=True,
            help="API key (never printed or logged). Else the profile's key.",
            show_default=False,
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            help="Service URL for every scenario (else the scenario's url:, else "
            "AIVOCO_STS_URL / AIVOCO_CALL_URL, else the profile's, else the default).",
        ),
    ] = None,
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent",
            metavar="ID",
            help="Agent for call scenarios (overrides agent:, which overrides the profile's).",
        ),
    ] = None,
    profile: ProfileOption = None,
    junit: Annotated[
        Path | None,
        typer.Option(
            "--junit",
            metavar="FILE",
            help="Write a JUnit XML report (for CI).",
            rich_help_panel=_OUT,
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="FILE.json",
            help="Write a JSON report with every turn's figures.",
            rich_help_panel=_OUT,
        ),
    ] = None,
    record_dir: Annotated[
        Path | None,
        typer.Option(
            "--record-dir",
            metavar="DIR",
            help="Per run: the stereo recording and the "
            "JSONL transcript, named after scenario and run.",
            rich_help_panel=_OUT,
        ),
    ] = None,
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat", min=1, max=100_000, help="Runs of each scenario.", rich_help_panel=_RUN
        ),
    ] = 1,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            min=1,
            max=1000,
            help="Calls at once (in this process).",
            rich_help_panel=_RUN,
        ),
    ] = 1,
    fail_fast: Annotated[
        bool,
        typer.Option("--fail-fast", help="Stop at the first failed run.", rich_help_panel=_RUN),
    ] = False,
    connect_timeout: Annotated[
        float,
        typer.Option(
            "--connect-timeout", metavar="SECONDS", min=0.1, help="Per call.", rich_help_panel=_RUN
        ),
    ] = 10.0,
    plain: Annotated[
        bool,
        typer.Option(
            "--plain", help="A line per turn instead of the live view.", rich_help_panel=_OUT
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="One JSON object per turn and run on stdout.", rich_help_panel=_OUT
        ),
    ] = False,
) -> None:
    """Call an agent, say scripted lines, check what it did: for CI and for load."""

    def body() -> None:
        from aivoco.cli.test_run import TestCommand

        TestCommand(
            scenarios, key=key, url=url, agent=agent, profile=profile, ctx=ctx,
            junit=junit, report=report,
            record_dir=record_dir, repeat=repeat, concurrency=concurrency,
            fail_fast=fail_fast, connect_timeout_s=connect_timeout, plain=plain,
            as_json=as_json,
        ).run()  # fmt: skip

    guarded(body)
