"""One call session core shared by `aivoco sts` and `aivoco call`.

The session wires an audio source, a player, a protocol driver, the custom functions,
the transcript/recording files and the UI's call state together.
"""
