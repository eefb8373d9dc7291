"""The config file: `[defaults]` and named profiles under the command line.

- `file`: where the file is, reading it, checking every table and key (`load_config`).
- `schema`: the names it may use, derived from `CallOptions`' declarations.
- `resolve`: precedence, in one place (`resolve`, `choose_profile`).
- `template`: the commented file `aivoco config init` writes.
"""

from aivoco.config.file import (
    ENV_CONFIG,
    ENV_PROFILE,
    ConfigError,
    ConfigFile,
    config_path,
    load_config,
)
from aivoco.config.resolve import From, Given, Origin, Resolved, choose_profile, resolve

__all__ = [
    "ENV_CONFIG",
    "ENV_PROFILE",
    "ConfigError",
    "ConfigFile",
    "From",
    "Given",
    "Origin",
    "Resolved",
    "choose_profile",
    "config_path",
    "load_config",
    "resolve",
]
