"""Wire protocols: pure message codecs (no sockets), one module per protocol.

`sts_codec` speaks the Speech-to-Speech Socket.IO events (protocol notes section 1) and
`call_codec` the Twilio-Media-Streams style agent-call WebSocket (section 2). Drivers in
`aivoco.session` own the sockets and use these codecs to build and parse every message,
in the style of `h11` / `websockets.protocol`.
"""
