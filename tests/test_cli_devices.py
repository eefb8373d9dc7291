"""`aivoco --help`, `--version`, `devices`, and a machine where PortAudio is missing.

Everything runs as a subprocess (`python -m aivoco ...`, via clirun), the way a user runs
it, so import-time behaviour (sounddevice loading PortAudio) is exercised for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from clirun import cli_env, run_cli

import aivoco

# Wraps ctypes.util.find_library so that, in the child, the PortAudio shared library is
# not found: sounddevice's real import then raises OSError('PortAudio library not found'),
# exactly as on a machine without libportaudio2. Python imports `sitecustomize` from
# PYTHONPATH at start-up, before any aivoco code runs.
HIDE_PORTAUDIO = textwrap.dedent(
    """
    import ctypes.util

    _real_find_library = ctypes.util.find_library


    def find_library(name):
        if "portaudio" in name.lower():
            return None
        return _real_find_library(name)


    ctypes.util.find_library = find_library
    """
)


@pytest.fixture
def no_portaudio_env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_PORTAUDIO)
    return cli_env(
        PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    )


def one_line(text: str) -> str:
    """Undo terminal-width wrapping so phrases can be searched whole."""
    return " ".join(text.split())


def test_help_lists_the_devices_command() -> None:
    out = run_cli("--help")
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout
    assert "devices" in out.stdout
    assert out.stderr == ""


def test_no_arguments_shows_help() -> None:
    out = run_cli()
    # Typer's no_args_is_help prints usage and exits 2 (click's usage-error code) on
    # recent click versions, 0 on older ones; both show the help text.
    assert out.returncode in (0, 2)
    assert "Usage" in out.stdout + out.stderr


def test_version() -> None:
    out = run_cli("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"aivoco {aivoco.__version__}"


def test_devices_json_is_a_list_of_devices() -> None:
    out = run_cli("devices", "--json")
    assert out.returncode == 0, out.stderr
    devices = json.loads(out.stdout)
    assert isinstance(devices, list)
    keys = {
        "index",
        "name",
        "hostapi",
        "max_input_channels",
        "max_output_channels",
        "default_samplerate_hz",
        "default_input",
        "default_output",
    }
    for d in devices:
        assert set(d) == keys


def test_missing_portaudio_gives_exit_7_and_install_hints(
    no_portaudio_env: dict[str, str],
) -> None:
    out = run_cli("devices", env=no_portaudio_env)
    assert out.returncode == 7, out.stdout + out.stderr
    err = one_line(out.stderr)
    assert "audio device error" in err
    assert "libportaudio2" in err
    assert "brew install portaudio" in err
    # The detail comes from sounddevice's own import failure: the lookup really failed.
    assert "PortAudio library not found" in err
    assert "Traceback" not in out.stderr + out.stdout
    assert out.stdout == ""


def test_missing_portaudio_json_mode_also_fails_cleanly(
    no_portaudio_env: dict[str, str],
) -> None:
    out = run_cli("devices", "--json", env=no_portaudio_env)
    assert out.returncode == 7
    assert out.stdout == ""  # no half-written JSON for scripts to misread
    assert "libportaudio2" in one_line(out.stderr)


def test_help_and_version_work_without_portaudio(no_portaudio_env: dict[str, str]) -> None:
    out = run_cli("--help", env=no_portaudio_env)
    assert out.returncode == 0, out.stderr
    assert "devices" in out.stdout
    assert run_cli("--version", env=no_portaudio_env).returncode == 0
    assert run_cli("devices", "--help", env=no_portaudio_env).returncode == 0


def test_hiding_portaudio_really_breaks_sounddevice(no_portaudio_env: dict[str, str]) -> None:
    # Guards the fixture itself: without it the tests above could pass on a machine whose
    # PortAudio works only because aivoco never imported sounddevice.
    out = subprocess.run(
        [sys.executable, "-c", "import sounddevice"],
        capture_output=True,
        text=True,
        timeout=60,
        env=no_portaudio_env,
        check=False,
    )
    assert out.returncode != 0
    assert "OSError: PortAudio library not found" in out.stderr
