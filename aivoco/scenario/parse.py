"""Scenario files -> checked `Scenario`s, every problem reported at once (exit code 2).

Everything that can be wrong in a file is found here, before any call is made: unknown
or repeated keys, wrong types and ranges, keys the scenario's protocol does not have
(`text_*` in a `call` scenario), files that do not exist or do not decode, regexes that
do not compile, function files that do not load. Each problem names the file, the line
and the key (`_yaml.Problem`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aivoco.errors import AivocoError
from aivoco.scenario import _yaml as y
from aivoco.scenario.model import (
    DEFAULT_REPLY_QUIET_S,
    DEFAULT_REPLY_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    DEFAULT_TTS_VOICE,
    EndChecks,
    Expect,
    FunctionExpect,
    Scenario,
    Turn,
    TurnKind,
)
from aivoco.wire.driver import ProtocolName

TOP_KEYS = frozenset(
    {"name", "protocol", "voice", "system", "functions", "agent", "url", "timeout", "tts",
     "tts_voice", "reply_quiet", "reply_timeout", "allow_reconnect", "turns", "end",
     "profile"}
)  # fmt: skip
TURN_KEYS = frozenset({"say", "play", "silence", "expect", "wait", "reply_quiet", "reply_timeout"})
EXPECT_KEYS = frozenset(
    {"reply_within", "reply_seconds", "text_contains", "text_matches", "function_called",
     "no_reply"}
)  # fmt: skip
END_KEYS = frozenset({"credits_used_max", "protocol_errors_max", "underruns_max"})
FUNCTION_KEYS = frozenset({"name", "arguments"})
STS_ONLY = ("voice", "system", "functions", "text_contains", "text_matches", "function_called",
            "credits_used_max")  # fmt: skip
REPLY_KEYS = ("reply_within", "reply_seconds", "text_contains", "text_matches")
_MAX_SECONDS = 24 * 3600.0


def load_scenarios(paths: list[Path], agent_given: bool = False) -> list[Scenario]:
    """Parse and check every file; raise `ScenarioFileError` listing all problems.

    `agent_given`: the command line names the agent, so call scenarios may omit it."""
    problems: list[y.Problem] = []
    scenarios = []
    for path in paths:
        scenario = _FileParser(path, problems, agent_given).parse()
        if scenario is not None:
            scenarios.append(scenario)
    if problems:
        raise y.ScenarioFileError(problems)
    return scenarios


@dataclass
class _Defaults:
    reply_quiet_s: float = DEFAULT_REPLY_QUIET_S
    reply_timeout_s: float = DEFAULT_REPLY_TIMEOUT_S


class _FileParser:
    def __init__(self, path: Path, problems: list[y.Problem], agent_given: bool = False) -> None:
        self.path = path
        self.agent_given = agent_given
        self.dir = path.parent
        self.r = y.Reader(path, problems)
        self.protocol = ProtocolName.STS
        self.defaults = _Defaults()
        self.start = len(problems)

    @property
    def failed(self) -> bool:
        return len(self.r.problems) > self.start

    def parse(self) -> Scenario | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            self.r.problem(0, "", f"cannot read the scenario file: {reason}")
            return None
        root = self.r.compose(text)
        if root is None:
            if not self.failed:
                self.r.problem(0, "", "the file is empty")
            return None
        top = self.r.mapping(root, "", TOP_KEYS)
        scenario = self._scenario(top, y.line_of(root))
        return None if self.failed else scenario

    # -- the top level -------------------------------------------------------------------
    def _scenario(self, top: dict[str, tuple[int, yaml.Node]], line: int) -> Scenario | None:
        r = self.r
        self.protocol = self._protocol(top)
        self._protocol_keys(top, "")
        get = self._getter(top)
        name = get("name", y.string, "a string") or self.path.stem
        timeout = get("timeout", _positive, "a number of seconds > 0") or DEFAULT_TIMEOUT_S
        quiet = get("reply_quiet", _positive, "a number of seconds > 0")
        wait_max = get("reply_timeout", _positive, "a number of seconds > 0")
        self.defaults = _Defaults(
            quiet or DEFAULT_REPLY_QUIET_S, wait_max or DEFAULT_REPLY_TIMEOUT_S
        )
        tts = get("tts", y.string, "a command template with {wav}")
        if tts is not None and "{wav}" not in tts:
            r.problem(top["tts"][0], "tts", "the command must contain {wav} (the file it writes)")
        system = get("system", y.string, "a string, or @FILE")
        if system is not None and system.startswith("@"):
            system = self._read_text(system[1:], top["system"][0], "system")
        # A profile the scenario names may give the agent: `aivoco test` checks it then.
        given = self.agent_given or "profile" in top
        if self.protocol is ProtocolName.CALL and "agent" not in top and not given:
            r.problem(line, "agent", "missing: the agent to call (or pass --agent ID)")
        if "turns" not in top:
            r.problem(line, "turns", "missing: a scenario needs at least one turn")
            turns: tuple[Turn, ...] = ()
        else:
            turns = self._turns(top["turns"][1])
        return Scenario(
            path=self.path,
            name=name,
            protocol=self.protocol,
            turns=turns,
            voice=get("voice", y.string, "a string"),
            system=system,
            functions=self._functions(top),
            agent=get("agent", y.string, "a string"),
            url=get("url", y.string, "a URL"),
            profile=get("profile", y.string, "the name of a profile in the config file"),
            line=line,
            timeout_s=timeout,
            tts=tts,
            tts_voice=get("tts_voice", y.string, "a voice name") or DEFAULT_TTS_VOICE,
            allow_reconnect=bool(get("allow_reconnect", y.boolean, "true or false")),
            end=self._end(top["end"][1]) if "end" in top else EndChecks(),
        )

    def _getter(self, entries: dict[str, tuple[int, yaml.Node]], prefix: str = "") -> Any:
        def get(key: str, check: Any, expected: str) -> Any:
            if key not in entries:
                return None
            return self.r.typed(entries[key][1], prefix + key, check, expected)

        return get

    def _protocol(self, top: dict[str, tuple[int, yaml.Node]]) -> ProtocolName:
        if "protocol" not in top:
            return ProtocolName.STS
        value = self.r.value(top["protocol"][1]) if _scalar(top["protocol"][1]) else None
        if value is y.INVALID:
            return ProtocolName.STS
        try:
            return ProtocolName(value)
        except ValueError:
            self.r.problem(top["protocol"][0], "protocol", f"expected sts or call, got {value!r}")
            return ProtocolName.STS

    def _protocol_keys(self, entries: dict[str, tuple[int, yaml.Node]], prefix: str) -> None:
        """Keys the protocol does not have: sts-only keys in a call scenario, `agent` in
        an sts one."""
        for key, (line, _) in entries.items():
            if self.protocol is ProtocolName.CALL and key in STS_ONLY:
                self.r.problem(line, prefix + key, "only for protocol: sts (this is a call)")
            if self.protocol is ProtocolName.STS and key == "agent":
                self.r.problem(line, prefix + key, "only for protocol: call (this is sts)")

    def _functions(self, top: dict[str, tuple[int, yaml.Node]]) -> Path | None:
        if "functions" not in top:
            return None
        line, node = top["functions"]
        name = self.r.typed(node, "functions", y.string, "a file path")
        if name is None:
            return None
        path = self.dir / name
        if not path.is_file():
            self.r.problem(line, "functions", f"file not found: {path}")
            return None
        from aivoco.session.functions import load_functions

        try:
            load_functions(path)
        except AivocoError as exc:
            self.r.problem(line, "functions", str(exc))
            return None
        return path

    def _read_text(self, name: str, line: int, key: str) -> str | None:
        path = self.dir / name
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            self.r.problem(line, key, f"cannot read {path}: {reason}")
            return None

    def _end(self, node: yaml.Node) -> EndChecks:
        entries = self.r.mapping(node, "end", END_KEYS)
        self._protocol_keys(entries, "end.")
        get = self._getter(entries, "end.")
        return EndChecks(
            credits_used_max=get("credits_used_max", _not_negative, "a number >= 0"),
            protocol_errors_max=get("protocol_errors_max", _count, "a whole number >= 0"),
            underruns_max=get("underruns_max", _count, "a whole number >= 0"),
        )

    # -- turns -------------------------------------------------------------------------
    def _turns(self, node: yaml.Node) -> tuple[Turn, ...]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.r.problem(y.line_of(node), "turns", "expected a list of at least one turn")
            return ()
        turns = []
        for index, item in enumerate(y.items(node), 1):
            turn = self._turn(index, item)
            if turn is not None:
                turns.append(turn)
        return tuple(turns)

    def _turn(self, index: int, node: yaml.Node) -> Turn | None:
        key = f"turns[{index}]"
        line = y.line_of(node)
        entries = self.r.mapping(node, key, TURN_KEYS)
        kinds = [k for k in TurnKind if k.value in entries]
        if len(kinds) != 1:
            found = ", ".join(k.value for k in kinds) or "none"
            self.r.problem(line, key, f"needs exactly one of say, play, silence (found {found})")
            return None
        kind = kinds[0]
        get = self._getter(entries, key + ".")
        content: dict[str, Any] = {}
        if kind is TurnKind.SAY:
            content["text"] = get("say", _text, "the text to speak")
        elif kind is TurnKind.PLAY:
            content["path"] = self._audio_file(entries["play"], key + ".play")
        else:
            content["seconds"] = get("silence", _positive, "a number of seconds > 0")
        expect = self._expect(entries["expect"][1], key, kind) if "expect" in entries else Expect()
        wait = get("wait", _positive, "a number of seconds > 0")
        if wait is not None and kind is TurnKind.SILENCE:
            self.r.problem(entries["wait"][0], key + ".wait", "a silence turn lasts its seconds")
        return Turn(
            index=index,
            kind=kind,
            line=line,
            expect=expect,
            wait_s=wait,
            reply_quiet_s=get("reply_quiet", _positive, "a number of seconds > 0")
            or self.defaults.reply_quiet_s,
            reply_timeout_s=get("reply_timeout", _positive, "a number of seconds > 0")
            or self.defaults.reply_timeout_s,
            **content,
        )

    def _audio_file(self, entry: tuple[int, yaml.Node], key: str) -> Path | None:
        line, node = entry
        name = self.r.typed(node, key, y.string, "an audio file path")
        if name is None:
            return None
        path = self.dir / name
        from aivoco.audio.files import probe

        try:
            probe(path)
        except AivocoError as exc:
            self.r.problem(line, key, str(exc))
            return None
        return path

    def _expect(self, node: yaml.Node, turn_key: str, kind: TurnKind) -> Expect:
        key = turn_key + ".expect"
        entries = self.r.mapping(node, key, EXPECT_KEYS)
        self._protocol_keys(entries, key + ".")
        get = self._getter(entries, key + ".")
        no_reply = bool(get("no_reply", y.boolean, "true or false"))
        if no_reply:
            for other in REPLY_KEYS:
                if other in entries:
                    self.r.problem(entries[other][0], f"{key}.{other}", "contradicts no_reply")
        within = get("reply_within", _positive, "a number of seconds > 0")
        window = get("reply_seconds", _range, "[min, max] seconds, 0 <= min <= max")
        matches = None
        if "text_matches" in entries:
            matches = self._regex(entries["text_matches"], key + ".text_matches")
        function = None
        if "function_called" in entries:
            function = self._function_expect(entries["function_called"], key + ".function_called")
        return Expect(
            reply_within_s=within,
            reply_seconds=window,
            text_contains=get("text_contains", y.strings, "a string or a list of strings") or (),
            text_matches=matches,
            function_called=function,
            no_reply=no_reply,
        )

    def _regex(self, entry: tuple[int, yaml.Node], key: str) -> re.Pattern[str] | None:
        pattern = self.r.typed(entry[1], key, y.string, "a regular expression")
        if pattern is None:
            return None
        try:
            return re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            self.r.problem(entry[0], key, f"not a valid regular expression: {exc}")
            return None

    def _function_expect(self, entry: tuple[int, yaml.Node], key: str) -> FunctionExpect | None:
        line, node = entry
        if _scalar(node):  # `function_called: get_weather`
            name = self.r.typed(node, key, y.string, "a function name")
            return FunctionExpect(name) if name else None
        entries = self.r.mapping(node, key, FUNCTION_KEYS)
        get = self._getter(entries, key + ".")
        name = get("name", y.string, "a function name")
        if "name" not in entries:
            self.r.problem(line, key + ".name", "missing: the function's name")
        arguments = {}
        if "arguments" in entries:
            value = self.r.value(entries["arguments"][1])
            if value is y.INVALID:
                pass
            elif not isinstance(value, dict):
                self.r.problem(entries["arguments"][0], key + ".arguments", "expected a mapping")
            else:
                arguments = value
        return FunctionExpect(name, arguments) if name else None


def _scalar(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode)


def _positive(value: Any) -> float | None:
    n = y.number(value)
    return n if n is not None and 0 < n <= _MAX_SECONDS else None


def _not_negative(value: Any) -> float | None:
    n = y.number(value)
    return n if n is not None and n >= 0 else None


def _count(value: Any) -> int | None:
    n = y.integer(value)
    return n if n is not None and n >= 0 else None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _range(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, list) or len(value) != 2:
        return None
    low, high = (_not_negative(v) for v in value)
    if low is None or high is None or low > high:
        return None
    return (low, high)
