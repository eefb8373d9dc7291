"""`--help` as a new user reads it at 80 columns, and what starting the command costs.

Startup speed itself is measured by bench/bench_startup.py, not asserted here; this
checks the cause that made it slow: which heavy modules the help path imports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from clirun import cli_env, run_cli

from aivoco.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
COMMANDS: tuple[list[str], ...] = ([], ["sts"], ["call"], ["demo"], ["devices"], ["emulate"])
HEAVY = ("numpy", "aiohttp", "socketio", "engineio", "pydantic", "sounddevice", "soundfile")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "aivoco")
def test_help_at_80_columns_is_clean(command: list[str]) -> None:
    res = run_cli(*command, "--help", env=cli_env(COLUMNS="80"))
    assert res.returncode == 0, res.stderr
    text = res.stdout
    for marker in ("<bool>", "<str>", "<int", "<float>", "<path>", "…"):
        assert marker not in text, marker
    assert all(len(line) <= 80 for line in text.splitlines())
    if command:
        assert "Examples:" in text and f"aivoco {command[0]}" in text


def test_sts_help_shows_the_default_url_whole() -> None:
    res = run_cli("sts", "--help", env=cli_env(COLUMNS="80"))
    assert "wss://sts.aivoco.on.cloud.vispark.in" in res.stdout


def test_latency_ms_is_the_same_option_in_demo_and_emulate() -> None:
    import typer

    from aivoco.cli.app import app

    group = typer.main.get_command(app)
    found = []
    for name in ("demo", "emulate"):
        command = group.commands[name]  # type: ignore[attr-defined]
        param = next(p for p in command.params if p.name == "latency_ms")
        found.append((param.opts, param.metavar, param.help, param.type_descriptor.annotation))
    assert found[0] == found[1]
    assert found[0][3] is float and found[0][1] == "MS"


def test_an_unknown_demo_protocol_names_the_ones_that_exist() -> None:
    res = run_cli("demo", "foo", env=cli_env(COLUMNS="80"))
    assert res.returncode == ExitCode.USAGE
    assert "Value error" not in res.stderr
    assert "'sts'" in res.stderr and "'call'" in res.stderr


def test_a_number_out_of_range_says_the_range() -> None:
    res = run_cli("sts", "--key", "k" * 12, "--chunk-ms", "5", env=cli_env(COLUMNS="80"))
    assert res.returncode == ExitCode.USAGE
    assert "must be 10 to 200, not 5" in res.stderr


def test_the_emulate_default_port_is_the_emulators() -> None:
    from aivoco.cli.emulate_cmd import DEFAULT_PORT
    from aivoco.emulator import DEFAULT_PORT as EMULATOR_PORT

    assert DEFAULT_PORT == EMULATOR_PORT


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["sts", "--help"]])
def test_help_and_version_import_nothing_heavy(argv: list[str]) -> None:
    """The cause of a slow `--help` (0.87 s): every command module and the emulator's
    aiohttp stack were imported eagerly, and Typer validated through pydantic."""
    probe = (
        "import sys\n"
        "from aivoco.cli.app import app\n"
        f"sys.argv = ['aivoco', *{argv!r}]\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
        "print(sorted(m for m in sys.modules if m.startswith('aivoco.emulator')), "
        "file=sys.stderr)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert res.stderr.splitlines()[-2:] == ["[]", "[]"], res.stderr


def test_the_license_is_an_spdx_expression() -> None:
    """setuptools deprecates the `{text = ...}` table (no builds after 2027-02-18)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    requires = project["build-system"]["requires"]
    assert any(r.replace(" ", "").startswith("setuptools>=77") for r in requires)
