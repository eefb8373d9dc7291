"""Both codecs are total: any input gives an event (a log line) or `ProtocolError`.

Property-based with hypothesis over JSON-like values, text and bytes, hostile shapes
included (deep nesting, huge integers, lone surrogates); then the cases that used to
kill a reader thread, one by one; then a short run of the long fuzzer
(`bench/fuzz_codecs.py`, 100,000 inputs per parser there).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aivoco.errors import ProtocolError
from aivoco.protocols import _bounds, call_codec, sts_codec
from aivoco.protocols._summary import snippet, summarize
from aivoco.wire import events as ev

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**1200),
    st.floats(),
    st.text(),
    st.binary(max_size=32),
    st.sampled_from(["\ud800", "\x1b[2J", "9" * 400, "1e999", "NaN", " 3 "]),
)
FIELDS = sorted({"audio_data", "text", "message", "credits", "cost_per_minute", "reason",
                 "credits_available", "functions_loaded", "total_credits_used", "call_id",
                 "function_name", "arguments", "error", "type", "media", "mark", "event",
                 "payload", "name", "chunk", "remaining_credits"})  # fmt: skip
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=8))


def nest(depth: int, inner: Any, as_list: bool) -> Any:
    for _ in range(depth):
        inner = [inner] if as_list else {"k": inner}
    return inner


deep = st.builds(nest, st.integers(0, 3000), scalars, st.booleans())
values = st.recursive(
    st.one_of(scalars, deep),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)
payloads = st.dictionaries(keys, values, max_size=6)


def as_json(value: Any) -> str:
    try:
        return json.dumps(value, default=lambda b: b.hex())
    except (ValueError, RecursionError):  # too deep or too long for the encoder
        return "[" * 2000 + "]" * 2000


def check_decode(fn: Any, *args: Any) -> None:
    try:
        got = fn(*args)
    except ProtocolError:
        return
    assert isinstance(got, ev.Event)


def check_describe(fn: Any, *args: Any) -> None:
    line = fn(*args)
    assert isinstance(line, str) and len(line) < 4000


sts_events = st.one_of(
    st.sampled_from([*sts_codec.SERVER_EVENTS, "*", "unknown"]), st.text(max_size=10), scalars
)
sts_args = st.lists(st.one_of(payloads, payloads.map(as_json), values, st.text()), max_size=3).map(
    tuple
)


@SETTINGS
@given(sts_events, sts_args)
def test_sts_decode_and_describe_are_total(event: Any, args: tuple[Any, ...]) -> None:
    check_decode(sts_codec.decode, event, args)
    check_describe(sts_codec.describe_incoming, event, args)


call_messages = st.fixed_dictionaries(
    {"event": st.one_of(st.sampled_from(["media", "mark", "clear", "stop", "connected"]), values)},
    optional={"media": st.one_of(payloads, values), "mark": st.one_of(payloads, values)},
)
call_frames = st.one_of(
    call_messages.map(as_json),
    call_messages.map(lambda m: as_json(m).encode()),
    st.text(),
    st.binary(),
    st.builds(lambda n, c: c * n, st.integers(0, 5000), st.sampled_from(["[", "{", '{"a":'])),
)


@SETTINGS
@given(call_frames)
def test_call_decode_and_describe_are_total(frame: str | bytes) -> None:
    check_decode(call_codec.decode, frame)
    check_describe(call_codec.describe, frame)


@SETTINGS
@given(values)
def test_summaries_and_snippets_are_total_and_short(value: Any) -> None:
    assert len(summarize(value)) < 4000
    assert len(snippet(value)) <= 80


# -- the inputs that used to kill the reader thread, one by one -------------------------------
def audio() -> str:
    return base64.b64encode(bytes(160)).decode()


def in_a_thread(fn: Any) -> Any:
    """Decode on a fresh thread, as the drivers do (its stack starts empty)."""
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    assert out, "the decoding thread died"
    return out[0]


def test_a_401_digit_chunk_still_plays() -> None:
    frame = json.dumps({"event": "media", "media": {"payload": audio()}})
    frame = frame.replace('"media": {', '"media": {"chunk": ' + "4" * 401 + ", ")
    event = in_a_thread(lambda: call_codec.decode(frame))
    assert isinstance(event, ev.AgentAudio) and event.chunk.frames == 160


@pytest.mark.parametrize("depth", [33, 600, 5000])
def test_deep_nesting_is_a_protocol_error_before_the_recursion_limit(depth: int) -> None:
    text = "[" * depth + "]" * depth
    with pytest.raises(ProtocolError, match="nests deeper than 32 levels"):
        call_codec.decode('{"event": "x", "a": ' + text + "}")
    with pytest.raises(ProtocolError, match="nests deeper"):
        sts_codec.decode("text_response", (text,))
    with pytest.raises(ProtocolError, match="nests deeper"):
        sts_codec.decode("text_response", (nest(depth, 1, as_list=False),))
    assert "…" in call_codec.describe('{"event": "x", "a": ' + "[" * 30 + "]" * 30 + "}")
    assert "nests deeper" in call_codec.describe(text)
    assert sts_codec.describe_incoming("x", (nest(depth, 1, as_list=True),)).startswith("x [[[[")


def test_nesting_up_to_the_limit_is_decoded() -> None:
    arguments = nest(_bounds.MAX_DEPTH - 2, 1, as_list=False)
    event = sts_codec.decode(
        "function_called", ({"function_name": "f", "call_id": "1", "arguments": arguments},)
    )
    assert isinstance(event, ev.FunctionCall) and event.arguments == arguments


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = "[" * 500 + '\\" ]]'
    event = call_codec.decode(json.dumps({"event": "mark", "mark": {"name": text}}))
    assert event == ev.PlaybackMark(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10**400, None),  # used to raise OverflowError
        ("9" * 400, None),
        (-(10**16), None),
        ("1e999", None),
        (float("nan"), None),
        (True, None),
        (" 12.5 ", 12.5),
        (7, 7.0),
    ],
)
def test_numbers_are_finite_and_sane(value: Any, expected: float | None) -> None:
    assert _bounds.number(value) == expected


def test_absurd_and_negative_credit_figures_are_dropped() -> None:
    ready = sts_codec.decode(
        "session_ready",
        ({"credits_available": 10**400, "cost_per_minute": -1, "functions_loaded": -3},),
    )
    assert ready == ev.Ready(None, None, None, None)
    ended = sts_codec.decode(
        "session_ended", ({"reason": "x", "total_credits_used": -5, "remaining_credits": -2},)
    )
    assert isinstance(ended, ev.Ended)
    assert ended.total_credits_used is None and ended.remaining_credits == -2  # a debt is real


def test_huge_values_in_summaries_are_described_not_printed() -> None:
    line = sts_codec.describe_incoming("error", ({"message": 10**5000},))
    assert "<integer of ~5001 digits>" in line
    assert sts_codec.decode("error", ({"message": 10**5000},)).error  # type: ignore[union-attr]


def test_unknown_event_names_are_clipped() -> None:
    event = sts_codec.decode("x" * 10_000, ({},))
    assert isinstance(event, ev.UnknownEvent) and len(event.name) == 80


def test_a_short_run_of_the_long_fuzzer_finds_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz_codecs.py"), "-n", "3000", "--seed", "11"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3000 inputs, 0 exceptions other than ProtocolError" in done.stdout
