"""Shell completion for bash, zsh and fish: the scripts `--show-completion` and
`--install-completion` produce, loaded into the real shells, and completion queries
answered by the real `aivoco` (subcommands, profile names, device names), including on
a machine without PortAudio, where sounddevice must not even be imported."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import cli_env
from pulse import PulseServer
from test_cli_devices import HIDE_PORTAUDIO

AIVOCO = Path(sys.executable).parent / "aivoco"  # the console script, as a shell runs it
SHELLS = ("bash", "zsh", "fish")
PROFILES = "[profile.staging]\nvoice = 'male'\n[profile.local]\nchunk_ms = 20\n"


def need(shell: str) -> str:
    """The shell's path; CI installs all three (.ci/run), so there a missing one fails."""
    path = shutil.which(shell)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{shell} is not installed (.ci/run installs it)")
        pytest.skip(f"{shell} is not installed")
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A home of its own, the venv's `aivoco` on PATH, and a config with two profiles."""
    config = tmp_path / "config.toml"
    config.write_text(PROFILES)
    home = tmp_path / "home"
    home.mkdir()
    return cli_env(
        HOME=str(home),
        AIVOCO_CONFIG=str(config),
        PATH=os.pathsep.join([str(AIVOCO.parent), os.environ.get("PATH", "")]),
    )


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def in_shell(shell: str, command: str) -> str:
    """`command` as a child of the shell, so shell detection (shellingham) sees the shell
    as its parent: a lone command would be exec'd in its place."""
    if shell == "fish":
        return f"{command}; exit $status"
    return f"{command}; rc=$?; exit $rc"


def values(shell: str, lines: list[str]) -> list[str]:
    """The candidates in a query's answer, without their help texts."""
    if shell == "zsh":  # _arguments '*: :(("value":"help" ...))', with "" for "
        text = "\n".join(lines)
        return re.findall(r'"((?:[^"]|"")*)"(?::"(?:[^"]|"")*")?', text)
    return [line.split("\t")[0] for line in lines]


def query(env: dict[str, str], shell: str, words: str, **extra: str) -> list[str]:
    """Ask `aivoco` for completions as the shell's script does (Click's protocol)."""
    variables = {"_AIVOCO_COMPLETE": f"complete_{shell}", **extra}
    if shell == "bash":
        parts = words.split(" ")
        variables |= {"COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}
    else:
        variables["_TYPER_COMPLETE_ARGS"] = words
        if shell == "fish":
            variables["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    res = run([str(AIVOCO)], {**env, **variables})
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    return [line for line in res.stdout.splitlines() if line]


# -- the scripts -----------------------------------------------------------------------------
@pytest.mark.parametrize("shell", SHELLS)
def test_show_completion_detects_the_shell_and_prints_its_script(
    shell: str, env: dict[str, str]
) -> None:
    res = run([need(shell), "-c", in_shell(shell, "aivoco --show-completion")], env)
    assert res.returncode == 0, res.stderr
    script = res.stdout
    assert "_AIVOCO_COMPLETE=complete_" + shell in script
    expected = {
        "bash": "complete -o default -F _aivoco_completion aivoco",
        "zsh": "compdef _aivoco_completion aivoco",
        "fish": "complete --command aivoco",
    }[shell]
    assert expected in script
    # The same script the completion variable's `source_` instruction gives.
    source = run([str(AIVOCO)], {**env, "_AIVOCO_COMPLETE": f"source_{shell}"})
    assert source.stdout.strip() == script.strip()


@pytest.mark.parametrize("shell", SHELLS)
def test_install_completion_writes_where_the_shell_loads_it(
    shell: str, env: dict[str, str]
) -> None:
    res = run([need(shell), "-c", in_shell(shell, "aivoco --install-completion")], env)
    assert res.returncode == 0, res.stderr
    home = Path(env["HOME"])
    installed = {
        "bash": home / ".bash_completions" / "aivoco.sh",
        "zsh": home / ".zfunc" / "_aivoco",
        "fish": home / ".config" / "fish" / "completions" / "aivoco.fish",
    }[shell]
    assert f"{shell} completion installed in {installed}" in res.stdout
    assert "_AIVOCO_COMPLETE" in installed.read_text()
    if shell == "bash":
        assert f"source '{installed}'" in (home / ".bashrc").read_text()
    if shell == "zsh":
        assert "fpath+=~/.zfunc" in (home / ".zshrc").read_text()


# -- completions answered in the real shells ---------------------------------------------------
def test_bash_completes_profile_names_through_its_script(env: dict[str, str]) -> None:
    script = run([str(AIVOCO)], {**env, "_AIVOCO_COMPLETE": "source_bash"}).stdout
    program = (
        f"{script}\n"
        'COMP_WORDS=(aivoco sts --profile ""); COMP_CWORD=3\n'
        '_aivoco_completion aivoco; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    res = run([need("bash"), "--norc", "-c", program], env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["local", "staging"]


def test_zsh_completes_profile_names_through_its_script(env: dict[str, str]) -> None:
    script = run([str(AIVOCO)], {**env, "_AIVOCO_COMPLETE": "source_zsh"}).stdout
    # compdef needs compinit; `_arguments` only works inside the completion widget, so a
    # stand-in prints what the script's eval handed it (its quoting is the real test).
    program = (
        "autoload -Uz compinit && compinit -u -d $HOME/.zcompdump\n"
        f"{script}\n"
        'print -r -- "registered: $_comps[aivoco]"\n'
        '_arguments() { print -r -- "$@" }\n'
        "words=(aivoco config show --profile s); CURRENT=5\n"
        "_aivoco_completion\n"
    )
    res = run([need("zsh"), "-f", "-c", program], env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "registered: _aivoco_completion",
        '*: :(("staging":"voice"))',
    ]


def test_fish_completes_profile_names_through_its_script(env: dict[str, str]) -> None:
    script = run([str(AIVOCO)], {**env, "_AIVOCO_COMPLETE": "source_fish"}).stdout
    program = f"{script}\ncomplete -C 'aivoco call --profile '"
    res = run([need("fish"), "--no-config", "-c", program], env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["local\tchunk_ms", "staging\tvoice"]


# -- the queries themselves ----------------------------------------------------------------
@pytest.mark.parametrize("shell", SHELLS)
def test_queries_for_commands_and_profiles(shell: str, env: dict[str, str]) -> None:
    assert values(shell, query(env, shell, "aivoco con")) == ["config"]
    assert values(shell, query(env, shell, "aivoco config s")) == ["show"]
    assert values(shell, query(env, shell, "aivoco sts --profile ")) == ["local", "staging"]
    assert values(shell, query(env, shell, "aivoco config show --profile st")) == ["staging"]
    assert values(shell, query(env, shell, "aivoco call --pro")) == ["--profile"]


def test_profile_completion_stays_quiet_on_a_broken_config(env: dict[str, str]) -> None:
    Path(env["AIVOCO_CONFIG"]).write_text("[profile.a\n")
    assert query(env, "bash", "aivoco sts --profile ") == []
    env["AIVOCO_CONFIG"] = str(Path(env["HOME"]) / "none.toml")
    assert query(env, "bash", "aivoco sts --profile ") == []


def test_device_completion_without_portaudio_never_imports_sounddevice(
    env: dict[str, str], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    marker = tmp_path / "imported.txt"
    (site / "sitecustomize.py").write_text(
        HIDE_PORTAUDIO
        + "\nimport atexit, sys\n"
        + f"atexit.register(lambda: open({str(marker)!r}, 'w').write("
        + "str('sounddevice' in sys.modules)))\n"
    )
    env["PYTHONPATH"] = str(site)
    for option in ("--input-device", "--output-device"):
        assert query(env, "bash", f"aivoco sts {option} ") == []
        assert marker.read_text() == "False"
    # The same machine: the command itself still says PortAudio is missing.
    res = run([str(AIVOCO), "devices"], env)
    assert res.returncode == 7 and "PortAudio is not installed" in res.stderr


@pytest.mark.device
def test_device_names_are_completed_from_portaudio(env: dict[str, str], pulse: PulseServer) -> None:
    env = {**env, **pulse.env}
    inputs = query(env, "fish", "aivoco sts --input-device ")
    names = [line.split("\t")[0] for line in inputs]
    assert {"pulse", "default"} <= set(names)
    assert all("\t#" in line for line in inputs)  # the index and host API as help
    assert values("fish", query(env, "fish", "aivoco call --output-device pul")) == ["pulse"]
    assert query(env, "bash", "aivoco sts --input-device pul") == ["pulse"]
