"""Profiles for `aivoco test` and `aivoco report`, through the real CLI (subprocesses,
real loopback servers): the key, URLs and agent of every scenario from a profile named
by --profile, $AIVOCO_PROFILE or the scenario's `profile:`, with the precedence the
README states (command line > the scenario's own url:/agent: > environment > profile >
[defaults] > built-in), and the key `aivoco report` masks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import cli_env, run_cli
from reportcheck import parse_page
from servers import RecordingCallServer, RecordingStsServer
from test_config_cli import DEAD_URL, write_config

from aivoco.errors import ExitCode

KEY = "sk-profile-test-3c8e1f05"
OTHER = "sk-profile-other-9a7d2b64"


def scenario(tmp_path: Path, *lines: str, protocol: str = "sts") -> Path:
    path = tmp_path / f"{protocol}.yaml"
    text = [f"protocol: {protocol}", *lines, "turns:", "  - silence: 0.2"]
    path.write_text("\n".join(text) + "\n")
    return path


def run_test(config: Path, *args: str, **env: str) -> tuple[int, str]:
    res = run_cli("test", *args, "--plain", env=cli_env(AIVOCO_CONFIG=str(config), **env))
    return res.returncode, res.stdout + res.stderr


def test_a_test_run_driven_entirely_by_a_profile(tmp_path: Path) -> None:
    with RecordingStsServer() as sts, RecordingCallServer() as call:
        config = write_config(
            tmp_path,
            f'[profile.loop]\nkey_env = "LOOP_KEY"\nsts_url = "{sts.url}"\n'
            f'call_url = "{call.url}/ws"\nagent = "agent-9"\n',
        )
        files = [str(scenario(tmp_path)), str(scenario(tmp_path, protocol="call"))]
        code, out = run_test(config, *files, "--profile", "loop", LOOP_KEY=KEY)
        assert code == 0, out
        assert sts.wait_for("start_call").data["auth_key"] == KEY
        [conn] = call.connections
        assert (conn.key, conn.agent) == (KEY, "agent-9")
    assert KEY not in out


def test_a_scenario_names_its_profile_and_the_command_line_overrides_it(tmp_path: Path) -> None:
    with RecordingStsServer() as server:
        config = write_config(
            tmp_path,
            f'[profile.mine]\nkey = "{KEY}"\nsts_url = "{server.url}"\n\n'
            f'[profile.other]\nkey = "{OTHER}"\nsts_url = "{server.url}"\n',
        )
        named = str(scenario(tmp_path, "profile: mine"))
        code, out = run_test(config, named)
        assert code == 0, out
        code, out = run_test(config, named, AIVOCO_PROFILE="other")
        assert code == 0, out
        code, out = run_test(config, named, "--profile", "mine", AIVOCO_PROFILE="other")
        assert code == 0, out
        keys = [e.data["auth_key"] for e in server.events("start_call")]
    assert keys == [KEY, OTHER, KEY]


def _below(order: tuple[str, ...], where: str) -> set[str]:
    """The sources under `where`: each is given a wrong value, so it must lose."""
    return set(order[order.index(where) + 1 :])


URL_ORDER = ("flag", "scenario", "env", "profile", "defaults")


@pytest.mark.parametrize("where", URL_ORDER)
def test_url_precedence(tmp_path: Path, where: str) -> None:
    """The winning source points at the live server, every source under it at a port
    where nothing listens (a wrong choice fails the run), those above it are absent."""
    with RecordingStsServer() as server:
        lose = _below(URL_ORDER, where)

        def url(source: str) -> str | None:
            return server.url if source == where else DEAD_URL if source in lose else None

        defaults = f'sts_url = "{url("defaults")}"\n' if url("defaults") else ""
        profile = f'sts_url = "{url("profile")}"\n' if url("profile") else ""
        toml = f'[defaults]\n{defaults}\n[profile.p]\nkey = "{KEY}"\n{profile}'
        config = write_config(tmp_path, toml)
        lines = [f"url: {url('scenario')}"] if url("scenario") else []
        args = ["--url", server.url] if where == "flag" else []
        env = {"AIVOCO_STS_URL": url("env") or ""} if url("env") else {}
        code, out = run_test(config, str(scenario(tmp_path, *lines)), "--profile", "p",
                             *args, "--connect-timeout", "3", **env)  # fmt: skip
        assert code == 0, out
        assert server.wait_for("start_call").data["auth_key"] == KEY


KEY_ORDER = ("flag", "env", "profile", "defaults")


@pytest.mark.parametrize("where", KEY_ORDER)
def test_key_precedence(tmp_path: Path, where: str) -> None:
    with RecordingStsServer() as server:
        lose = _below(KEY_ORDER, where)

        def key(source: str) -> str | None:
            return KEY if source == where else OTHER if source in lose else None

        toml = f'[defaults]\nsts_url = "{server.url}"\n'
        toml += f'key = "{key("defaults")}"\n' if key("defaults") else ""
        toml += (
            f'\n[profile.p]\nkey = "{key("profile")}"\n' if key("profile") else "\n[profile.p]\n"
        )
        config = write_config(tmp_path, toml)
        args = ["--key", KEY] if where == "flag" else []
        env = {"AIVOCO_API_KEY": key("env") or ""} if key("env") else {}
        code, out = run_test(config, str(scenario(tmp_path)), "--profile", "p", *args, **env)
        assert code == 0, out
        assert server.wait_for("start_call").data["auth_key"] == KEY


AGENT_ORDER = ("flag", "scenario", "profile", "defaults")


@pytest.mark.parametrize("where", AGENT_ORDER)
def test_agent_precedence(tmp_path: Path, where: str) -> None:
    with RecordingCallServer() as server:
        lose = _below(AGENT_ORDER, where)

        def agent(source: str) -> str | None:
            return "right" if source == where else "wrong" if source in lose else None

        toml = f'[defaults]\nkey = "{KEY}"\ncall_url = "{server.url}/ws"\n'
        toml += f'agent = "{agent("defaults")}"\n' if agent("defaults") else ""
        toml += "\n[profile.p]\n" + (f'agent = "{agent("profile")}"\n' if agent("profile") else "")
        config = write_config(tmp_path, toml)
        lines = [f"agent: {agent('scenario')}"] if agent("scenario") else []
        args = ["--agent", "right"] if where == "flag" else []
        path = scenario(tmp_path, *lines, protocol="call")
        code, out = run_test(config, str(path), "--profile", "p", *args)
        assert code == 0, out
        [conn] = server.connections
        assert conn.agent == "right"


def test_profile_problems_are_usage_errors_before_any_call(tmp_path: Path) -> None:
    with RecordingStsServer() as server:
        config = write_config(
            tmp_path, f'[profile.p]\nkey_env = "UNSET_KEY"\nsts_url = "{server.url}"\n'
        )
        named = scenario(tmp_path, "profile: nope")
        code, out = run_test(config, str(named))
        assert code == ExitCode.USAGE, out
        assert f"{named}:1: profile: unknown profile 'nope'" in " ".join(out.split())
        code, out = run_test(config, str(scenario(tmp_path)), "--profile", "nope")
        assert code == ExitCode.USAGE and "unknown profile 'nope' (flag --profile)" in out
        code, out = run_test(config, str(scenario(tmp_path, protocol="call")), "--profile", "p")
        assert code == ExitCode.USAGE, out
        flat = " ".join(out.split())
        assert "$UNSET_KEY (key_env of profile p) is not set" in flat
        assert "agent: missing: the agent to call" in flat
        assert server.events() == []


# -- aivoco report: the profile's key is masked in the page ----------------------------------
def _transcript(tmp_path: Path) -> Path:
    """A call whose server echoed the key into the agent's text."""
    records = [
        {"type": "connecting", "t": 0.0, "protocol": "sts", "endpoint": "127.0.0.1:1"},
        {"type": "ready", "t": 0.0, "message": "ready"},
        {"type": "agent_text", "t": 1.0, "text": f"your key is {KEY}"},
        {"type": "summary", "t": 2.0, "reason": "idle", "duration_s": 2.0},
    ]
    path = tmp_path / "call.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("how", ["flag", "env", "beside another key"])
def test_report_masks_the_profiles_key(tmp_path: Path, how: str) -> None:
    config = write_config(tmp_path, '[profile.p]\nkey_env = "P_KEY"\n')
    transcript, page = _transcript(tmp_path), tmp_path / "page.html"
    args = ["--profile", "p"] if how != "env" else []
    env = {"AIVOCO_PROFILE": "p"} if how == "env" else {}
    if how == "beside another key":  # a call would use this one; the profile's is masked too
        env["AIVOCO_API_KEY"] = OTHER
    res = run_cli(
        "report", str(transcript), "--out", str(page), *args,
        env=cli_env(AIVOCO_CONFIG=str(config), P_KEY=KEY, **env),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    html = page.read_text(encoding="utf-8")
    assert KEY not in html and "your key is ***" in parse_page(html).text


def test_report_with_an_unknown_profile_is_a_usage_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[profile.p]\nkey_env = "P_KEY"\n')
    res = run_cli(
        "report", str(_transcript(tmp_path)), "--profile", "nope",
        env=cli_env(AIVOCO_CONFIG=str(config)),
    )  # fmt: skip
    assert res.returncode == ExitCode.USAGE
    assert "unknown profile 'nope' (flag --profile)" in res.stderr
    assert not (tmp_path / "call.html").exists()
