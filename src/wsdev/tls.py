"""The TLS side of ``--ssl``: the server's certificate and, with ``--sslca``, client certificates.

A file that cannot be read or is not what it should be becomes one ``ConfigError`` line naming
the flag and the file, before anything listens (behaviour F).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from wsdev.config import Config
from wsdev.errors import ConfigError


def server_ssl_context(config: Config) -> ssl.SSLContext:
    """A server context for ``--sslcert``/``--sslkey``; ``--sslca`` demands client certificates."""
    if config.sslcert is None or config.sslkey is None:
        raise ConfigError("--ssl needs both --sslcert and --sslkey")
    _check_pem("--sslcert", config.sslcert, b"CERTIFICATE-----", "a PEM certificate")
    _check_pem("--sslkey", config.sslkey, b"PRIVATE KEY-----", "a PEM private key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.sslcert, config.sslkey)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"cannot use --sslcert {config.sslcert} with --sslkey {config.sslkey}: "
            f"{_reason(exc)} (both must be PEM files, the key matching the certificate)"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the TLS certificate or key: {exc.strerror or exc}"
        ) from None
    if config.sslca is not None:
        _check_pem("--sslca", config.sslca, b"CERTIFICATE-----", "PEM CA certificates")
        try:
            context.load_verify_locations(cafile=config.sslca)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"cannot use --sslca {config.sslca}: {_reason(exc)} (it must hold PEM certificates)"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _check_pem(flag: str, path: Path, marker: bytes, holds: str) -> None:
    """Catch the common mistakes with a message naming the file (OpenSSL's say "PEM lib")."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None
    if marker not in data:
        raise ConfigError(f"{flag} {path} does not hold {holds}")


def _reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or "invalid PEM data").lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
