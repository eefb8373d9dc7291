"""The commented starting file `aivoco config init` writes (every line an example)."""

from __future__ import annotations

TEMPLATE = """\
# aivoco configuration: `aivoco config show` prints what a call would use, and from where.
#
# Precedence: command-line options > environment variables > the profile > [defaults]
# > built-in defaults. Choose a profile with `--profile NAME` or AIVOCO_PROFILE.
# Any option of `aivoco sts` / `aivoco call` is settable by its long name with `_`
# (--input-device -> input_device); an option another command does not take is ignored
# there. Relative paths (functions, system = "@FILE", input, ...) are relative to this
# file. Unknown keys and wrong types are errors, so a typo never goes unnoticed.

[defaults]
# input_device = "USB"          # index or name substring, see `aivoco devices`
# output_device = "USB"
# connect_timeout = 10

# [profile.staging]
# key_env = "AIVOCO_STAGING_KEY"   # read the key from this variable (recommended)
# sts_url = "wss://staging.example/sts"
# call_url = "wss://staging.example/ws"
# agent = "agent-123"
# voice = "female"
# system = "@prompts/staging.txt"  # @FILE: the system message from a file
# functions = "tools.py"

# [profile.local]                  # `aivoco emulate --port 11002` in another terminal
# key = "anything"                 # a key in this file is used only while the file is
#                                  # private to you (chmod 600), as ssh does with keys
# sts_url = "http://127.0.0.1:11002"
# call_url = "ws://127.0.0.1:11002/ws"
# agent = "demo"
"""
