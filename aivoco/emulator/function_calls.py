"""STS function calls: `function_called` out, `function_response` back.

Protocol and billing: docs/protocols.md#sts-functions.

Per utterance the agent calls the session's next function (round robin) with arguments
made from its parameter schema, and waits up to `function_timeout_s`:
* a response with the pending `call_id` and the same `function_name` -> `function_result
  {function_name, result}` with the client's `result` exactly as received, then
  `function_response_sent {function_name, admin_units_deducted: 0.05,
  remaining_admin_units}` (each call costs 0.05 admin units, as the playground bills);
* a response with an unknown `call_id` (or a late one) -> `function_error` at once, and
  the pending call keeps waiting;
* the right `call_id` with another `function_name` -> `function_error`, call failed;
* no response in time -> `function_error` saying it timed out.
Either way the echo reply follows, naming the outcome in its text.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from aivoco.emulator.billing import Account
from aivoco.emulator.common import EmitEvent, SessionLog, note_deviation, short
from aivoco.emulator.functions import UNITS_PER_CALL, DeclaredFunction, build_arguments
from aivoco.emulator.records import FunctionCallRecord, StsSessionRecord


class FunctionBroker:
    """The function round trips of one session.

    Given only what it uses: `emit` (the session's send path, faults included), the
    record it reports into, and the session's log.
    """

    def __init__(
        self, emit: EmitEvent, record: StsSessionRecord, log: SessionLog, timeout_s: float
    ) -> None:
        self.emit = emit
        self.record = record
        self.log = log
        self.timeout_s = timeout_s
        self._pending: dict[str, tuple[FunctionCallRecord, asyncio.Future[bool]]] = {}

    async def call(self, spec: DeclaredFunction, account: Account) -> str:
        """One round trip, billed to `account`; returns text to append to the reply."""
        call = FunctionCallRecord(
            name=spec.name,
            call_id=f"call_{secrets.token_hex(6)}",
            arguments=build_arguments(spec),
            called_at=time.monotonic(),
        )
        self.record.function_calls.append(call)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[call.call_id] = (call, future)
        self.log.info("function_called %s %s (%s)", call.name, short(call.arguments), call.call_id)
        await self.emit(
            "function_called",
            {"function_name": call.name, "arguments": call.arguments, "call_id": call.call_id},
        )
        try:
            answered = await asyncio.wait_for(future, self.timeout_s)
        except asyncio.TimeoutError:
            return await self._timed_out(call)
        finally:
            self._pending.pop(call.call_id, None)
        if not answered:
            return f" Function {call.name} failed."
        await self.emit("function_result", {"function_name": call.name, "result": call.result})
        remaining = account.charge_admin(UNITS_PER_CALL)
        self.record.admin_units_used += UNITS_PER_CALL
        await self.emit(
            "function_response_sent",
            {
                "function_name": call.name,
                "admin_units_deducted": UNITS_PER_CALL,
                "remaining_admin_units": round(remaining, 4),
            },
        )
        shown = json.dumps(call.result)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return f" Function {call.name} returned {shown}."

    async def _timed_out(self, call: FunctionCallRecord) -> str:
        call.outcome = "timeout"
        limit = self.timeout_s
        self.log.warning(
            "function %s (%s): no function_response within %.1f s", call.name, call.call_id, limit
        )
        await self.emit(
            "function_error", {"error": f"Function {call.name} timed out after {limit:g} s"}
        )
        return f" Function {call.name} timed out."

    async def on_response(self, data: Any) -> None:
        record, log = self.record, self.log
        if not isinstance(data, dict) or not isinstance(data.get("call_id"), str):
            note_deviation(record, log, "function_response", f"bad payload {short(data)}")
            await self.emit("function_error", {"error": "function_response needs a call_id"})
            return
        call_id, name = data["call_id"], data.get("function_name")
        pending = self._pending.get(call_id)
        if pending is None:
            note_deviation(record, log, "function_response", f"unknown call_id {call_id}")
            await self.emit("function_error", {"error": f"Unknown call_id {call_id!r}"})
            return
        call, future = pending
        call.answered_at = time.monotonic()
        if name != call.name:
            call.outcome = "name_mismatch"
            note_deviation(record, log, "function_response", f"{name!r} answers {call.name!r}")
            error = f"function_name {name!r} does not match call {call_id} ({call.name})"
            await self.emit("function_error", {"error": error})
            future.set_result(False)
            return
        if "result" not in data:
            note_deviation(record, log, "function_response", "no result field")
        call.result = data.get("result")
        call.outcome = "ok"
        log.info(
            "function_response %s after %.2f s: %s",
            call.name,
            call.answered_at - call.called_at,
            short(call.result),
        )
        future.set_result(True)

    def abandon(self) -> None:
        """The call ended: pending function calls fail (their waits return at once)."""
        for call, future in self._pending.values():
            call.outcome = "session_ended"
            if not future.done():
                future.set_result(False)
