"""The emulator's Speech-to-Speech service (docs/protocols.md#sts), via python-socketio."""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

import numpy as np
import pytest
import socketio
from test_emulator_support import (
    call_client,
    config,
    pcm_of,
    running,
    silence,
    start_call,
    start_message,
    sts_client,
    tone,
    utterance,
)
from tones import dominant_freq

from aivoco.emulator import Emulator

TRANSPORTS = ["websocket", "polling"]


def test_auth_refused_with_auth_failed_and_key_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aivoco.emulator")
    with running(accept_keys=("right-key",)) as emu, sts_client(emu) as client:
        start_call(client, key="wrong-key-xyz")
        (failed,) = client.wait("auth_failed")
        start_call(client, key="")
        client.wait("auth_failed", 2)
        time.sleep(0.1)
        assert failed["credits"] == 0 and isinstance(failed["message"], str)
        assert not client.named("session_ready") and not client.named("error")
        record = emu.sts_sessions[0]
        assert record.auth_ok is False
        assert record.key == "len=0 sha256:e3b0c442"  # the last attempt: the empty key
    assert "wrong-key-xyz" not in caplog.text
    assert "len=13 sha256:" in caplog.text


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_utterance_is_echoed_at_24khz_in_real_time_then_stop_call(transport: str) -> None:
    with running(credits=50.0, cost_per_minute=2.0) as emu, sts_client(emu, transport) as client:
        start_call(client)
        (ok,) = client.wait("auth_success")
        (ready,) = client.wait("session_ready")
        assert ok == {"credits": 50.0}
        assert ready["credits_available"] == 50.0 and ready["cost_per_minute"] == 2.0
        assert ready["functions_loaded"] == 0 and isinstance(ready["message"], str)

        client.stream(utterance(0.5, 16000))
        (text,) = client.wait("text_response")
        assert text["text"] == "I heard 0.5 s of audio, peak -6 dBFS."
        client.wait("audio_response", 5)
        time.sleep(0.25)  # nothing more should follow
        audio = client.named("audio_response")
        pcm = np.concatenate(pcm_of(audio))
        assert pcm.size == 12000  # 0.5 s at 24 kHz, in 100 ms chunks
        assert [p.size for p in pcm_of(audio)] == [2400] * 5
        assert abs(dominant_freq(pcm, 24000) - 440) < 5  # the rate really is 24 kHz
        times = client.times("audio_response")
        assert 0.25 < times[-1] - times[0] < 1.2  # 0.4 s expected: paced, not a burst

        client.emit("stop_call")
        (ended,) = client.wait("session_ended")
        assert ended["reason"] == "stopped_by_user"
        assert ended["message"] == "Session stopped by user"
        used = ended["total_credits_used"]
        assert 0.01 < used < 0.2  # ~2-3 s at 2 credits/minute
        assert ended["remaining_credits"] == pytest.approx(50.0 - used, abs=1e-3)
        record = emu.sts_sessions[0]
        assert record.transport == transport
        assert [round(u.duration_s, 2) for u in record.utterances] == [0.5]
        assert record.replies[0].frames_sent == 5 and not record.replies[0].interrupted
        assert record.invalid_audio == 0 and record.deviation_total == 0


def test_audio_before_start_ignored_and_invalid_audio_reported() -> None:
    with running() as emu, sts_client(emu) as client:
        client.emit("audio_data", {"audio_data": "AAAA", "has_audio": False, "max_amplitude": 0})
        start_call(client)
        client.wait("session_ready")
        bad: list[Any] = [
            {"audio_data": "%%%", "has_audio": True, "max_amplitude": 0.5},
            {"audio_data": "AAE=", "has_audio": True, "max_amplitude": 0.5},  # 2 bytes: ok
            {"audio_data": "AQID", "has_audio": True, "max_amplitude": 0.5},  # 3 bytes
            {"audio_data": "AAAA"},  # no has_audio / max_amplitude
            "not an object",
        ]
        for payload in bad:
            client.emit("audio_data", payload)
        errors = client.wait("error", 4)
        assert {e["type"] for e in errors} == {"invalid_audio"}
        record = emu.sts_sessions[0]
        assert emu.wait_until(lambda: record.audio_chunks == 1)
        assert record.audio_before_start == 1 and record.invalid_audio == 4
        assert record.deviation_counts["max_amplitude"] == 1  # the valid chunk lied


def test_function_round_trip_carries_result_as_is() -> None:
    functions = [
        {
            "name": "lookup",
            "description": "Look things up",
            "parameters": [
                {"name": "city", "type": "string", "description": "", "required": True},
                {"name": "days", "type": "integer", "description": "", "required": False},
                {"name": "ratio", "type": "number", "description": "", "required": True},
                {"name": "metric", "type": "boolean", "description": "", "required": False},
                {"name": "tags", "type": "array", "description": "", "required": False},
                {"name": "extra", "type": "object", "description": "", "required": False},
            ],
        }
    ]
    result = {"temp": 21.5, "list": [1, None, "x"], "nested": {"ok": True}, "empty": {}}
    with running() as emu, sts_client(emu) as client:

        @client.sio.on("function_called")  # type: ignore[untyped-decorator]
        def answer(data: dict[str, Any]) -> None:
            client.events.append((time.monotonic(), "function_called", data))
            reply = {"call_id": data["call_id"], "function_name": data["function_name"]}
            client.sio.emit("function_response", {**reply, "result": result})

        start_call(client, functions=functions)
        assert client.wait("session_ready")[0]["functions_loaded"] == 1
        client.stream(utterance(0.3, 16000))
        (called,) = client.wait("function_called")
        args = called["arguments"]
        assert called["function_name"] == "lookup" and called["call_id"]
        assert isinstance(args["city"], str) and isinstance(args["days"], int)
        assert isinstance(args["ratio"], float) and isinstance(args["metric"], bool)
        assert isinstance(args["tags"], list) and isinstance(args["extra"], dict)
        (fr,) = client.wait("function_result")
        assert fr == {"function_name": "lookup", "result": result}
        (sent,) = client.wait("function_response_sent")
        assert sent["function_name"] == "lookup" and sent["admin_units_deducted"] == 0.05
        assert sent["remaining_admin_units"] < 100 - 0.05
        (text,) = client.wait("text_response")
        assert "lookup returned" in text["text"]
        client.wait("audio_response", 3)
        order = [e for _, e, _ in client.events if e != "audio_response"]
        i = order.index("function_called")
        assert order[i:] == [
            "function_called",
            "function_result",
            "function_response_sent",
            "text_response",
        ]
        call = emu.sts_sessions[0].function_calls[0]
        assert call.outcome == "ok" and call.result == result


def test_function_timeout_and_wrong_call_id_give_function_error() -> None:
    fn = {"name": "slow", "description": "", "parameters": []}
    with running(function_timeout_s=0.5) as emu, sts_client(emu) as client:

        @client.sio.on("function_called")  # type: ignore[untyped-decorator]
        def answer(data: dict[str, Any]) -> None:
            client.events.append((time.monotonic(), "function_called", data))
            wrong = {"call_id": "call_nope", "function_name": "slow", "result": 1}
            client.sio.emit("function_response", wrong)

        start_call(client, functions=[fn])
        client.wait("session_ready")
        client.stream(utterance(0.2, 16000))
        errors = client.wait("function_error", 2)
        assert "call_nope" in errors[0]["error"]
        assert "timed out" in errors[1]["error"]
        client.wait("text_response")  # the reply still comes
        assert not client.named("function_result")
        assert emu.sts_sessions[0].function_calls[0].outcome == "timeout"


def test_credits_run_out_mid_call_then_the_key_is_empty() -> None:
    # 1 credit at 60 credits/minute lasts one second.
    with running(credits=1.0, cost_per_minute=60.0) as emu:
        with sts_client(emu) as client:
            start_call(client)
            client.wait("session_ready")
            t0 = time.monotonic()
            (ended,) = client.wait("session_ended", timeout=5)
            assert 0.8 < time.monotonic() - t0 < 2.0
            assert ended["reason"] == "insufficient_user_credits"
            assert ended["remaining_credits"] == 0 and ended["total_credits_used"] == 1.0
            assert isinstance(ended["message"], str)
            assert emu.wait_until(lambda: client.disconnected_at is not None, 3)
        with sts_client(emu) as again:
            start_call(again)
            assert again.wait("auth_success")[0]["credits"] == 0
            assert again.wait("error")[0]["type"] == "insufficient_credits"
            assert not again.named("session_ready")


def test_barge_in_stops_the_reply() -> None:
    with running() as emu, sts_client(emu) as client:
        start_call(client)
        client.wait("session_ready")
        # 1.0 s utterance; after the hangover its 1.0 s echo starts, and 0.3 s into the
        # echo the user talks again.
        first = np.concatenate([tone(1.0, 16000), silence(0.6, 16000)])
        client.stream(first)
        client.wait("audio_response", 1)
        time.sleep(0.2)
        client.stream(np.concatenate([tone(0.4, 16000), silence(0.8, 16000)]))
        record = emu.sts_sessions[0]
        assert emu.wait_until(lambda: len(record.replies) >= 2 and record.replies[1].finished_at)
        assert record.replies[0].interrupted and record.barge_ins == 1
        assert record.replies[0].frames_sent < record.replies[0].frames_total


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_drop_after_loses_the_connection_near_the_time(transport: str) -> None:
    with running(drop_after_s=1.0) as emu, sts_client(emu, transport) as client:
        t0 = time.monotonic()
        start_call(client)
        client.wait("session_ready")
        assert emu.wait_until(lambda: client.disconnected_at is not None, 5)
        assert client.disconnected_at is not None
        assert 0.8 < client.disconnected_at - t0 < 2.5
        assert not client.named("session_ended")  # abrupt: no goodbye
        record = emu.sts_sessions[0]
        assert emu.wait_until(lambda: record.closed)
        assert record.dropped and record.close_reason == "dropped"


def test_garbage_every_n_messages() -> None:
    with running(garbage_every=3) as emu, sts_client(emu) as client:
        start_call(client)
        client.wait("session_ready")
        client.stream(utterance(0.8, 16000))
        record = emu.sts_sessions[0]
        assert emu.wait_until(lambda: record.replies and record.replies[0].finished_at)
        time.sleep(0.2)
        events = list(client.events)
        total = len(events)
        bad = 0
        for _, name, data in events:
            if name == "emulator_unknown_event" or (name == "text_response" and "text" not in data):
                bad += 1
            elif name == "audio_response":
                try:
                    raw = base64.b64decode(data["audio_data"], validate=True)
                    bad += len(raw) % 2
                except ValueError:
                    bad += 1
        assert total >= 9
        assert bad == total // 3 == record.garbage_sent
        assert client.named("auth_success") and client.named("session_ready")


def test_oversized_message_closes_the_connection() -> None:
    # The Socket.IO 1 MB limit (docs/protocols.md#pitfall-max-buffer): ~1.4 MB of base64 audio.
    big = {"audio_data": "A" * 1_400_000, "has_audio": False, "max_amplitude": 0.0}
    with running() as emu, sts_client(emu) as client:
        start_call(client)
        client.wait("session_ready")
        client.emit("audio_data", big)
        assert emu.wait_until(lambda: client.disconnected_at is not None, 5)
        assert emu.sts_sessions[0].audio_chunks == 0


def test_admin_units_run_out() -> None:
    fn = {"name": "f", "description": "", "parameters": []}
    # Loading one definition costs 0.05 + ~0.01 units, so no call can be paid for.
    with running(admin_units=0.07) as emu, sts_client(emu) as client:
        start_call(client, functions=[fn])
        client.wait("session_ready")
        client.stream(utterance(0.2, 16000))
        (ended,) = client.wait("session_ended")
        assert ended["reason"] == "insufficient_admin_units"
        assert emu.wait_until(lambda: client.disconnected_at is not None, 3)
        assert not client.named("function_called")


def test_stop_ends_live_sessions_of_both_protocols() -> None:
    emu = Emulator(config())
    emu.start()
    try:
        with sts_client(emu, "polling") as client, call_client(emu) as call:
            start_call(client)
            client.wait("session_ready")
            call.ws.send("")
            call.ws.send(json.dumps(start_message()))
            assert emu.wait_until(lambda: emu.call_sessions and emu.call_sessions[0].start)
            t0 = time.monotonic()
            emu.stop()
            assert time.monotonic() - t0 < 1.5
            (ended,) = client.wait("session_ended")
            assert ended["reason"] == "server_shutdown"
            assert emu.wait_until(lambda: client.disconnected_at is not None, 3)
            assert emu.wait_until(lambda: call.closed_at is not None, 3)
            assert call.close_code == 1001
            assert not emu.running
    finally:
        emu.stop()  # a second stop() is a no-op


def test_polling_then_upgrade_to_websocket() -> None:
    with running() as emu:
        sio = socketio.Client(reconnection=False, handle_sigint=False)
        sio.connect(emu.sts_url, wait_timeout=5)  # default transports: polling, then upgrade
        try:
            assert emu.wait_until(lambda: sio.transport() == "websocket", 5)
            assert emu.wait_until(
                lambda: emu.sts_sessions and emu.sts_sessions[0].transport == "polling->websocket"
            )
        finally:
            sio.disconnect()
