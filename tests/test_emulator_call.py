"""The emulator's agent-call service (docs/protocols.md#call), driven by websocket-client."""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest
import websocket
from test_emulator_support import (
    KEY,
    call_client,
    media_messages,
    mulaw_bytes,
    paced,
    running,
    silence,
    start_message,
    tone,
    utterance,
)
from tones import dominant_freq

from aivoco.audio.g711 import ulaw_decode


def _well_formed(message: object) -> bool:
    if not isinstance(message, dict) or message.get("event") not in ("media", "mark"):
        return False
    if message["event"] == "mark":
        return True
    try:
        return len(base64.b64decode(message["media"]["payload"], validate=True)) == 160
    except ValueError:
        return False


@pytest.mark.parametrize(
    ("key", "agent", "status"),
    [("wrong", "agent-1", 401), (KEY, "gone-agent", 404)],
)
def test_refused_before_the_upgrade(key: str, agent: str, status: int) -> None:
    with running(accept_keys=(KEY,), reject_agents=("gone-agent",)) as emu:
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            websocket.create_connection(emu.call_url_for(key, agent), timeout=5)
        assert info.value.status_code == status
        assert emu.refused_calls[0][0] == status
        assert emu.call_sessions == []  # never upgraded, so no session


def test_url_escaped_key_and_agent_are_unescaped() -> None:
    key, agent = "k/ey with space%", "agent/é"
    with running(accept_keys=(key,)) as emu, call_client(emu, key, agent) as client:
        client.ws.send("")
        client.ws.send(json.dumps(start_message()))
        assert emu.wait_until(lambda: emu.call_sessions and emu.call_sessions[0].start)
        record = emu.call_sessions[0]
        assert record.agent_id == agent and record.key is not None
        assert key not in record.key


def test_utterance_echoed_as_realtime_mulaw_then_mark_then_stop() -> None:
    with running() as emu, call_client(emu) as client:
        client.ws.send("")
        client.ws.send(json.dumps(start_message()))
        paced(media_messages(utterance(0.5, 8000)), 0.02, client.ws.send)
        client.wait("mark")
        media = client.events("media")
        payloads = mulaw_bytes(media)
        assert [len(p) for p in payloads] == [160] * 25  # 0.5 s as 20 ms mu-law frames
        assert [m["media"]["chunk"] for _, m in media] == list(range(1, 26))
        assert all(m["streamSid"] == "MZ0123456789abcdef" for _, m in media)
        pcm = ulaw_decode(b"".join(payloads))
        assert abs(dominant_freq(pcm, 8000) - 440) < 5  # played back at 8 kHz
        spread = media[-1][0] - media[0][0]
        assert 0.3 < spread < 1.2  # 0.48 s expected: paced in real time
        (mark_time, mark) = client.events("mark")[0]
        assert mark == {
            "event": "mark",
            "streamSid": "MZ0123456789abcdef",
            "mark": {"name": "reply-1"},
        }
        assert mark_time >= media[-1][0]
        record = emu.call_sessions[0]
        assert emu.wait_until(lambda: record.marks and record.marks[0].answered_at)
        client.ws.send(json.dumps({"event": "stop", "streamSid": "MZ0123456789abcdef"}))
        assert emu.wait_until(lambda: record.closed)
        assert record.close_reason == "stop" and record.handshake_seen
        assert record.deviation_total == 0, record.deviations
        assert [round(u.duration_s, 2) for u in record.utterances] == [0.5]
        assert record.media_received == len(media_messages(utterance(0.5, 8000)))


def _renumbered(message: str, shift: int) -> str:
    data = json.loads(message)
    data["sequenceNumber"] += shift
    return json.dumps(data)


@pytest.mark.parametrize(("mark_seq_error", "flagged"), [(0, 0), (5, 2)])
def test_one_sequence_counter_over_media_mark_and_stop(mark_seq_error: int, flagged: int) -> None:
    """One counter over start ("1"), media, mark and stop, as aivoco's CallEncoder
    numbers them, is correct; a mark numbered wrong is flagged (and the media after it,
    which no longer follows on)."""
    with running() as emu, call_client(emu) as client:
        client.answer_marks = False
        client.ws.send("")
        client.ws.send(json.dumps(start_message()))
        before = media_messages(utterance(0.5, 8000))  # sequenceNumber 2..n+1
        after = media_messages(np.concatenate([utterance(0.5, 8000), silence(0.3, 8000)]))
        after = [_renumbered(m, 1) for m in after[len(before) :]]  # n+3...: the mark took n+2
        paced(before, 0.02, client.ws.send)
        client.wait("mark")
        mark = {
            "event": "mark",
            "sequenceNumber": len(before) + 2 + mark_seq_error,
            "mark": {"name": "reply-1"},
        }
        client.ws.send(json.dumps(mark))
        paced(after, 0.02, client.ws.send)  # the old check flagged the first of these
        stop_seq = json.loads(after[-1])["sequenceNumber"] + 1
        client.ws.send(json.dumps({"event": "stop", "sequenceNumber": stop_seq}))
        record = emu.call_sessions[0]
        assert emu.wait_until(lambda: record.closed)
        assert record.marks[0].answered_at is not None and record.close_reason == "stop"
        assert record.deviation_counts["sequence_number"] == flagged, record.deviations
        assert record.deviation_total == flagged


def test_barge_in_sends_clear_and_stops_media() -> None:
    with running() as emu, call_client(emu) as client:
        client.ws.send("")
        client.ws.send(json.dumps(start_message()))
        first = np.concatenate([tone(1.0, 8000), silence(0.62, 8000)])
        second = np.concatenate([tone(0.4, 8000), silence(0.8, 8000)])
        messages = media_messages(np.concatenate([first, silence(0.3, 8000), second]))
        paced(messages, 0.02, client.ws.send)
        client.wait("clear")
        record = emu.call_sessions[0]
        assert emu.wait_until(lambda: len(record.replies) == 2 and record.replies[1].finished_at)
        assert record.replies[0].interrupted and record.clears_sent == 1
        # The mark follows the second reply's last frame on the same ordered socket:
        # once it has arrived, every media frame has too.
        client.wait("mark")
        # Count by position on the wire, not by arrival time: a frame sent just before
        # the clear can be read a moment after it.
        order = [m.get("event") if isinstance(m, dict) else None for _, m in client.messages]
        first_reply = order[: order.index("clear")].count("media")
        assert 5 < first_reply < 50  # stopped before all 1.0 s (50 frames) went out
        assert order.count("media") == first_reply + 20  # then the 0.4 s reply
        assert [m["mark"]["name"] for _, m in client.events("mark")] == ["reply-2"]


def test_deviations_are_counted_and_the_call_goes_on() -> None:
    with running() as emu, call_client(emu) as client:
        start = start_message()
        start["start"]["mediaFormat"]["sampleRate"] = 16000
        start["sequenceNumber"] = 1
        client.ws.send(json.dumps(start))  # no empty message first
        client.ws.send("not json")
        client.ws.send_binary(b"\x00\x01")
        msgs = media_messages(tone(0.1, 8000))
        client.ws.send(msgs[1])  # chunk 2 first
        bad = json.loads(msgs[0])
        bad["media"]["track"] = "outbound"
        bad["media"]["payload"] = "%%%"
        client.ws.send(json.dumps(bad))
        client.ws.send(json.dumps({"event": "dance"}))
        # Nothing was answered yet: the emulator may still be registering the session.
        assert emu.wait_until(lambda: emu.call_sessions)
        record = emu.call_sessions[0]
        assert emu.wait_until(lambda: record.deviation_total >= 8)
        time.sleep(0.1)
        counts = record.deviation_counts
        assert counts["handshake"] == 1 and counts["start"] == 2  # sequenceNumber, format
        assert counts["not_json"] == 1 and counts["binary_frame"] == 1
        assert counts["media_chunk"] == 2 and counts["media_track"] == 1
        assert counts["media_payload"] == 1 and counts["unknown_event"] == 1
        assert not record.closed


def test_drop_after_aborts_without_close_frame() -> None:
    with running(drop_after_s=0.8) as emu, call_client(emu) as client:
        t0 = time.monotonic()
        client.ws.send("")
        client.ws.send(json.dumps(start_message()))
        assert emu.wait_until(lambda: client.closed_at is not None, 5)
        assert client.closed_at is not None
        assert 0.6 < client.closed_at - t0 < 2.0
        assert client.close_error != "close frame"
        record = emu.call_sessions[0]
        assert emu.wait_until(lambda: record.closed)
        assert record.dropped and record.close_reason == "dropped"


def test_garbage_every_n_messages() -> None:
    with running(garbage_every=4) as emu, call_client(emu) as client:
        client.ws.send("")
        client.ws.send(json.dumps(start_message()))
        paced(media_messages(utterance(0.6, 8000)), 0.02, client.ws.send)
        record = emu.call_sessions[0]
        assert emu.wait_until(lambda: record.replies and record.replies[0].finished_at)
        client.wait("mark")
        time.sleep(0.1)
        received = [m for _, m in client.messages]
        good = [m for m in received if _well_formed(m)]
        bad = len(received) - len(good)
        assert len(received) >= 20
        assert bad == len(received) // 4 == record.garbage_sent
        assert set(record.garbage_kinds) <= {
            "not_json",
            "not_object",
            "media_bad_base64",
            "unknown_event",
        }
        assert len(record.garbage_kinds) >= 3
