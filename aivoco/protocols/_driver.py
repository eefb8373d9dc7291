"""The one driver shape both protocols share: receive, send, hang up, close.

A driver owns a connection and its threads; everything protocol-specific is in its
codec (`_codec.Codec`) and in four transport hooks (`_connect`, `_transmit`,
`_after_opening`, `_disconnect`). What is written once here:
* receiving: count, log, decode; a malformed message becomes a `ProtocolIssue` event,
  never an exception in a library thread (docs/protocols.md#leniency);
* sending: one lock serialises building and sending, so numbering matches wire order
  and nothing is built after the goodbye (the codec's `closed`); a send on a closed
  or unopened driver is dropped, because the session may race its own hang-up;
* the connection resource: `close()` is idempotent.
Drivers never decide what an event means for the call: a dropped connection is a
`Disconnected` event, and the session's lifecycle decides whether that is an error.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from typing import Any, Generic

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import ProtocolError
from aivoco.protocols._codec import Codec, Outgoing, RawT
from aivoco.redact import redact
from aivoco.wire import events as ev
from aivoco.wire.driver import NetStats, ProtocolName


class DriverBase(ABC, Generic[RawT]):
    def __init__(self, codec: Codec[RawT], endpoint: str, log: logging.Logger) -> None:
        self.codec = codec
        self.endpoint = endpoint
        self.net = NetStats()
        self.log = log
        self._events: ev.EventSink | None = None
        self._send_lock = threading.Lock()
        self._opened = False
        self._closed = False
        self._close_lock = threading.Lock()

    @property
    def protocol(self) -> ProtocolName:
        return self.codec.protocol

    @property
    def uplink_rate_hz(self) -> int:
        return self.codec.uplink_rate_hz

    @property
    def downlink_rate_hz(self) -> int:
        return self.codec.downlink_rate_hz

    @property
    def has_credits(self) -> bool:
        return self.codec.has_credits

    # -- opening ---------------------------------------------------------------------
    def open(self, events: ev.EventSink, timeout_s: float) -> None:
        self._events = events
        self._connect(timeout_s)
        with self._send_lock:
            if self._closed:  # closed while connecting: release what just opened
                self._disconnect()
                return
            self._opened = True
            for out in self.codec.opening():
                self._send(out)
        self._after_opening()

    @abstractmethod
    def _connect(self, timeout_s: float) -> None:
        """Open the transport within timeout_s; raise AuthError/ConnectionFailedError."""

    def _after_opening(self) -> None:
        """Runs once the opening messages went out (e.g. start serving the socket)."""

    # -- receiving (transport threads) -------------------------------------------------
    def _put(self, event: ev.Event) -> None:
        if self._events is not None:
            self._events.put(event)

    def _received(self, raw: RawT, size: int) -> None:
        """One message from the peer -> one event (a ProtocolIssue if malformed)."""
        self.net.messages_received += 1
        self.net.bytes_received += size
        try:
            if self.log.isEnabledFor(logging.DEBUG):
                self.log.debug("recv %s", self.codec.describe_incoming(raw))
            event = self.codec.decode(raw)
        except ProtocolError as exc:
            self.log.warning("protocol error: %s", exc)
            self._put(ev.ProtocolIssue(str(exc)))
            return
        except Exception as exc:  # a codec bug must not kill a transport thread
            self.log.exception("could not decode a message")
            self._put(ev.ProtocolIssue(f"undecodable message ({type(exc).__name__})"))
            return
        if isinstance(event, ev.AgentAudio):
            self.net.audio_ms_received += event.chunk.duration_ms
        self._put(event)

    # -- sending (any thread) --------------------------------------------------------
    def _send(self, out: Outgoing) -> bool:
        """Send one built message; False if the transport refused it."""
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("send %s", self.codec.describe_outgoing(out))
        size = self._transmit(out)
        if size is None:
            return False
        self.net.messages_sent += 1
        self.net.bytes_sent += size
        self.net.audio_ms_sent += out.audio_ms
        return True

    @abstractmethod
    def _transmit(self, out: Outgoing) -> int | None:
        """Put one message on the wire and return its size; None (logged) if it failed."""

    def _usable(self) -> bool:
        return self._opened and not self._closed and not self.codec.closed

    def send_audio(self, chunk: AudioChunk) -> None:
        if self._backlogged():
            self.net.uplink_dropped += 1
            return
        with self._send_lock:
            if self._usable():
                self._send(self.codec.audio(chunk))

    def _backlogged(self) -> bool:
        """True when the link is backed up and new audio should be dropped."""
        return False

    def send_function_result(self, call_id: str, name: str, result: Any) -> None:
        with self._send_lock:
            if self._usable():
                self._send(self.codec.function_result(call_id, name, result))

    def answer_mark(self, name: str) -> None:
        with self._send_lock:
            if self._usable():
                self._send(self.codec.mark(name))

    def hang_up(self) -> None:
        with self._send_lock:
            if not self._usable():
                return
            self._send(self.codec.closing())
        self._after_goodbye()

    def _after_goodbye(self) -> None:
        """After the goodbye went out (e.g. start the WebSocket close handshake)."""

    # -- closing ---------------------------------------------------------------------
    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._disconnect()
        except Exception as exc:  # closing anyway; nothing the user must act on
            self.log.info("disconnect: %s", redact(str(exc) or type(exc).__name__))

    @abstractmethod
    def _disconnect(self) -> None:
        """Release the transport and stop its threads (bounded in time)."""
