"""``--ssl`` / ``--sslca`` contexts and the ``--redirport`` redirect application.

Certificates are made at test time by trustme; each context serves a tiny aiohttp app on
127.0.0.1 port 0, and a real TLS client connects.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from conftest import timeout
from rawhttp import request, serve
from wsdev.config import Config
from wsdev.errors import ConfigError
from wsdev.redirect import redirect_app
from wsdev.tls import server_ssl_context


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def client_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(tmp_path: Path, ca: trustme.CA, client_ca: trustme.CA) -> dict[str, Path]:
    server = ca.issue_cert("localhost", "127.0.0.1")
    files = {
        "cert": tmp_path / "cert.pem",
        "key": tmp_path / "key.pem",
        "client_ca": tmp_path / "client-ca.pem",
        "garbage": tmp_path / "garbage.pem",
        "broken": tmp_path / "broken.pem",
    }
    server.cert_chain_pems[0].write_to_path(files["cert"])
    server.private_key_pem.write_to_path(files["key"])
    client_ca.cert_pem.write_to_path(files["client_ca"])
    files["garbage"].write_text("this is not PEM\n")
    files["broken"].write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    )
    return files


def tls_config(files: dict[str, Path], **changes: Path | None) -> Config:
    return Config(ssl=True, sslcert=files["cert"], sslkey=files["key"]).replace(**changes)


@asynccontextmanager
async def serving(context: ssl.SSLContext) -> AsyncIterator[int]:
    async def hello(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(pair[0] for pair in peer["subject"]) if peer else {}
        return web.Response(text=f"hello {subject.get('organizationalUnitName', 'anonymous')}")

    app = web.Application()
    app.router.add_get("/", hello)
    async with serve(app, context) as port:
        yield port


async def https_get(port: int, client: ssl.SSLContext) -> str | None:
    """The response text, or None when the server refused the TLS connection."""

    async def exchange() -> str | None:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client, server_hostname="localhost"
            )
        except (ssl.SSLError, ConnectionError):
            return None
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            await writer.drain()
            # Under TLS 1.3 the server's verdict on a client certificate arrives after the
            # client's handshake has finished, as an alert on the first read.
            data = await reader.read()
        except (ssl.SSLError, ConnectionError):
            return None
        finally:
            writer.close()
        return data.decode() if data else None

    return await asyncio.wait_for(exchange(), timeout(10))


def client_context(ca: trustme.CA, cert_from: trustme.CA | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(context)
    if cert_from is not None:
        cert_from.issue_cert("client@example.com", organization_unit_name="alice").configure_cert(
            context
        )
    return context


async def test_a_client_that_trusts_the_ca_connects(
    tls_files: dict[str, Path], ca: trustme.CA
) -> None:
    context = server_ssl_context(tls_config(tls_files))
    assert context.verify_mode == ssl.CERT_NONE
    async with serving(context) as port:
        response = await https_get(port, client_context(ca))
    assert response is not None and response.startswith("HTTP/1.1 200")
    assert response.endswith("hello anonymous")


async def test_a_client_that_does_not_trust_the_ca_fails(tls_files: dict[str, Path]) -> None:
    async with serving(server_ssl_context(tls_config(tls_files))) as port:
        assert await https_get(port, client_context(trustme.CA())) is None


async def test_sslca_requires_a_client_certificate(
    tls_files: dict[str, Path], ca: trustme.CA, client_ca: trustme.CA
) -> None:
    context = server_ssl_context(tls_config(tls_files, sslca=tls_files["client_ca"]))
    assert context.verify_mode == ssl.CERT_REQUIRED
    async with serving(context) as port:
        assert await https_get(port, client_context(ca)) is None
        assert await https_get(port, client_context(ca, cert_from=trustme.CA())) is None
        accepted = await https_get(port, client_context(ca, cert_from=client_ca))
    assert accepted is not None and accepted.endswith("hello alice")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (lambda f: {"sslcert": f["cert"].with_name("missing.pem")}, "cannot read --sslcert"),
        (lambda f: {"sslkey": f["key"].with_name("missing.pem")}, "cannot read --sslkey"),
        (lambda f: {"sslcert": f["garbage"]}, "does not hold a PEM certificate"),
        (lambda f: {"sslkey": f["garbage"]}, "does not hold a PEM private key"),
        (lambda f: {"sslkey": f["client_ca"]}, "does not hold a PEM private key"),
        (lambda f: {"sslcert": f["broken"]}, "cannot use --sslcert"),
        (lambda f: {"sslcert": f["cert"].parent}, "cannot read --sslcert"),
        (lambda f: {"sslca": f["garbage"]}, "does not hold PEM CA certificates"),
        (lambda f: {"sslca": f["broken"]}, "cannot use --sslca"),
        (lambda f: {"sslca": f["cert"].with_name("missing.pem")}, "cannot read --sslca"),
        (lambda f: {"sslkey": None}, "--ssl needs both --sslcert and --sslkey"),
    ],
)
def test_bad_files_are_one_line_config_errors(
    tls_files: dict[str, Path],
    changes: Callable[[dict[str, Path]], dict[str, Path | None]],
    message: str,
) -> None:
    with pytest.raises(ConfigError) as raised:
        server_ssl_context(tls_config(tls_files, **changes(tls_files)))
    text = str(raised.value)
    assert message in text
    assert "\n" not in text


def test_a_key_that_does_not_match_the_certificate(
    tls_files: dict[str, Path], tmp_path: Path
) -> None:
    other_key = tmp_path / "other-key.pem"
    trustme.CA().issue_cert("localhost").private_key_pem.write_to_path(other_key)
    with pytest.raises(ConfigError, match="key matching the certificate"):
        server_ssl_context(tls_config(tls_files, sslkey=other_key))


# ------------------------------------------------------------------------------ --redirport


@pytest.mark.parametrize(
    ("target", "host", "status", "location"),
    [
        ("/a/b?x=1&y=%20", "example.com:8080", 301, "https://example.com:8443/a/b?x=1&y=%20"),
        ("/", "example.com", 301, "https://example.com:8443/"),
        ("/p", "[::1]:8080", 301, "https://[::1]:8443/p"),
        ("/p", "[::1]", 301, "https://[::1]:8443/p"),
        ("/%2e%2e/x", "h:1", 301, "https://h:8443/%2e%2e/x"),
        ("http://other.org/abs?q", "example.com", 301, "https://example.com:8443/abs?q"),
        ("/", "", 400, None),
        ("/", "::1", 400, None),
        ("/", "evil.org/x?", 400, None),
        ("/", "user@evil.org", 400, None),
        ("/", "[::1%eth0]:1", 301, "https://[::1%eth0]:8443/"),
    ],
)
async def test_redirect_app(target: str, host: str, status: int, location: str | None) -> None:
    config = Config(headers=(("X-All", "1"),), headers_http=(("X-Http", "3"),))
    async with serve(redirect_app(config, 8443)) as port:
        response = await request(port, target, host=host, method="POST", body=b"x")
    assert response.status == status
    assert response.header("Location") == location
    if host:  # without a Host header aiohttp answers 400 itself, before any application runs
        assert response.header("X-All") == "1" and response.header("X-Http") == "3"
