"""Scenario files: the documented format parses; every kind of mistake is a problem with
its file, line and key, and all problems of all files come out at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from clirun import write_tone

from aivoco.scenario._yaml import ScenarioFileError
from aivoco.scenario.model import TurnKind
from aivoco.scenario.parse import load_scenarios
from aivoco.wire.driver import ProtocolName

FUNCTIONS = Path(__file__).parent / "fixtures" / "functions" / "weather_tools.py"

ISSUE_EXAMPLE = """\
name: weather agent smoke test
protocol: sts                 # sts | call
voice: female
system: "Be brief."
functions: tools.py
timeout: 60                   # whole scenario, seconds
turns:
  - say: "What's the weather in Paris?"   # spoken by a local TTS (see below)
    expect:
      reply_within: 2.5
      reply_seconds: [0.5, 20]
      text_contains: [Paris]
      text_matches: "(sun|rain|cloud)"
      function_called: {name: get_weather, arguments: {city: Paris}}
  - play: question.wav
    expect: {reply_within: 3}
  - silence: 2.0
  - say: "Thanks, bye."
    expect: {no_reply: true}
end:
  credits_used_max: 0.5
  protocol_errors_max: 0
  underruns_max: 0
"""


def write(folder: Path, text: str, name: str = "s.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(*paths: Path) -> list[str]:
    with pytest.raises(ScenarioFileError) as info:
        load_scenarios(list(paths))
    return [str(p) for p in info.value.problems]


def test_the_issue_example_parses_into_typed_values(tmp_path: Path) -> None:
    write_tone(tmp_path / "question.wav", 440, 16000, 0.5)
    (tmp_path / "tools.py").write_text(FUNCTIONS.read_text())
    [s] = load_scenarios([write(tmp_path, ISSUE_EXAMPLE)])
    assert s.name == "weather agent smoke test"
    assert s.protocol is ProtocolName.STS
    assert (s.voice, s.system, s.timeout_s) == ("female", "Be brief.", 60.0)
    assert s.functions == tmp_path / "tools.py"
    assert [t.kind for t in s.turns] == [
        TurnKind.SAY,
        TurnKind.PLAY,
        TurnKind.SILENCE,
        TurnKind.SAY,
    ]
    first = s.turns[0]
    assert first.line == 8
    assert first.expect.reply_within_s == 2.5
    assert first.expect.reply_seconds == (0.5, 20.0)
    assert first.expect.text_contains == ("Paris",)
    assert first.expect.text_matches is not None
    assert first.expect.text_matches.search("SUNNY")  # case-insensitive
    assert first.expect.function_called is not None
    assert first.expect.function_called.arguments == {"city": "Paris"}
    assert s.turns[1].path == tmp_path / "question.wav"
    assert s.turns[2].seconds == 2.0
    assert s.turns[3].expect.no_reply
    assert (s.turns[3].reply_quiet_s, s.turns[3].reply_timeout_s) == (1.0, 10.0)
    assert s.end.credits_used_max == 0.5
    assert s.end.protocol_errors_max == 0 and s.end.underruns_max == 0


def test_defaults_and_per_turn_timing(tmp_path: Path) -> None:
    [s] = load_scenarios(
        [
            write(
                tmp_path,
                """\
                protocol: call
                agent: a1
                reply_quiet: 0.5
                reply_timeout: 4
                turns:
                  - say: hi
                    wait: 2
                  - say: again
                    reply_quiet: 2
                """,
            )
        ]
    )
    assert s.name == "s" and s.agent == "a1" and s.timeout_s == 60.0
    assert s.turns[0].wait_s == 2.0 and s.turns[0].reply_quiet_s == 0.5
    assert s.turns[1].reply_quiet_s == 2.0 and s.turns[1].reply_timeout_s == 4.0


def test_the_command_line_may_name_the_agent(tmp_path: Path) -> None:
    [s] = load_scenarios(
        [write(tmp_path, "protocol: call\nturns: [{say: hi}]\n")], agent_given=True
    )
    assert s.agent is None


def test_system_from_a_file_relative_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "prompt.txt").write_text("Be very brief.\n")
    [s] = load_scenarios([write(tmp_path, 'system: "@prompt.txt"\nturns: [{say: hi}]\n')])
    assert s.system == "Be very brief."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "nmae: x\nturns: [{say: hi}]\n",
            "s.yaml:1: nmae: unknown key 'nmae' (did you mean 'name'?)",
        ),
        (
            "turns:\n  - say: hi\n    expect: {reply_witin: 2}\n",
            "s.yaml:3: turns[1].expect.reply_witin: unknown key 'reply_witin' (did you mean "
            "'reply_within'?)",
        ),
        (
            "name: a\nname: b\nturns: [{say: hi}]\n",
            "s.yaml:2: name: repeated key (first on line 1)",
        ),
        (
            "protocol: call\nagent: x\nturns:\n  - say: hi\n    expect: {text_contains: [a]}\n",
            "s.yaml:5: turns[1].expect.text_contains: only for protocol: sts (this is a call)",
        ),
        (
            "protocol: call\nagent: x\nturns:\n  - say: hi\n    expect:\n      text_matches: a\n",
            "s.yaml:6: turns[1].expect.text_matches: only for protocol: sts (this is a call)",
        ),
        (
            "protocol: call\nagent: x\nturns:\n  - say: hi\n    expect: {function_called: f}\n",
            "s.yaml:5: turns[1].expect.function_called: only for protocol: sts (this is a call)",
        ),
        (
            "protocol: call\nvoice: male\nturns: [{say: hi}]\n",
            "s.yaml:2: voice: only for protocol: sts (this is a call)",
        ),
        (
            "protocol: call\nturns: [{say: hi}]\nend: {credits_used_max: 1}\n",
            "s.yaml:3: end.credits_used_max: only for protocol: sts (this is a call)",
        ),
        (
            "agent: x\nturns: [{say: hi}]\n",
            "s.yaml:1: agent: only for protocol: call (this is sts)",
        ),
        (
            "protocol: call\nturns: [{say: hi}]\n",
            "s.yaml:1: agent: missing: the agent to call (or pass --agent ID)",
        ),
        (
            "protocol: sip\nturns: [{say: hi}]\n",
            "s.yaml:1: protocol: expected sts or call, got 'sip'",
        ),
        (
            "turns:\n  - play: missing.wav\n",
            "s.yaml:2: turns[1].play: audio file not found: {dir}/missing.wav",
        ),
        (
            "turns:\n  - say: hi\n    expect:\n      text_matches: '(sun'\n",
            "s.yaml:4: turns[1].expect.text_matches: not a valid regular expression: missing ), "
            "unterminated subpattern at position 0",
        ),
        (
            "timeout: soon\nturns: [{say: hi}]\n",
            "s.yaml:1: timeout: expected a number of seconds > 0, got 'soon'",
        ),
        (
            "timeout: -1\nturns: [{say: hi}]\n",
            "s.yaml:1: timeout: expected a number of seconds > 0, got '-1'",
        ),
        ("name: x\n", "s.yaml:1: turns: missing: a scenario needs at least one turn"),
        ("turns: []\n", "s.yaml:1: turns: expected a list of at least one turn"),
        (
            "turns:\n  - say: hi\n    play: a.wav\n",
            "s.yaml:2: turns[1]: needs exactly one of say, play, silence (found say, play)",
        ),
        (
            "turns:\n  - expect: {no_reply: true}\n",
            "s.yaml:2: turns[1]: needs exactly one of say, play, silence (found none)",
        ),
        (
            "turns:\n  - say: hi\n    expect: {no_reply: true, reply_within: 2}\n",
            "s.yaml:3: turns[1].expect.reply_within: contradicts no_reply",
        ),
        (
            "turns:\n  - say: hi\n    expect: {reply_seconds: [5, 1]}\n",
            "s.yaml:3: turns[1].expect.reply_seconds: expected [min, max] seconds, "
            "0 <= min <= max, got a list",
        ),
        (
            "turns:\n  - say: hi\n    expect:\n      function_called: {arguments: {a: 1}}\n",
            "s.yaml:4: turns[1].expect.function_called.name: missing: the function's name",
        ),
        (
            "turns:\n  - silence: 1\n    wait: 2\n",
            "s.yaml:3: turns[1].wait: a silence turn lasts its seconds",
        ),
        ("turns:\n  - say: ''\n", "s.yaml:2: turns[1].say: expected the text to speak, got ''"),
        (
            'tts: "piper --model x"\nturns: [{say: hi}]\n',
            "s.yaml:1: tts: the command must contain {wav} (the file it writes)",
        ),
        (
            "functions: nope.py\nturns: [{say: hi}]\n",
            "s.yaml:1: functions: file not found: {dir}/nope.py",
        ),
        (
            "system: '@nope.txt'\nturns: [{say: hi}]\n",
            "s.yaml:1: system: cannot read {dir}/nope.txt: No such file or directory",
        ),
        (
            "turns:\n  - say: hi\n    expect: [1]\n",
            "s.yaml:3: turns[1].expect: expected a mapping, got a list",
        ),
        (
            "end: {underruns_max: 1.5}\nturns: [{say: hi}]\n",
            "s.yaml:1: end.underruns_max: expected a whole number >= 0, got '1.5'",
        ),
        (
            "allow_reconnect: maybe\nturns: [{say: hi}]\n",
            "s.yaml:1: allow_reconnect: expected true or false, got 'maybe'",
        ),
        ("turns:\n  - say: hi\n  bad indent: [\n", "s.yaml:3: not valid YAML"),
        ("", "s.yaml: the file is empty"),
        ("- a\n- b\n", "s.yaml:1: expected a mapping, got a list"),
    ],
)
def test_each_rule_is_a_problem_with_file_line_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    found = problems_of(path)
    want = str(tmp_path / expected.replace("{dir}", str(tmp_path)))
    assert any(p.startswith(want) for p in found), found


def test_a_functions_file_that_does_not_load_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def f(:\n")
    found = problems_of(write(tmp_path, "functions: broken.py\nturns: [{say: hi}]\n"))
    assert len(found) == 1 and found[0].startswith(f"{tmp_path}/s.yaml:1: functions: ")


def test_an_audio_file_that_does_not_decode_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "noise.wav").write_bytes(b"RIFF not really a wav")
    found = problems_of(write(tmp_path, "turns:\n  - play: noise.wav\n"))
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path}/s.yaml:2: turns[1].play: cannot read audio file")


def test_all_problems_of_all_files_at_once(tmp_path: Path) -> None:
    a = write(
        tmp_path,
        """\
        protocol: call
        agent: x
        colour: red
        turns:
          - say: hi
            expect: {text_contains: [a], reply_within: fast}
          - play: gone.wav
        """,
        "a.yaml",
    )
    b = write(tmp_path, "turns:\n  - say: hi\n    expect: {text_matches: '['}\n", "b.yaml")
    missing = tmp_path / "c.yaml"
    with pytest.raises(ScenarioFileError) as info:
        load_scenarios([a, b, missing])
    found = [str(p) for p in info.value.problems]
    assert [p.split(": ")[0] for p in found] == [
        f"{a}:3",
        f"{a}:6",
        f"{a}:6",
        f"{a}:7",
        f"{b}:3",
        str(missing),
    ]
    message = str(info.value)
    assert message.startswith("6 problems in the scenario files, nothing was run:")
    assert all(p in message for p in found)


def test_yaml_tags_that_would_run_code_are_refused(tmp_path: Path) -> None:
    found = problems_of(
        write(tmp_path, "name: !!python/object/apply:os.system ['true']\nturns: [{say: hi}]\n")
    )
    assert "not valid YAML" in found[0] or "could not determine a constructor" in found[0]
