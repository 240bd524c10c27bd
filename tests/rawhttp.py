"""A raw HTTP/1.1 client for tests that must send exactly the bytes they mean, and a server.

HTTP client libraries normalise request targets (``/../`` collapsed, ``%2e`` decoded) and refuse
malformed requests, which is exactly what traversal and bad-handshake tests need to send. Each
request goes on its own connection with ``Connection: close``, and the response is read to EOF.
``serve`` runs an aiohttp application on 127.0.0.1 port 0 for unit-level tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from aiohttp import web

from conftest import timeout

WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


@contextlib.asynccontextmanager
async def serve(
    app: web.Application, ssl_context: ssl_module.SSLContext | None = None
) -> AsyncIterator[int]:
    """Serve ``app`` on 127.0.0.1 on a free port, which is yielded, until the block ends."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    server = site._server  # aiohttp tells the bound port nowhere else
    assert server is not None
    try:
        yield int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    finally:
        await runner.cleanup()


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return default

    def header_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


async def request(
    port: int,
    target: str = "/",
    *,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    host: str | None = None,
    ssl: ssl_module.SSLContext | None = None,
    raw: bytes | None = None,
    within: float = 10,
) -> RawResponse:
    """Send one request (or the bytes ``raw``) to 127.0.0.1:``port`` and read the response."""
    if raw is None:
        lines = [f"{method} {target} HTTP/1.1"]
        if host != "":
            lines.append(f"Host: {host if host is not None else f'127.0.0.1:{port}'}")
        lines += [f"{name}: {value}" for name, value in headers]
        if body and not any(name.lower() == "content-length" for name, _ in headers):
            lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    return await asyncio.wait_for(_exchange(port, raw, ssl, method), timeout(within))


def upgrade_headers(*extra: tuple[str, str]) -> list[tuple[str, str]]:
    """The headers of a valid WebSocket upgrade request, plus ``extra``."""
    return [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", WS_KEY),
        ("Sec-WebSocket-Version", "13"),
        *extra,
    ]


async def upgrade(
    port: int,
    origin: str | None = None,
    *,
    host: str | None = None,
    target: str = "/",
    method: str = "GET",
    headers: Sequence[tuple[str, str]] | None = None,
) -> RawResponse:
    """Attempt a WebSocket upgrade and read the response head (and a refusal's body).

    The connection is dropped afterwards. The body is read by its Content-Length, since a
    server may keep a refused connection open (websocketd does).
    """
    if headers is None:
        headers = upgrade_headers(*([("Origin", origin)] if origin is not None else []))
    lines = [
        f"{method} {target} HTTP/1.1",
        f"Host: {host if host is not None else f'127.0.0.1:{port}'}",
    ]
    lines += [f"{name}: {value}" for name, value in headers]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def exchange() -> RawResponse:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(raw)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            response = parse_response(head)
            length = response.header("Content-Length")
            if response.status != 101 and length:
                response.body = await reader.readexactly(int(length))
        finally:
            writer.close()
        return response

    return await asyncio.wait_for(exchange(), timeout(10))


async def upgrade_status(port: int, origin: str | None, host: str | None = None) -> int:
    """The status of a WebSocket upgrade with this Origin (and Host) header."""
    return (await upgrade(port, origin, host=host)).status


async def _exchange(
    port: int, raw: bytes, ssl: ssl_module.SSLContext | None, method: str
) -> RawResponse:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ssl, server_hostname="localhost" if ssl else None
    )
    try:
        writer.write(raw)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    return parse_response(data, head_only=method == "HEAD")


def parse_response(data: bytes, *, head_only: bool = False) -> RawResponse:
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        raise AssertionError(f"no complete response head in {data[:200]!r}")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    _, status, *reason = status_line.split(" ", 2)
    headers = []
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    response = RawResponse(int(status), reason[0] if reason else "", headers, b"")
    if not head_only:
        chunked = (response.header("Transfer-Encoding") or "").lower() == "chunked"
        response.body = _dechunk(body) if chunked else body
    return response


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)
