"""Fuzz both codecs: any input must give an event (or a log line), or `ProtocolError`.

For each protocol, N random inputs (default 100,000) go through the parser
(`decode`) and the log summariser (`describe_incoming`). The inputs mix well-formed
messages of every event the reference lists with hostile ones: nesting thousands of
levels deep, integers of hundreds or thousands of digits, non-finite and numeric-string
numbers, lone surrogates and control characters, wrong types in every field, several
arguments, truncated and bit-flipped frames, invalid UTF-8. Anything other than an
event from `decode`, a `str` from `describe_incoming`, or a `ProtocolError` is counted
by exception type, with one example each.

    python bench/fuzz_codecs.py                 # 100,000 inputs per parser, seed 1
    python bench/fuzz_codecs.py -n 1000 --seed 7

Exit status 1 if anything else was raised. A short run of the same generator is in the
test suite (tests/test_codec_totality.py); the figures of the long run are quoted in the
issue's closing note.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import reprlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aivoco.errors import ProtocolError
from aivoco.protocols import call_codec, sts_codec
from aivoco.wire import events as ev

STS_EVENTS = [*sts_codec.SERVER_EVENTS, "*", "", "unknown_event", "disconnect"]
STS_FIELDS = [
    "audio_data", "text", "message", "credits", "credits_available", "cost_per_minute",
    "functions_loaded", "reason", "total_credits_used", "remaining_credits",
    "function_name", "call_id", "arguments", "result", "error", "type",
    "admin_units_deducted", "remaining_admin_units",
]  # fmt: skip
CALL_EVENTS = ["media", "mark", "clear", "stop", "connected", "start", "", "other"]
NASTY_TEXT = [
    "\x1b[2J\x1b]0;pwned\x07", "\ud800", "a\udcffb", "\x00\r\n\t", "\u202e", "1e999",
    "NaN", "-Infinity", " 12 ", "0x10", "9" * 400, "AAAA", "AA=A", "é", "",
]  # fmt: skip


class Gen:
    """Random JSON-like values, hostile ones included."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    def deep(self) -> Any:
        depth = self.r.choice([50, 200, 600, 1200, 5000])
        value: Any = self.scalar()
        for _ in range(depth):
            value = [value] if self.r.random() < 0.5 else {"k": value}
        return value

    def big_int(self) -> int:
        digits = self.r.choice([20, 309, 401, 1000, 4000])
        return self.r.choice([1, -1]) * int("9" * digits)

    def scalar(self) -> Any:
        r = self.r
        pick = r.randrange(12)
        if pick == 0:
            return None
        if pick == 1:
            return r.choice([True, False])
        if pick == 2:
            return r.randint(-(2**40), 2**40)
        if pick == 3:
            return self.big_int()
        if pick == 4:
            return r.choice([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 0.5])
        if pick == 5:
            return r.choice(NASTY_TEXT)
        if pick == 6:
            return base64.b64encode(r.randbytes(r.randrange(0, 64))).decode()
        if pick == 7:
            return r.randbytes(r.randrange(0, 16))
        return "".join(chr(r.randrange(0, 0x11000)) for _ in range(r.randrange(0, 12)))

    def value(self, depth: int = 0) -> Any:
        r = self.r
        roll = r.random()
        if roll < 0.03:
            return self.deep()
        if depth > 3 or roll < 0.55:
            return self.scalar()
        if roll < 0.75:
            return [self.value(depth + 1) for _ in range(r.randrange(0, 4))]
        return {self.key(): self.value(depth + 1) for _ in range(r.randrange(0, 4))}

    def key(self) -> str:
        return self.r.choice(STS_FIELDS) if self.r.random() < 0.8 else self.r.choice(NASTY_TEXT)

    def payload(self) -> dict[str, Any]:
        return {self.key(): self.value() for _ in range(self.r.randrange(0, 6))}


def jsonable(value: Any) -> Any:
    """Bytes are not JSON: keep them out of text frames (they are tried raw elsewhere)."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def dumps(value: Any) -> str:
    try:
        return json.dumps(jsonable(value))
    except (ValueError, RecursionError):  # a huge int or a deep value: written by hand
        return "[" * 3000 + "]" * 3000


def audio_b64(g: Gen) -> str:
    return base64.b64encode(g.r.randbytes(2 * g.r.randrange(1, 240))).decode()


def sts_valid(g: Gen) -> tuple[str, tuple[Any, ...]]:
    """A well-formed event, with now and then one field replaced by a hostile value."""
    r = g.r
    templates: list[tuple[str, dict[str, Any]]] = [
        ("audio_response", {"audio_data": audio_b64(g)}),
        ("text_response", {"text": r.choice(NASTY_TEXT)}),
        ("session_ready", {"message": "ok", "credits_available": 10, "cost_per_minute": 1,
                           "functions_loaded": 2}),
        ("session_ended", {"reason": "stopped_by_user", "total_credits_used": 0.5,
                           "remaining_credits": 9.5}),
        ("function_called", {"function_name": "f", "call_id": "c1", "arguments": {"a": 1}}),
        ("error", {"message": "bad", "type": "insufficient_user_credits"}),
        ("auth_success", {"credits": 5}),
    ]  # fmt: skip
    event, payload = r.choice(templates)
    if r.random() < 0.5:
        payload[r.choice([*payload, g.key()])] = g.value()
    return event, (payload,)


def sts_input(g: Gen) -> tuple[Any, tuple[Any, ...]]:
    r = g.r
    if r.random() < 0.3:
        return sts_valid(g)
    event: Any = r.choice(STS_EVENTS) if r.random() < 0.97 else g.scalar()
    n_args = r.choices([0, 1, 2, 3], [5, 85, 7, 3])[0]
    args: list[Any] = []
    for _ in range(n_args):
        roll = r.random()
        if roll < 0.6:
            args.append(g.payload())
        elif roll < 0.75:
            args.append(dumps(g.payload()))
        else:
            args.append(g.value())
    return event, tuple(args)


def call_valid(g: Gen) -> dict[str, Any]:
    r = g.r
    message: dict[str, Any] = r.choice([
        {"event": "media", "media": {"payload": audio_b64(g), "chunk": 3, "timestamp": "60"}},
        {"event": "mark", "mark": {"name": r.choice(NASTY_TEXT) or "m"}},
        {"event": "clear"},
        {"event": "stop"},
        {"event": "connected", "protocol": "Call", "version": "1.0.0"},
    ])  # fmt: skip
    if r.random() < 0.5:
        inner = message.get("media") or message.get("mark") or message
        inner[r.choice([*inner, "chunk", "timestamp", "streamSid"])] = g.value()
    return message


def call_input(g: Gen) -> str | bytes:
    r = g.r
    if r.random() < 0.3:
        text = dumps(call_valid(g))
        return text.encode() if r.random() < 0.1 else text
    message: dict[str, Any] = {"event": r.choice(CALL_EVENTS) if r.random() < 0.9 else g.value()}
    for _ in range(r.randrange(0, 4)):
        message[r.choice(["media", "mark", "payload", "name", "chunk", "timestamp"])] = g.value()
    if r.random() < 0.3:
        message["media"] = {"payload": g.scalar(), "chunk": g.scalar(), "timestamp": g.scalar()}
    text = dumps(message)
    roll = r.random()
    if roll < 0.08:
        text = text[: r.randrange(0, len(text) + 1)]
    elif roll < 0.12:
        text = r.choice(["[", '{"a":']) * r.choice([100, 900, 5000]) + "1"
    elif roll < 0.16:
        text = '{"event":"media","media":{"chunk":' + "7" * r.choice([401, 4400]) + "}}"
    elif roll < 0.2:
        text = r.choice(NASTY_TEXT)
    if r.random() < 0.25:
        data = bytearray(text.encode("utf-8", "surrogatepass"))
        for _ in range(r.randrange(0, 3)):
            if data:
                data[r.randrange(len(data))] = r.randrange(256)
        return bytes(data)
    return text


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 4, 80, 80


def short(raw: Any) -> str:
    try:
        return _SHORT.repr(raw)[:120]
    except Exception as exc:  # a huge int's repr raises ValueError
        return f"<unprintable: {type(exc).__name__}>"


@dataclass(frozen=True)
class Target:
    name: str
    make: Callable[[Gen], Any]
    parse: Callable[[Any], Any]
    describe: Callable[[Any], Any]


TARGETS = (
    Target("sts", sts_input, lambda raw: sts_codec.decode(*raw),
           lambda raw: sts_codec.describe_incoming(*raw)),
    Target("call", call_input, call_codec.decode, call_codec.describe),
)  # fmt: skip


def run(target: Target, n: int, seed: int) -> Counter[str]:
    g = Gen(random.Random(seed))
    bad: Counter[str] = Counter()
    examples: dict[str, str] = {}
    outcomes: Counter[str] = Counter()
    t0 = time.perf_counter()
    for _ in range(n):
        raw = target.make(g)
        checks: tuple[tuple[str, Callable[[Any], Any], Any], ...] = (
            ("decode", target.parse, ev.Event),
            ("describe", target.describe, str),
        )
        for label, fn, want in checks:
            try:
                got = fn(raw)
            except ProtocolError:
                outcomes[f"{label}: ProtocolError"] += 1
                continue
            except Exception as exc:
                kind = f"{label}: {type(exc).__name__}"
                bad[kind] += 1
                examples.setdefault(kind, f"{exc!s:.100} <- {short(raw)}")
                continue
            if not isinstance(got, want):
                kind = f"{label}: returned {type(got).__name__}"
                bad[kind] += 1
                examples.setdefault(kind, short(raw))
            else:
                outcomes[f"{label}: {type(got).__name__}"] += 1
    took = time.perf_counter() - t0
    total = sum(bad.values())
    print(f"{target.name}: {n} inputs, {total} exceptions other than ProtocolError ({took:.1f} s)")
    for kind, count in sorted(outcomes.items()):
        print(f"    ok   {count:7d}  {kind}")
    for kind, count in bad.most_common():
        print(f"    BAD  {count:7d}  {kind}: {examples[kind]}")
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", type=int, default=100_000, help="inputs per parser")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    results: list[Counter[str]] = []

    def work() -> None:
        # The drivers decode on their own threads: fuzz on one too (smaller stack).
        results.extend(run(target, args.n, args.seed) for target in TARGETS)

    t = threading.Thread(target=work, name="fuzz")
    t.start()
    t.join()
    return 1 if any(sum(r.values()) for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
