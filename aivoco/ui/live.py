"""Output modes: the Rich Live view, `--plain` log lines and `--json` event objects."""

from __future__ import annotations

import json
import sys
from types import TracebackType
from typing import IO, Any

from rich.console import Console
from rich.live import Live

from aivoco.session.state import CallState
from aivoco.ui.widgets import call_view, clock

REFRESH_PER_SECOND = 10


class LiveView:
    """Renders the call state ~10 times a second; restores the terminal on any exit."""

    def __init__(self, state: CallState, console: Console | None = None) -> None:
        self.state = state
        self.console = console or Console()
        self._live = Live(
            get_renderable=lambda: call_view(self.state.snapshot()),
            console=self.console,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def on_record(self, record: dict[str, Any]) -> None:
        """Records are not printed: the view reads the state instead."""

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()


def describe_record(record: dict[str, Any]) -> str | None:
    """One human line per record for `--plain`; None for records not worth a line."""
    kind = record["type"]
    r = record
    text: str | None
    match kind:
        case "connecting":
            text = f"connecting to {r.get('endpoint')} ({r.get('protocol')})"
            if r.get("input") or r.get("output"):
                text += f"; in: {r.get('input')}; out: {r.get('output')}"
        case "ready":
            parts = [r.get("message") or "session ready"]
            if r.get("credits_available") is not None:
                parts.append(f"credits {r['credits_available']}")
            if r.get("cost_per_minute") is not None:
                parts.append(f"cost/min {r['cost_per_minute']}")
            if r.get("functions_loaded") is not None:
                parts.append(f"functions {r['functions_loaded']}")
            text = " | ".join(str(p) for p in parts)
        case "agent_text":
            text = f"agent: {r.get('text')}"
        case "user_speech_end":
            text = f"you: spoke {r.get('duration_s')} s"
        case "turn":
            text = f"agent answered after {r.get('latency_ms')} ms"
        case "function_call":
            text = f"function call {r.get('name')}({json.dumps(r.get('arguments'))})"
        case "function_result":
            status = "ok" if r.get("ok") else "FAILED"
            text = f"function {r.get('name')} {status}: {json.dumps(r.get('result'), default=str)}"
        case "function_report":
            text = f"server: function {r.get('kind')} {r.get('name') or ''} {r.get('detail')}"
        case "mark" | "mark_played" | "credits":
            text = None
        case "clear":
            text = f"barge-in: cleared {r.get('cleared_ms')} ms of queued agent audio"
        case "protocol_error":
            text = f"protocol error: {r.get('message')}"
        case "error":
            text = f"error: {r.get('message')}"
        case "notice":
            text = str(r.get("message"))
        case "input_finished":
            text = "input file finished; sending silence until the agent is quiet"
        case "hangup":
            text = f"hanging up ({r.get('reason')})"
        case "reconnecting":
            text = (
                f"connection lost ({r.get('reason')}); reconnecting ({r.get('attempt')}/"
                f"{r.get('of')}) in {r.get('delay_s')} s"
            )
        case "reconnected":
            text = f"reconnected after {r.get('gap_s')} s"
        case "session_ended":
            text = f"session ended: {r.get('message') or r.get('reason')}"
            if r.get("total_credits_used") is not None:
                text += (
                    f" | credits used {r['total_credits_used']}, "
                    f"remaining {r.get('remaining_credits')}"
                )
        case "summary":
            text = None
        case _:
            text = f"{kind}"
    return text


class PlainPrinter:
    """Timestamped log lines (for `--plain` and any non-TTY stdout)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def on_record(self, record: dict[str, Any]) -> None:
        line = describe_record(record)
        if line is None:
            return
        stamp = record["time"][11:23]
        self.stream.write(f"{stamp} [{clock(record['t'])}] {line}\n")
        self.stream.flush()


class JsonPrinter:
    """One JSON object per event on stdout, for scripts."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def on_record(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self.stream.flush()
