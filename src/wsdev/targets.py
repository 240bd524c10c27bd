"""What a WebSocket request asks for: its target, and the facts the program's environment tells.

The target may be the console's envelope (``/_wsdev/ws?path=…&query=…&name=…``, behaviour C1,
C9), which names the program's path and query itself; the facts are the request as the CGI
variables describe it (behaviour A2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, quote

from yarl import URL

from wsdev.clientname import PARAM as NAME_PARAM
from wsdev.clientname import clean_name, with_name
from wsdev.config import Config
from wsdev.connection import Connection
from wsdev.console import CONSOLE_PREFIX
from wsdev.environ import RequestFacts
from wsdev.handshake import Handshake

CONSOLE_SOCKET = CONSOLE_PREFIX + "ws"


@dataclass(frozen=True, slots=True)
class Target:
    """Which program a handshake asks for, and how the client named it."""

    raw: str  # the request target as sent
    path: str  # the decoded path the program is asked for
    query: str  # its query string, percent-encoded
    console: bool  # the console's envelope (``/_wsdev/ws?path=…&query=…``)
    name: str = ""  # the name given in the console, cleaned (behaviour C9)


def read_target(raw: str) -> Target:
    """What the request target asks for; the console's envelope names the real path."""
    path, query = decode_target(raw)
    if path != CONSOLE_SOCKET:
        return Target(raw, path, query, False)
    params = dict(parse_qsl(raw.partition("?")[2], keep_blank_values=True))
    wanted = params.get("path", "/") or "/"
    if not wanted.startswith("/"):
        wanted = "/" + wanted
    wanted_query = params.get("query", "")
    encoded = quote(wanted, safe="/:@!$&'()*+,;=-._~")
    return Target(
        f"{encoded}?{wanted_query}" if wanted_query else encoded,
        wanted,
        wanted_query,
        True,
        clean_name(params.get(NAME_PARAM, "")),
    )


def named(target: Target) -> Target:
    """The console's target with its name added to the query the program sees (--names, C9)."""
    query = with_name(target.query, target.name)
    path = target.raw.partition("?")[0]
    return Target(f"{path}?{query}", target.path, query, target.console, target.name)


def decode_target(target: str) -> tuple[str, str]:
    """The path and query of ``target`` decoded as aiohttp decodes a request's."""
    raw_path, _, raw_query = target.partition("?")
    if "%" not in target and "+" not in raw_query:
        return raw_path, raw_query  # nothing to decode (the tests check yarl agrees)
    try:
        url = URL.build(path=raw_path, query_string=raw_query, encoded=True)
    except ValueError:
        return raw_path, raw_query
    return url.path, url.query_string


def request_facts(connection: Connection, handshake: Handshake, target: Target) -> RequestFacts:
    """The request as the environment tells it to the program (behaviour A2)."""
    transport = connection.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    remote_addr = remote_port = ""
    if isinstance(peer, tuple) and len(peer) >= 2:
        remote_addr, remote_port = str(peer[0]), str(peer[1])
    return RequestFacts(
        method="GET",
        raw_path=target.raw,
        version="HTTP/1.1",
        host=handshake.header("Host"),
        headers=handshake.headers,
        remote_addr=remote_addr,
        remote_port=remote_port,
        remote_host=remote_addr,
    )


def with_remote_host(facts: RequestFacts, host: str) -> RequestFacts:
    return replace(facts, remote_host=host)


def header_of(facts: RequestFacts, name: str) -> str:
    lowered = name.lower()
    return next((value for key, value in facts.headers if key.lower() == lowered), "")


def url_of(config: Config, facts: RequestFacts) -> str:
    return f"{config.http_scheme}://{facts.host}{facts.raw_path}"
