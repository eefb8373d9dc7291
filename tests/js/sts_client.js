// The official socket.io-client 4.x against `aivoco emulate` (Speech-to-Speech,
// docs/protocols.md#sts).
//
// usage: node sts_client.js URL TRANSPORT FRAMES_JSON
//   FRAMES_JSON: {"key", "chunk_ms", "expect_audio_bytes", "frames": [audio_data payloads]}
// Connects with only TRANSPORT (websocket | polling, no upgrade), starts a call with one
// function, streams the frames in real time, answers function_called, waits for the
// echo, sends stop_call and prints one JSON summary line. Exit code 0 when the session
// ended normally; the Python test asserts on the summary.
"use strict";

const fs = require("fs");
const { io } = require("socket.io-client");

const [url, transport, framesPath] = process.argv.slice(2);
const spec = JSON.parse(fs.readFileSync(framesPath, "utf8"));
const t0 = Date.now();
const out = {
  clientVersion: require("socket.io-client/package.json").version,
  transport: null,
  events: {},
  sessionReady: null,
  functionCalled: null,
  functionResult: null,
  text: [],
  audioBytes: 0,
  audioTimes: [],
  sessionEnded: null,
  error: null,
};
let finished = false;
let stopSent = false;

const socket = io(url, {
  transports: [transport],
  upgrade: false,
  reconnection: false,
  timeout: 5000,
});

function finish(code) {
  if (finished) return;
  finished = true;
  console.log(JSON.stringify(out));
  socket.disconnect();
  setTimeout(() => process.exit(code), 50);
}

setTimeout(() => {
  out.error = "timed out";
  finish(2);
}, 20000);

socket.onAny((event) => {
  out.events[event] = (out.events[event] || 0) + 1;
});

socket.on("connect", () => {
  out.transport = socket.io.engine.transport.name;
  socket.emit("start_call", {
    auth_key: spec.key,
    system_message: "You are a test.",
    voice_choice: "female",
    custom_functions: [
      {
        name: "get_time",
        description: "Current time in a zone",
        parameters: [{ name: "zone", type: "string", description: "tz", required: true }],
      },
    ],
  });
});

socket.on("connect_error", (err) => {
  out.error = `connect_error: ${err.message}`;
  finish(1);
});

socket.on("session_ready", (data) => {
  out.sessionReady = data;
  const start = Date.now();
  spec.frames.forEach((frame, k) => {
    // Deadline pacing: frame k leaves at start + k x chunk length.
    setTimeout(() => socket.emit("audio_data", frame), k * spec.chunk_ms - (Date.now() - start));
  });
});

socket.on("function_called", (data) => {
  out.functionCalled = data;
  socket.emit("function_response", {
    call_id: data.call_id,
    function_name: data.function_name,
    result: { time: "12:00", list: [1, null, "x"] },
  });
});

socket.on("function_result", (data) => {
  out.functionResult = data;
});

socket.on("text_response", (data) => {
  out.text.push(data.text);
});

socket.on("audio_response", (data) => {
  out.audioBytes += Buffer.from(data.audio_data, "base64").length;
  out.audioTimes.push(Date.now() - t0);
  if (!stopSent && out.audioBytes >= spec.expect_audio_bytes) {
    stopSent = true;
    socket.emit("stop_call");
  }
});

socket.on("session_ended", (data) => {
  out.sessionEnded = data;
  finish(0);
});

socket.on("disconnect", (reason) => {
  if (!finished) {
    out.error = `disconnected: ${reason}`;
    finish(3);
  }
});
