// A plain WebSocket client (the `ws` package; node 20 has no global WebSocket) against
// `aivoco emulate`'s agent-call route (docs/protocols.md#call).
//
// usage: node call_client.js SPEC_JSON
//   SPEC_JSON: {"url", "refused_urls": [...], "frames": [media message strings]}
// First checks that each refused URL gets its HTTP status before any upgrade, then
// calls: empty message, start, media paced at 20 ms; answers each mark, and after the
// first mark sends stop. Prints one JSON summary line.
"use strict";

const fs = require("fs");
const WebSocket = require("ws");

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = {
  refusedStatus: [],
  opened: false,
  mediaBytes: [],
  mediaChunks: [],
  mediaTimes: [],
  marks: [],
  other: [],
  closeCode: null,
  error: null,
};

setTimeout(() => {
  out.error = "timed out";
  console.log(JSON.stringify(out));
  process.exit(2);
}, 20000);

function statusOf(url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on("unexpected-response", (req, res) => {
      resolve(res.statusCode);
      req.destroy();
    });
    ws.on("open", () => {
      resolve("opened");
      ws.terminate();
    });
    ws.on("error", () => resolve("error"));
  });
}

function call() {
  return new Promise((resolve) => {
    const ws = new WebSocket(spec.url);
    const t0 = Date.now();
    let stopped = false;
    ws.on("open", () => {
      out.opened = true;
      ws.send("");
      ws.send(JSON.stringify(spec.start));
      const start = Date.now();
      spec.frames.forEach((frame, k) => {
        setTimeout(() => {
          if (ws.readyState === WebSocket.OPEN) ws.send(frame);
        }, k * 20 - (Date.now() - start));
      });
    });
    ws.on("message", (data) => {
      const msg = JSON.parse(data.toString());
      if (msg.event === "media") {
        out.mediaBytes.push(Buffer.from(msg.media.payload, "base64").length);
        out.mediaChunks.push(msg.media.chunk);
        out.mediaTimes.push(Date.now() - t0);
      } else if (msg.event === "mark") {
        out.marks.push(msg.mark.name);
        ws.send(JSON.stringify(msg)); // played up to here: echo it back (Twilio style)
        if (!stopped) {
          stopped = true;
          ws.send(JSON.stringify({ event: "stop", streamSid: spec.start.streamSid }));
        }
      } else {
        out.other.push(msg.event);
      }
    });
    ws.on("close", (code) => {
      out.closeCode = code;
      resolve();
    });
    ws.on("error", (err) => {
      out.error = err.message;
    });
  });
}

(async () => {
  for (const url of spec.refused_urls) {
    out.refusedStatus.push(await statusOf(url));
  }
  await call();
  console.log(JSON.stringify(out));
  process.exit(0);
})();
