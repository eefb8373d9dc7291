"""TLS for both drivers: verification always on, `--ca-file` for a private authority.

No option turns verification off. A refused certificate is a connection failure whose
message says so and names the way out (`--ca-file`), instead of the transport library's
bare "connection error".
"""

from __future__ import annotations

import ssl
from pathlib import Path

from aivoco.errors import ConnectionFailedError, UsageError
from aivoco.redact import redact

_CERT_MARKERS = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "SSLCertVerification")


def tls_context(ca_file: Path | None) -> ssl.SSLContext | None:
    """A verifying context trusting only the authorities in `ca_file` (PEM); None for
    the library's default (the system's authorities), also verifying."""
    if ca_file is None:
        return None
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"cannot use --ca-file {ca_file}: {reason}") from None


def is_certificate_error(detail: str) -> bool:
    return any(marker in detail for marker in _CERT_MARKERS)


def connect_failure(endpoint: str, detail: str) -> ConnectionFailedError:
    """`cannot connect` with the detail (redacted), and the way out for a refused
    certificate."""
    message = f"cannot connect to {endpoint}: {detail}"
    if is_certificate_error(detail):
        message = (
            f"cannot connect to {endpoint}: its TLS certificate was not accepted ({detail}). "
            "If the server uses a private certificate authority, pass its certificate "
            "with --ca-file FILE"
        )
    return ConnectionFailedError(redact(message))
