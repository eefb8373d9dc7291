"""The config file in-process: names, types, every validation error, line numbers, the
permission check and the precedence matrix (command line > environment > profile >
[defaults] > built-in), through the same `resolve()` the commands use."""

from __future__ import annotations

import itertools
import os
import re
import typing
from pathlib import Path

import pytest

from aivoco.config import ConfigError, From, Given, Origin, choose_profile, load_config, resolve
from aivoco.config.schema import settings
from aivoco.config.template import TEMPLATE
from aivoco.config.toml_lines import key_lines
from aivoco.session.options import STS_DEFAULT_URL, CallOptions, OptionInfo, cli_fields
from aivoco.wire.driver import ProtocolName

STS = ProtocolName.STS


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def run(
    text: str,
    tmp_path: Path,
    given: dict[str, Given] | None = None,
    profile: str | None = None,
    command: str = "sts",
    mode: int = 0o600,
) -> dict[str, tuple[object, Origin]]:
    config = load_config(write(tmp_path, text, mode))
    out = resolve(
        config,
        cli_fields(command),
        protocol=ProtocolName(command),
        given=given or {},
        profile=profile,
    )
    return {name: (out.values[name], out.origins[name]) for name in out.values}


# -- names and types, from the declarations -------------------------------------------------
def test_every_option_is_settable_by_its_long_name() -> None:
    names = settings()
    for command in ("sts", "call"):
        for field, _, info in cli_fields(command):
            if field == "url":
                continue
            name = info.flag.split("/")[0].lstrip("-").replace("-", "_")  # --x/--no-x: x
            assert names[name].field == field
    assert names["sts_url"].field == names["call_url"].field == "url"
    assert "url" not in names
    assert {"input_device", "idle_timeout", "max_duration", "connect_timeout", "chunk_ms"} <= set(
        names
    )


def test_values_take_the_field_types_and_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    text = """
    [defaults]
    idle_timeout = 2          # an integer is fine for a float option
    chunk_ms = 40
    functions = "tools.py"
    system = "@prompts/p.txt"
    record = "~/rec.wav"
    input_device = "USB"
    """
    config = load_config(write(tmp_path, text))
    got = {name: entry.value for name, entry in config.defaults.entries.items()}
    assert got["idle_timeout"] == 2.0 and isinstance(got["idle_timeout"], float)
    assert got["chunk_ms"] == 40
    assert got["functions"] == tmp_path / "tools.py"
    assert got["system"] == f"@{tmp_path / 'prompts' / 'p.txt'}"
    assert got["record"] == Path("~/rec.wav").expanduser()
    hints = typing.get_type_hints(CallOptions)
    for name, entry in config.defaults.entries.items():
        field = settings()[name].field
        assert isinstance(entry.value, typing.get_args(hints[field]) or hints[field])


def test_the_init_template_is_valid_and_every_commented_example_too(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, TEMPLATE)).found
    example = re.compile(r"# (\[profile\.\w+\].*|[a-z_]+ = .*)$")
    uncommented = "\n".join(
        m[1] if (m := example.match(line)) else line for line in TEMPLATE.splitlines()
    )
    config = load_config(write(tmp_path, uncommented))
    assert set(config.profiles) == {"staging", "local"}
    assert config.profiles["staging"].entries["key_env"].value == "AIVOCO_STAGING_KEY"


# -- every validation error names the file, the line and the key ------------------------------
ERRORS = [
    ('[defaults]\nchunk_ms = "20"\n', 2, "defaults.chunk_ms", 'expected an integer, got "20"'),
    ("[defaults]\nchunk_ms = 20.5\n", 2, "defaults.chunk_ms", "expected an integer, got 20.5"),
    ("[defaults]\nchunk_ms = true\n", 2, "defaults.chunk_ms", "expected an integer, got true"),
    ('[defaults]\nidle_timeout = "3"\n', 2, "defaults.idle_timeout", "expected a number"),
    ("[defaults]\nidle_timeout = 0\n", 2, "defaults.idle_timeout", "must be at least 0.1"),
    ("[defaults]\nchunk_ms = 500\n", 2, "defaults.chunk_ms", "must be at most 200"),
    ("[defaults]\ninput_device = 3\n", 2, "defaults.input_device", "expected a non-empty string"),
    ('[defaults]\ninput_device = ""\n', 2, "defaults.input_device", "non-empty string"),
    ("[defaults]\nfunctions = [1]\n", 2, "defaults.functions", "got an array"),
    ("[defaults]\ninput_device = {a = 1}\n", 2, "defaults.input_device", "got a table"),
    ('\n[defaults]\ninput_devce = "x"\n', 3, "defaults.input_devce", "did you mean input_device"),
    ('[profile.a]\nurl = "ws://x"\n', 2, "profile.a.url", "use sts_url or call_url"),
    ('[profile.a]\nsts_url = "ftp://x"\n', 2, "profile.a.sts_url", "invalid URL 'ftp://x'"),
    ('[profile.a]\ncall_url = "http://x"\n', 2, "profile.a.call_url", "expected ws:// or wss://"),
    ('[profile.a]\nkey_env = "1BAD"\n', 2, "profile.a.key_env", "name of an environment var"),
    ('[profile.a]\nkey = "k"\nkey_env = "K"\n', 3, "profile.a.key_env", "either key or key_env"),
    ('x = 1\n[defaults]\nvoice = "male"\n', 1, "x", "unknown table or key"),
    ("defaults = 1\n", 1, "defaults", "expected a table of settings"),
    ("profile = 1\n", 1, "profile", "expected tables [profile.NAME]"),
    ("[profile]\na = 1\n", 2, "profile.a", "expected a table of settings"),
    ("profile.a.voice = 3\n", 1, "profile.a.voice", "got 3"),
    ("[profile]\nb = { voice = 3 }\n", 2, "profile.b.voice", "got 3"),
    ('[profile.""]\nvoice = "x"\n', 1, 'profile.""', "a profile needs a name"),
    ('[profile."my env"]\nchunk_ms = "x"\n', 2, 'profile."my env".chunk_ms', "an integer"),
    (
        '[defaults]\nsystem = """\nchunk_ms = 1\n"""\nchunk_ms = "1"\n',
        5,
        "defaults.chunk_ms",
        "int",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "problem"), ERRORS)
def test_validation_errors_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    if key == "x" or key == "defaults" or key == "profile":
        assert f"key {key}:" in message
    assert message.startswith(f"config file {path}, line {line}, key {key}: "), message
    assert problem in message


def test_a_mistyped_key_is_never_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "[profile.a]\nkey = 12345678\n"))
    assert "12345678" not in str(err.value)
    assert "line 2, key profile.a.key: expected a non-empty string" in str(err.value)


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"[defaults]\nvoice = \n", "line 2: invalid TOML: "),
        (b"[defaults]\nvoice = 'a'\nvoice = 'b'\n", "line 3: invalid TOML: "),
        (b"[defaults]\nvoice = '\xff'\n", "line 2: not UTF-8 text"),
    ],
)
def test_invalid_toml_and_bad_bytes(tmp_path: Path, data: bytes, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=f"config file {path}, {text}"):
        load_config(path)


def test_unreadable_missing_and_disabled_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=f"cannot read config file {tmp_path}: "):
        load_config(tmp_path)  # a directory: unreadable even for root
    monkeypatch.setenv("AIVOCO_CONFIG", str(tmp_path / "none.toml"))
    with pytest.raises(ConfigError, match="does not exist \\(named by AIVOCO_CONFIG\\)"):
        load_config()
    monkeypatch.setenv("AIVOCO_CONFIG", os.devnull)
    assert not load_config().found
    monkeypatch.delenv("AIVOCO_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    config = load_config()  # the default place, not there yet: no config, no error
    assert not config.found and config.path == tmp_path / "xdg" / "aivoco" / "config.toml"


def test_unknown_profile(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[profile.b]\n[profile.a]\n"))
    with pytest.raises(ConfigError, match=r"unknown profile 'c' \(flag --profile\) in config "
                       r"file .*config.toml \(profiles: a, b\)"):  # fmt: skip
        choose_profile(config, Given("c", Origin(From.FLAG, "--profile")))
    none = load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"there is no config file at .*missing\.toml"):
        choose_profile(none, Given("c", Origin(From.ENV, "AIVOCO_PROFILE")))
    assert choose_profile(config, Given(None), fallback="a")[0] == "a"  # a scenario's profile
    assert choose_profile(config, Given("b", Origin(From.FLAG)), fallback="a")[0] == "b"


def test_key_lines_follow_tables_dotted_and_quoted_keys() -> None:
    text = '[a]\nx = 1\n"q.k" = 2\n[b . "c d"]\ny.z = """\nw = 3\n"""\nv = 4 # c\n'
    assert key_lines(text) == {
        ("a",): 1,
        ("a", "x"): 2,
        ("a", "q.k"): 3,
        ("b", "c d"): 4,
        ("b", "c d", "y", "z"): 5,
        ("b", "c d", "v"): 8,
    }


# -- the precedence matrix ------------------------------------------------------------------
LEVELS = ("flag", "env", "profile", "defaults")


@pytest.mark.parametrize("present", list(itertools.product([False, True], repeat=4)))
def test_precedence_matrix_for_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, present: tuple[bool, ...]
) -> None:
    """Every combination of the four sources for `--url` (sts): the highest present wins."""
    flag, env, profile, defaults = present
    monkeypatch.delenv("AIVOCO_STS_URL", raising=False)
    text = ""
    if defaults:
        text += '[defaults]\nsts_url = "ws://defaults"\n'
    text += "[profile.p]\nchunk_ms = 30\n" + ('sts_url = "ws://profile"\n' if profile else "")
    given = {}
    if flag:
        given["url"] = Given("ws://flag", Origin(From.FLAG, "--url"))
    elif env:  # as Click reports a value it read from the variable
        given["url"] = Given("ws://env", Origin(From.ENV, "AIVOCO_STS_URL"))
    value, origin = run(text, tmp_path, given, profile="p")["url"]
    winner = next((lvl for lvl, on in zip(LEVELS, present, strict=True) if on), "built-in")
    assert origin.source.value == winner
    assert value == (None if winner == "built-in" else f"ws://{winner}")


@pytest.mark.parametrize("present", list(itertools.product([False, True], repeat=3)))
def test_precedence_matrix_without_click(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, present: tuple[bool, ...]
) -> None:
    """A caller that did not read the variable (a command whose --url declares none):
    the protocol's variable still ranks above the file."""
    env, profile, defaults = present
    monkeypatch.delenv("AIVOCO_STS_URL", raising=False)
    if env:
        monkeypatch.setenv("AIVOCO_STS_URL", "ws://env")
    text = ('[defaults]\nsts_url = "ws://defaults"\n' if defaults else "") + (
        '[profile.p]\nsts_url = "ws://profile"\n' if profile else "[profile.p]\n"
    )
    config = load_config(write(tmp_path, text))
    undeclared = [("url", None, OptionInfo("--url", "no envvar declared"))]
    out = resolve(config, undeclared, protocol=STS, given={}, profile="p")
    value, origin = out.values["url"], out.origins["url"]
    winner = next((lvl for lvl, on in zip(LEVELS[1:], present, strict=True) if on), "built-in")
    assert origin.source.value == winner
    assert value == (None if winner == "built-in" else f"ws://{winner}")
    options = CallOptions(protocol=STS, url=value)
    assert options.resolved_url() == (STS_DEFAULT_URL if value is None else value)


def test_profile_over_defaults_over_built_in_per_option(tmp_path: Path) -> None:
    text = """
    [defaults]
    voice = "male"
    chunk_ms = 40
    idle_timeout = 5

    [profile.p]
    voice = "Girl"
    """
    got = run(text, tmp_path, {"idle_timeout_s": Given(1.0, Origin(From.FLAG, "--idle-timeout"))},
              profile="p")  # fmt: skip
    assert got["voice"] == ("Girl", Origin(From.PROFILE, "p, line 8"))
    assert got["chunk_ms"] == (40, Origin(From.DEFAULTS, "line 4"))
    assert got["idle_timeout_s"] == (1.0, Origin(From.FLAG, "--idle-timeout"))
    assert got["connect_timeout_s"][1].source is From.BUILTIN
    # Without the profile, [defaults] alone applies.
    assert run(text, tmp_path)["voice"] == ("male", Origin(From.DEFAULTS, "line 3"))


def test_options_of_another_command_are_fine_and_ignored(tmp_path: Path) -> None:
    text = '[defaults]\nagent = "a-1"\nvoice = "male"\n'
    assert "agent" not in run(text, tmp_path, command="sts")
    call = run(text, tmp_path, command="call")
    assert call["agent"][0] == "a-1" and "voice" not in call


# -- the key: key_env, a key in the file, and the permission check ----------------------------
def test_key_precedence_and_key_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIVOCO_API_KEY", raising=False)
    monkeypatch.setenv("STAGING_KEY", "from-var")
    text = '[defaults]\nkey = "from-defaults"\n[profile.s]\nkey_env = "STAGING_KEY"\n'
    assert run(text, tmp_path, profile="s")["key"] == (
        "from-var",
        Origin(From.PROFILE, "s, line 4: $STAGING_KEY"),
    )
    assert run(text, tmp_path)["key"] == ("from-defaults", Origin(From.DEFAULTS, "line 2"))
    monkeypatch.setenv("AIVOCO_API_KEY", "from-env")
    assert run(text, tmp_path, profile="s")["key"] == (
        "from-env",
        Origin(From.ENV, "AIVOCO_API_KEY"),
    )
    flag = {"key": Given("from-flag", Origin(From.FLAG, "--key"))}
    assert run(text, tmp_path, flag, profile="s")["key"][0] == "from-flag"


def test_an_unset_key_env_is_noted_and_the_next_layer_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIVOCO_API_KEY", raising=False)
    monkeypatch.delenv("UNSET_KEY", raising=False)
    config = load_config(write(tmp_path, '[profile.s]\nkey_env = "UNSET_KEY"\n'))
    out = resolve(config, cli_fields("sts"), protocol=STS, given={}, profile="s")
    assert out.values["key"] is None
    assert out.notes == ["$UNSET_KEY (key_env of profile s) is not set"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_key_in_a_file_others_can_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    monkeypatch.delenv("AIVOCO_API_KEY", raising=False)
    text = '[defaults]\nkey_env = "FALLBACK"\n[profile.p]\nkey = "in-file"\n'
    config = load_config(write(tmp_path, text, mode))
    assert config.shared
    out = resolve(config, cli_fields("sts"), protocol=STS, given={}, profile="p")
    assert out.values["key"] is None
    assert out.warnings == [
        f"not using the key stored in the config file: {config.path} is readable by others "
        f"(run `chmod 600 {config.path}`, or use key_env to read the key from a variable)"
    ]
    assert out.notes[0].startswith("the key of profile p was refused: ")
    # Another source still works: the next layer's variable.
    monkeypatch.setenv("FALLBACK", "from-var")
    out = resolve(config, cli_fields("sts"), protocol=STS, given={}, profile="p")
    assert out.values["key"] == "from-var"
    # The same file, private: its key is used, without a warning.
    config.path.chmod(0o600)
    private = load_config(config.path)
    out = resolve(private, cli_fields("sts"), protocol=STS, given={}, profile="p")
    assert (out.values["key"], out.warnings) == ("in-file", [])
