"""`aivoco emulate`: run the local stand-in for both Aivoco services until Ctrl-C.

Where it listens goes to stdout (first line: `aivoco emulator listening on HOST:PORT`,
easy for scripts to parse with --port 0); the per-session log goes to stderr. Keys
never appear in either: sessions show a key's length and a short hash, accepted keys
are registered as secrets, and any `/ws/{key}/...` path a library might log is masked.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from aivoco.cli.errors import guarded
from aivoco.cli.options import LatencyMs
from aivoco.errors import UsageError
from aivoco.redact import RedactingFilter, register_secret

if TYPE_CHECKING:
    from aivoco.emulator import Emulator, EmulatorConfig

# aivoco.emulator.DEFAULT_PORT, repeated so `--help` does not import the emulator's
# server stack (aiohttp); tests/test_cli_help.py checks the two agree.
DEFAULT_PORT = 11002

_LEVELS = ("debug", "info", "warning", "error")
_CALL_PATH = re.compile(r"/ws/(?!\{key\}/)[^/\s?#]+/")


class _CallPathFilter(logging.Filter):
    """Masks the key segment of agent-call paths in any log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _CALL_PATH.sub("/ws/***/", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _setup_logging(level: str) -> Callable[[], None]:
    """Log to stderr; returns a function that undoes it (tests run commands in-process)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactingFilter())
    handler.addFilter(_CallPathFilter())
    root, ours = logging.getLogger(), logging.getLogger("aivoco.emulator")
    saved = root.level, ours.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # other libraries: warnings and errors only
    ours.setLevel(level.upper())

    def restore() -> None:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        ours.setLevel(saved[1])

    return restore


def _describe(config: EmulatorConfig) -> list[str]:
    keys = (
        f"{len(config.accept_keys)} accepted key(s)"
        if config.accept_keys
        else "any non-empty key accepted"
    )
    faults = []
    if config.drop_after_s is not None:
        faults.append(f"drop each connection after {config.drop_after_s:g} s")
    if config.garbage_every is not None:
        faults.append(f"every {config.garbage_every}th message malformed")
    if config.reject_agents:
        faults.append(f"{len(config.reject_agents)} agent id(s) rejected")
    return [
        f"  {keys}; {config.credits:g} credits per key at {config.cost_per_minute:g}/min; "
        f"reply latency {config.latency_ms:g} ms; function timeout {config.function_timeout_s:g} s",
        f"  faults: {', '.join(faults) if faults else 'none'}",
    ]


def emulate(
    host: Annotated[
        str,
        typer.Option(
            metavar="ADDRESS", help="Address to bind (use 0.0.0.0 to accept remote clients)."
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="PORT", help="Port for both services; 0 picks a free one.")
    ] = DEFAULT_PORT,
    accept_key: Annotated[
        list[str] | None,
        typer.Option(
            "--accept-key",
            metavar="KEY",
            help="Accept only this API key (repeatable); default: any non-empty key.",
        ),
    ] = None,
    credits: Annotated[
        float, typer.Option(metavar="CREDITS", help="Credit balance of each key.")
    ] = 100.0,
    cost_per_minute: Annotated[
        float, typer.Option(metavar="CREDITS", help="Credits charged per minute of call.")
    ] = 1.0,
    admin_units: Annotated[
        float, typer.Option(metavar="UNITS", help="Admin units per key (pay for functions).")
    ] = 100.0,
    latency_ms: LatencyMs = 300.0,
    drop_after: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="Abruptly drop each connection this many seconds after it opens.",
        ),
    ] = None,
    garbage_every: Annotated[
        int | None,
        typer.Option(metavar="N", help="Make every Nth message sent malformed (N >= 2)."),
    ] = None,
    reject_agent: Annotated[
        list[str] | None,
        typer.Option(
            "--reject-agent",
            metavar="ID",
            help="Answer calls to this agent id with HTTP 404 (repeatable).",
        ),
    ] = None,
    function_timeout: Annotated[
        float,
        typer.Option(metavar="SECONDS", help="Seconds to wait for a function_response."),
    ] = 10.0,
    log_level: Annotated[
        str, typer.Option(metavar="LEVEL", help="debug, info, warning or error.")
    ] = "info",
) -> None:
    """Run a local stand-in for both Aivoco services (Speech-to-Speech and agent call).

    Examples:
      aivoco emulate --port 0
      aivoco emulate --accept-key KEY --latency-ms 100 --drop-after 30
    """

    def body() -> None:
        from aivoco.emulator import Emulator, EmulatorConfig

        if log_level.lower() not in _LEVELS:
            raise UsageError(f"--log-level must be one of {', '.join(_LEVELS)}")
        for key in accept_key or []:
            register_secret(key)
        config = EmulatorConfig(
            host=host,
            port=port,
            accept_keys=tuple(accept_key or ()),
            reject_agents=tuple(reject_agent or ()),
            credits=credits,
            cost_per_minute=cost_per_minute,
            admin_units=admin_units,
            latency_ms=latency_ms,
            function_timeout_s=function_timeout,
            drop_after_s=drop_after,
            garbage_every=garbage_every,
        )
        restore_logging = _setup_logging(log_level.lower())
        try:
            _serve(Emulator(config), config)
        finally:
            restore_logging()

    guarded(body)


def _serve(emulator: Emulator, config: EmulatorConfig) -> None:
    emulator.start()
    lines = [
        f"aivoco emulator listening on {emulator.host}:{emulator.port}",
        f"  Speech-to-Speech (Socket.IO): {emulator.sts_url}",
        f"  agent call (WebSocket):       {emulator.call_url}/{{key}}/{{agent}}",
        *_describe(config),
        "Press Ctrl-C to stop.",
    ]
    typer.echo("\n".join(lines))
    sys.stdout.flush()
    try:
        while emulator.running:
            emulator.join(0.5)
    except KeyboardInterrupt:
        typer.echo("\nstopping...")
    finally:
        emulator.stop()
    typer.echo("aivoco emulator stopped. Totals:")
    for line in emulator.totals():
        typer.echo(f"  {line}")
