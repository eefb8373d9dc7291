"""Short, bounded renderings of values for messages: peers can send megabytes.

Error messages quote at most `SNIPPET_LIMIT` characters of an offending value, so a
hostile or broken peer cannot flood a terminal or a log through one error.
"""

from __future__ import annotations

from typing import Any

SNIPPET_LIMIT = 80


def snippet(value: Any, limit: int = SNIPPET_LIMIT) -> str:
    """A repr of `value` cut to about `limit` characters (slicing strings before repr)."""
    sliceable = isinstance(value, (str, bytes, bytearray))
    text = repr(value[: limit + 1]) if sliceable else repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def clip(text: str, limit: int = SNIPPET_LIMIT) -> str:
    """Plain text cut to `limit` characters (for messages that are already readable)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# -- text from the network, on its way to a sink ------------------------------------------
# Control characters a peer could use to drive the user's terminal (ESC sequences, BEL,
# backspace, carriage return over a line, NUL), C1 controls, and the bidirectional
# overrides that reorder what is shown (CVE-2021-42574 style). Newline and tab are kept
# apart: callers that print one line per record replace them too.
_C0 = {c: f"\\x{c:02x}" for c in range(0x20) if c not in (0x09, 0x0A)}
_C1 = {c: f"\\x{c:02x}" for c in range(0x7F, 0xA0)}
_BIDI = {c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_TERMINAL = {**_C0, **_C1, **_BIDI}
_ONE_LINE = {**_TERMINAL, 0x09: "\\t", 0x0A: "\\n"}


def terminal_safe(text: str, one_line: bool = True) -> str:
    """`text` with every control character shown as a visible escape (`\\x1b`), lone
    surrogates as `\\udcxx`: what a peer sent can be read but never drive the terminal."""
    shown = text.translate(_ONE_LINE if one_line else _TERMINAL)
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in shown):
        shown = "".join(f"\\u{ord(ch):04x}" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in shown)
    return shown


def utf8_line(text: str) -> bytes:
    """A JSON line as UTF-8 bytes. A lone surrogate (only possible inside a JSON string)
    becomes its own JSON escape `\\udcxx`, so the line stays valid UTF-8 and valid JSON
    and the peer's text survives exactly."""
    return text.encode("utf-8", "backslashreplace")


def output_step_rose(step_ms: Any, previous_ms: Any) -> bool:
    """An `output_step` record that moved the speaker up (after an underflow)."""
    return isinstance(step_ms, int) and isinstance(previous_ms, int) and step_ms > previous_ms


def describe_output_step(step_ms: Any, previous_ms: Any, measured_ms: Any) -> str:
    """One line for an `output_step` record (the plain output, the live view, a report of
    a transcript, which may come from anywhere: values that are not numbers are cut)."""

    def ms(value: Any) -> str:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return f"{value:g}" if number else snippet(value, 20)

    figure = f" ({ms(measured_ms)} ms measured)" if measured_ms is not None else ""
    if previous_ms is None:
        return f"speaker: {ms(step_ms)} ms output buffer{figure}"
    why = (
        "after an underflow"
        if output_step_rose(step_ms, previous_ms)
        else "no underflow for a while"
    )
    return f"speaker: output buffer {ms(previous_ms)} -> {ms(step_ms)} ms, {why}{figure}"
