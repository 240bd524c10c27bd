"""The environment a program is started with: websocketd's CGI variables (behaviour A2).

The environment is cleared, then the ``--passenv`` names are copied from wsdev's own, then the
CGI variables and one ``HTTP_*`` per request header are added. The WebSocket bridge and the CGI
runner both build their environments here, so the two can never drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from wsdev import __version__
from wsdev.config import Config

SERVER_SOFTWARE = f"wsdev/{__version__}"


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the environment needs to know about one HTTP request, independent of aiohttp."""

    method: str
    raw_path: str  # the request target as sent: percent-encoded path, then ``?query``
    version: str  # "HTTP/1.1"
    host: str  # the Host header ("" when absent)
    headers: tuple[tuple[str, str], ...]  # in order, as received
    remote_addr: str
    remote_port: str
    remote_host: str  # the address, or its reverse-DNS name under --reverselookup
    # Whether the client used TLS; None: as wsdev's own listener (a trusted proxy may say).
    https: bool | None = None

    @property
    def raw_query(self) -> str:
        return self.raw_path.partition("?")[2]

    @property
    def path(self) -> str:
        """The decoded path, as Go's ``url.Path`` gives it."""
        return unquote(self.raw_path.partition("?")[0])


def split_host_port(host: str, tls: bool) -> tuple[str, str]:
    """SERVER_NAME and SERVER_PORT from a Host header; the port defaults to 80 or 443."""
    default_port = "443" if tls else "80"
    if host.startswith("["):
        bracket_end = host.find("]")
        if bracket_end != -1 and host[bracket_end + 1 : bracket_end + 2] == ":":
            return host[1:bracket_end], host[bracket_end + 2 :]
        return host, default_port
    name, colon, port = host.rpartition(":")
    if not colon or ":" in name:
        return host, default_port
    return name, port


def inherited_environ(config: Config, parent: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``--passenv`` variables of wsdev's environment, plus PYTHONUNBUFFERED (behaviour B9)."""
    source = os.environ if parent is None else parent
    env = {name: source[name] for name in config.passenv if name in source}
    if config.python_child and "PYTHONUNBUFFERED" not in env:
        # Buffered output is the most common reason a Python program "answers nothing".
        env["PYTHONUNBUFFERED"] = "1"
    return env


def cgi_environ(
    config: Config,
    request: RequestFacts,
    *,
    script_name: str,
    path_info: str,
    unique_id: str,
    parent: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The full environment of a program started for ``request`` (behaviour A2)."""
    https = config.ssl if request.https is None else request.https
    server_name, server_port = split_host_port(request.host, https)
    raw_path = request.raw_path
    # One dict display: this runs before every program starts, and it is quicker than updates.
    env = {
        **inherited_environ(config, parent),
        "REMOTE_ADDR": request.remote_addr,
        "REMOTE_HOST": request.remote_host,
        "SERVER_NAME": server_name,
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": request.version,
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "PATH_TRANSLATED": request.path,
        "QUERY_STRING": raw_path.partition("?")[2],
        # Part of CGI but meaningless here; set empty so nothing leaks in from elsewhere.
        "AUTH_TYPE": "",
        "CONTENT_LENGTH": "",
        "CONTENT_TYPE": "",
        "REMOTE_IDENT": "",
        "REMOTE_USER": "",
        "UNIQUE_ID": unique_id,
        "REMOTE_PORT": request.remote_port,
        "REQUEST_URI": raw_path,
    }
    if https:
        env["HTTPS"] = "on"
    env.update(header_environ(request.headers))
    return env


def header_environ(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """One ``HTTP_*`` variable per header but Host; repeated headers joined with ``, ``."""
    env: dict[str, str] = {}
    for name, value in headers:
        key = "HTTP_" + name.upper().replace("-", "_")
        if key == "HTTP_HOST":
            continue
        if "\r" in value or "\n" in value:
            # CR or LF in a value could forge a second variable in a naive parser downstream.
            value = value.replace("\r", " ").replace("\n", " ")
        env[key] = f"{env[key]}, {value}" if key in env else value
    return env


async def reverse_lookup(address: str) -> str:
    """REMOTE_HOST under --reverselookup: the address's name, or the address (A2)."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError, UnicodeError, asyncio.TimeoutError):
        host, _ = await asyncio.wait_for(
            loop.getnameinfo((address, 0), socket.NI_NAMEREQD), timeout=2.0
        )
        return str(host)
    return address
