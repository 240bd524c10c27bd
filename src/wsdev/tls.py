"""The TLS side of ``--ssl``: the server's certificate and, with ``--sslca``, client certificates.

A file that cannot be read or is not what it should be becomes one ``ConfigError`` line naming
the flag and the file, before anything listens (SPEC F).
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
    _check_readable("--sslcert", config.sslcert)
    _check_readable("--sslkey", config.sslkey)
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
        _check_readable("--sslca", config.sslca)
        try:
            context.load_verify_locations(cafile=config.sslca)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"cannot use --sslca {config.sslca}: {_reason(exc)} (it must hold PEM certificates)"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _check_readable(flag: str, path: Path) -> None:
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as exc:
        raise ConfigError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
