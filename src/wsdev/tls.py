"""The TLS side of ``--ssl``: the server's certificate, client certificates with ``--sslca``,
and each connection's handshake.

A file that cannot be read or is not what it should be becomes one ``ConfigError`` line naming
the flag and the file, before anything listens (behaviour F). A handshake the server refuses
(no client certificate, one from another CA, plain HTTP on the TLS port) is logged with its
reason (behaviour A6): asyncio's own TLS accept drops such a connection without a word, so
``TlsHandshakes`` runs each handshake itself, through ``loop.connect_accepted_socket``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

from wsdev.config import Config
from wsdev.errors import ConfigError

logger = logging.getLogger(__name__)


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


class TlsHandshakes:
    """Runs the TLS handshake of each accepted connection, then gives it to the protocol.

    ``refused(remote, reason)`` hears of every handshake the server refused; a client that
    merely left or timed out during its handshake is only worth a debug line.
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        protocol_factory: Callable[[], asyncio.Protocol],
        refused: Callable[[str, str], None],
    ) -> None:
        self._context = context
        self._factory = protocol_factory
        self._refused = refused
        self._handshakes: set[asyncio.Task[None]] = set()

    def start(self, conn: socket.socket, peer: object) -> None:
        """Begin the handshake of the accepted socket ``conn`` (the ``Acceptor``'s hand-off)."""
        task = asyncio.ensure_future(self._handshake(conn, _remote(peer)))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, conn: socket.socket, remote: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(self._factory, conn, ssl=self._context)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError, TimeoutError) as exc:
            logger.debug("%s left during the TLS handshake: %s", remote, exc)
        except ssl.SSLError as exc:
            self._refused(remote, refusal_reason(exc))
        except OSError as exc:
            logger.debug("%s: TLS handshake failed: %s", remote, exc)

    def close(self) -> None:
        """Abandon the handshakes still running (their connections are closed)."""
        for task in list(self._handshakes):
            task.cancel()


def refusal_reason(exc: ssl.SSLError) -> str:
    """Why the server refused a handshake, in words that say what to do about it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the client's certificate was not accepted ({exc.verify_message}): "
            "it must be issued by a CA in --sslca"
        )
    reason = str(exc.reason or "")
    if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return "the client sent no certificate, and --sslca requires one"
    if reason == "HTTP_REQUEST":
        return "the client sent plain HTTP to the TLS port (use https:// or wss://)"
    return reason.lower().replace("_", " ") or str(exc)


def _remote(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return "a unix socket client"
