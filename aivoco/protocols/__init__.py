"""Wire protocols: one pure codec and one driver per protocol, all of one shape.

`sts_codec` / `sts_driver` speak the Speech-to-Speech Socket.IO events
(docs/protocols.md#sts) and `call_codec` / `call_driver` the Twilio-Media-Streams style
agent-call WebSocket (docs/protocols.md#call). Codecs build and decode messages and own
no sockets (`_codec.Codec`); drivers own the sockets and threads (`_driver.DriverBase`),
in the style of `websockets`' `protocol.py` and `sync/connection.py`. Both translate the
wire into the shared events of `aivoco.wire`, and never import `aivoco.session`.
"""
