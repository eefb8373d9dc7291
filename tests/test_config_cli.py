"""The config file through the real CLI (subprocesses, real loopback servers): calls
driven entirely by a profile, precedence as Click reports each value's source, usage
errors before connecting, the permission check, and `aivoco config show|path|init`."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from clirun import cli_env, json_lines, run_cli, write_tone
from servers import RecordingCallServer, RecordingStsServer

from aivoco.cli.errors import ExitCode

KEY = "sk-profile-5d1e9b7a"
DEAD_URL = "http://127.0.0.1:9"  # nothing listens: a call that used it would fail


def config_env(path: Path, **extra: str) -> dict[str, str]:
    return cli_env(AIVOCO_CONFIG=str(path), **extra)


def write_config(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "conf" / "config.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def show(path: Path, *args: str, **env: str) -> dict[str, Any]:
    res = run_cli("config", "show", "--json", *args, env=config_env(path, **env))
    assert res.returncode == 0, res.stderr
    record: dict[str, Any] = json.loads(res.stdout)
    return record


def setting(record: dict[str, Any], name: str) -> tuple[Any, str]:
    row = next(r for r in record["settings"] if r["name"] == name)
    return row["value"], row["from"]


FUNCTIONS = '''
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b
'''


# -- real calls driven by a profile -----------------------------------------------------
def test_an_sts_call_driven_entirely_by_a_profile(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "q.wav", 1000, 16000, 0.3, amplitude=0.0)
    with RecordingStsServer() as server:
        path = write_config(
            tmp_path,
            f"""
            [defaults]
            idle_timeout = 0.6
            connect_timeout = 5

            [profile.loop]
            key_env = "LOOP_KEY"
            sts_url = "{server.url}"
            voice = "Boy"
            system = "@prompts/loop.txt"
            functions = "tools.py"
            """.replace("\n            ", "\n"),
        )
        (path.parent / "prompts").mkdir()
        (path.parent / "prompts" / "loop.txt").write_text("Answer in one word.\n")
        (path.parent / "tools.py").write_text(FUNCTIONS)
        res = run_cli(
            "sts", "--profile", "loop", "--input", str(tone),
            "--output", str(tmp_path / "a.wav"), "--json",
            env=config_env(path, LOOP_KEY=KEY),
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        start = server.wait_for("start_call").data
    assert start["auth_key"] == KEY
    assert start["voice_choice"] == "Boy"
    assert start["system_message"] == "Answer in one word."
    assert [f["name"] for f in start["custom_functions"]] == ["add"]
    summary = json_lines(res.stdout)[-1]
    assert summary["reason"] == "idle"
    assert summary["duration_s"] < 3  # [defaults] idle_timeout = 0.6, not the built-in 3 s
    assert KEY not in res.stdout + res.stderr


def test_a_call_driven_by_aivoco_profile_with_the_key_in_the_file(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "q.wav", 500, 8000, 0.3, amplitude=0.0)
    with RecordingCallServer() as server:
        path = write_config(
            tmp_path,
            f'[profile.local]\nkey = "{KEY}"\ncall_url = "{server.url}/ws"\nagent = "agent-7"\n'
            "idle_timeout = 0.6\n",
        )
        res = run_cli(
            "call", "--input", str(tone), "--output", str(tmp_path / "a.wav"), "--json",
            env=config_env(path, AIVOCO_PROFILE="local"),
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    [conn] = server.connections
    assert (conn.key, conn.agent) == (KEY, "agent-7")
    assert KEY not in res.stdout + res.stderr


def test_flags_and_variables_beat_the_profile_in_a_real_call(tmp_path: Path) -> None:
    """The profile points at a dead port and says voice "Boy"; $AIVOCO_STS_URL and
    --voice win, so the call reaches the server with voice "male"."""
    tone = write_tone(tmp_path / "q.wav", 1000, 16000, 0.3, amplitude=0.0)
    path = write_config(
        tmp_path,
        f'[profile.p]\nkey = "{KEY}"\nsts_url = "{DEAD_URL}"\nvoice = "Boy"\nidle_timeout = 0.6\n',
    )
    with RecordingStsServer() as server:
        res = run_cli(
            "sts", "--profile", "p", "--voice", "male", "--input", str(tone),
            "--output", str(tmp_path / "a.wav"), "--json",
            env=config_env(path, AIVOCO_STS_URL=server.url),
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert server.wait_for("start_call").data["voice_choice"] == "male"


def test_config_errors_are_usage_errors_before_anything_connects(tmp_path: Path) -> None:
    with RecordingStsServer() as server:
        path = write_config(
            tmp_path, f'[defaults]\nvoice = "male"\n\n[profile.p]\nsts_url = "{server.url}"\n'
            'chunk_ms = "20"\n',
        )  # fmt: skip
        res = run_cli("sts", "--key", KEY, "--input", "x.wav", env=config_env(path))
        assert res.returncode == ExitCode.USAGE
        assert f"config file {path}, line 6, key profile.p.chunk_ms: expected an integer" in (
            " ".join(res.stderr.split())
        )
        path.write_text(path.read_text().replace('"20"', "20"))
        res = run_cli("sts", "--profile", "nope", "--key", KEY, env=config_env(path))
        assert res.returncode == ExitCode.USAGE
        assert "unknown profile 'nope' (flag --profile)" in res.stderr
        assert server.events() == []


def test_call_without_an_agent_anywhere_is_a_usage_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[defaults]\nchunk_ms = 20\n")
    res = run_cli("call", "--key", KEY, "--url", "ws://127.0.0.1:9", env=config_env(path))
    assert res.returncode == ExitCode.USAGE
    assert "missing option --agent" in res.stderr


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_a_key_in_a_file_others_can_read_is_refused_before_connecting(
    tmp_path: Path, mode: int
) -> None:
    with RecordingStsServer() as server:
        path = write_config(
            tmp_path, f'[profile.p]\nkey = "{KEY}"\nsts_url = "{server.url}"\n', mode
        )
        res = run_cli("sts", "--profile", "p", "--input", "x.wav", env=config_env(path))
        assert res.returncode == ExitCode.USAGE
        err = " ".join(res.stderr.split())
        assert f"warning: not using the key stored in the config file: {path} is readable" in err
        assert f"chmod 600 {path}" in err
        assert "no API key" in err
        assert server.events() == []
        assert KEY not in res.stdout + res.stderr


def test_an_unset_key_env_says_which_variable(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[profile.s]\nkey_env = "STAGING_KEY"\n')
    res = run_cli("sts", "--profile", "s", "--input", "x.wav", env=config_env(path))
    assert res.returncode == ExitCode.USAGE
    assert "$STAGING_KEY (key_env of profile s) is not set" in " ".join(res.stderr.split())


# -- config show: precedence as Click records it, the key always masked --------------------
PRECEDENCE = """
[defaults]
voice = "male"
chunk_ms = 40
idle_timeout = 5
sts_url = "ws://defaults"

[profile.p]
voice = "Girl"
chunk_ms = 30
sts_url = "ws://profile"
"""


def test_show_reports_each_source(tmp_path: Path) -> None:
    path = write_config(tmp_path, PRECEDENCE)
    record = show(path, "--chunk-ms", "25", AIVOCO_PROFILE="p", AIVOCO_STS_URL="ws://env")
    assert (record["profile"], record["profile_from"]) == ("p", "env AIVOCO_PROFILE")
    assert setting(record, "chunk_ms") == (25, "flag --chunk-ms")
    assert setting(record, "sts_url") == ("ws://env", "env AIVOCO_STS_URL")
    assert setting(record, "voice") == ("Girl", "profile p, line 9")
    assert setting(record, "idle_timeout") == (5.0, "defaults, line 5")
    assert setting(record, "connect_timeout") == (10.0, "built-in")
    assert setting(record, "call_url") == ("wss://call.aivoco.on.cloud.vispark.in/ws", "built-in")
    # A flag equal to the built-in default is still a flag (Click's source, no sentinel).
    assert setting(show(path, "--voice", "female"), "voice") == ("female", "flag --voice")
    assert setting(show(path), "voice") == ("male", "defaults, line 3")
    assert show(path, "--profile", "p", AIVOCO_PROFILE="nope")["profile_from"] == "flag --profile"


@pytest.mark.parametrize(
    ("text", "args", "env", "origin"),
    [
        ('[profile.p]\nkey_env = "MY_KEY"\n', ["--profile", "p"], {"MY_KEY": KEY}, "profile p"),
        (f'[profile.p]\nkey = "{KEY}"\n', ["--profile", "p"], {}, "profile p, line 2"),
        (f'[defaults]\nkey = "{KEY}"\n', [], {}, "defaults, line 2"),
        ("", [], {"AIVOCO_API_KEY": KEY}, "env AIVOCO_API_KEY"),
        ("", ["--key", KEY], {}, "flag --key"),
    ],
)
def test_show_masks_the_key(
    tmp_path: Path, text: str, args: list[str], env: dict[str, str], origin: str
) -> None:
    path = write_config(tmp_path, text)
    record = show(path, *args, **env)
    value, source = setting(record, "key")
    assert value == "***" and source.startswith(origin)
    table = run_cli("config", "show", *args, env=config_env(path, **env))
    assert table.returncode == 0, table.stderr
    assert "***" in table.stdout
    for out in (json.dumps(record), table.stdout, table.stderr):
        assert KEY not in out


def test_show_notes_why_there_is_no_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[profile.p]\nkey_env = "UNSET_VAR"\n')
    record = show(path, "--profile", "p")
    assert setting(record, "key") == (None, "built-in")
    assert record["notes"] == ["$UNSET_VAR (key_env of profile p) is not set"]


def test_show_without_a_config_file_and_with_an_invalid_one(tmp_path: Path) -> None:
    res_env = cli_env(XDG_CONFIG_HOME=str(tmp_path))
    res_env.pop("AIVOCO_CONFIG")
    res = run_cli("config", "show", "--json", env=res_env)
    assert res.returncode == 0, res.stderr
    record = json.loads(res.stdout)
    assert record["config_file"] == str(tmp_path / "aivoco" / "config.toml")
    assert record["found"] is False
    bad = write_config(tmp_path, "[defaults]\nvoice = 1\n")
    res = run_cli("config", "show", env=config_env(bad))
    assert res.returncode == ExitCode.USAGE
    assert "line 2, key defaults.voice" in " ".join(res.stderr.split())


# -- config path and init -----------------------------------------------------------------
def test_path_and_init(tmp_path: Path) -> None:
    env = cli_env(XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    env.pop("AIVOCO_CONFIG")
    expected = tmp_path / "xdg" / "aivoco" / "config.toml"
    res = run_cli("config", "path", env=env)
    assert (res.returncode, res.stdout.strip()) == (0, str(expected))
    assert "does not exist yet" in res.stderr
    res = run_cli("config", "init", env=env)
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(expected.stat().st_mode) == 0o600
    assert "[defaults]" in expected.read_text()
    assert run_cli("config", "show", env=env).returncode == 0  # the starting file is valid
    expected.write_text("# mine\n")
    res = run_cli("config", "init", env=env)
    assert res.returncode == ExitCode.USAGE and "exists already" in res.stderr
    assert expected.read_text() == "# mine\n"  # nothing lost
    expected.chmod(0o644)
    assert run_cli("config", "init", "--force", env=env).returncode == 0
    assert stat.S_IMODE(expected.stat().st_mode) == 0o600
    named = tmp_path / "elsewhere.toml"
    res = run_cli("config", "path", env=cli_env(AIVOCO_CONFIG=str(named)))
    assert res.stdout.strip() == str(named)
