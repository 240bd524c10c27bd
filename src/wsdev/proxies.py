"""Who the client really is behind a trusted reverse proxy (behaviour B12).

A request whose peer is a ``--trusted-proxy`` (an address, a network, or ``unix`` for peers on
``--unixsocket``) names its client in ``X-Forwarded-For`` or, without it, in ``Forwarded``
(RFC 7239), and its scheme in ``X-Forwarded-Proto`` or the client's ``Forwarded`` element.
The client is the last hop that is not itself a trusted proxy: each proxy appends the address it
received the request from, so everything left of that hop may be forged by the client. Requests
from anyone else are taken as they came; their headers reach the program only as ``HTTP_*``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from wsdev.environ import RequestFacts

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNIX = "unix"


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The peers whose forwarding headers are believed."""

    networks: tuple[Network, ...] = ()
    unix: bool = False  # peers on a Unix socket (they have no address)

    def __bool__(self) -> bool:
        return bool(self.networks) or self.unix

    def trusts(self, address: str) -> bool:
        """Whether a peer at ``address`` (``""``: a Unix socket peer) is a trusted proxy."""
        if not address:
            return self.unix
        ip = parse_ip(address)
        return ip is not None and any(ip in net for net in self.networks)


NO_PROXIES = TrustedProxies()


@dataclass(frozen=True, slots=True)
class Client:
    """The client a trusted proxy forwarded: its address, its port if given, its scheme."""

    address: str
    port: str
    https: bool | None  # None: the proxy did not say


def parse_trusted(values: list[str]) -> TrustedProxies:
    """``--trusted-proxy`` values (each an address, a CIDR network or ``unix``; commas allowed).

    Raises ``ValueError`` with a message naming the bad value.
    """
    networks: list[Network] = []
    unix = False
    for value in (part.strip() for v in values for part in v.split(",")):
        if not value:
            continue
        if value.lower() == UNIX:
            unix = True
            continue
        networks.append(parse_network(value, "--trusted-proxy"))
    return TrustedProxies(tuple(networks), unix)


def parse_network(value: str, flag: str) -> Network:
    """An address or CIDR network (``10.0.0.0/8``, ``::1``); ``ValueError`` naming ``flag``."""
    try:
        return ipaddress.ip_network(value.strip("[]"), strict=False)
    except ValueError:
        raise ValueError(
            f"invalid value {value!r} for {flag}: expected an address or a network "
            "such as 10.0.0.0/8"
        ) from None


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_client(
    trusted: TrustedProxies, peer: str, headers: tuple[tuple[str, str], ...]
) -> Client | None:
    """The client behind ``peer`` when ``peer`` is a trusted proxy that named one, else None.

    ``X-Forwarded-For`` comes first when it is there: nearly every proxy appends to it, while
    many pass a client's own ``Forwarded`` header on untouched, forged or not. ``Forwarded``
    then only adds the port and scheme its proxy gave for that same client address.
    """
    if not trusted or not trusted.trusts(peer):
        return None
    forwarded = _joined(headers, "forwarded")
    elements = _forwarded_elements(forwarded) if forwarded else []
    xff = _joined(headers, "x-forwarded-for")
    hops = [hop.strip() for hop in xff.split(",")] if xff else [e.get("for", "") for e in elements]
    index = _client_index(trusted, hops)
    if index is None:
        return None
    address, port = _split_node(hops[index])
    if not address:
        return None
    if not xff:
        return Client(address, port, _https(elements[index].get("proto", "")))
    same = next(
        (e for e in reversed(elements) if _split_node(e.get("for", ""))[0] == address), None
    )
    protos = [p.strip() for p in _joined(headers, "x-forwarded-proto").split(",") if p.strip()]
    # The proxy next to wsdev sets the scheme it was reached with last.
    proto = protos[-1] if protos else (same.get("proto", "") if same else "")
    if same is not None:
        port = port or _split_node(same.get("for", ""))[1]
    return Client(address, port, _https(proto))


def apply_forwarding(facts: RequestFacts, trusted: TrustedProxies) -> RequestFacts:
    """``facts`` as the real client made them: the one place forwarding headers are read, for a
    WebSocket session and a CGI request alike."""
    client = forwarded_client(trusted, facts.remote_addr, facts.headers)
    if client is None:
        return facts
    https = facts.https if client.https is None else client.https
    return replace(
        facts,
        remote_addr=client.address,
        remote_port=client.port,
        remote_host=client.address,
        https=https,
    )


# Where a plain HTTP request keeps the client's port a trusted proxy gave (REMOTE_PORT for CGI).
FORWARDED_PORT = "wsdev.forwarded_port"


def as_the_client_sent(request: web.Request, trusted: TrustedProxies) -> web.Request:
    """A plain HTTP request as its client made it (address and scheme), so the log, the
    loopback-only routes and CGI's environment all see the client, not the proxy."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
    client = forwarded_client(trusted, address, tuple(request.headers.items()))
    if client is None:
        return request
    scheme = request.scheme if client.https is None else ("https" if client.https else "http")
    forwarded = request.clone(remote=client.address, scheme=scheme)
    forwarded[FORWARDED_PORT] = client.port
    return forwarded


def _client_index(trusted: TrustedProxies, hops: list[str]) -> int | None:
    """The last hop that is not a trusted proxy (or the first hop when all of them are)."""
    if not hops:
        return None
    for index in range(len(hops) - 1, -1, -1):
        address, _ = _split_node(hops[index])
        if not address or not trusted.trusts(address):
            return index
    return 0


def _split_node(node: str) -> tuple[str, str]:
    """``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:5678`` or ``::1`` → (address, port); an unknown
    or obfuscated node (``unknown``, ``_hidden``) gives ``("", "")``."""
    node = node.strip().strip('"')
    port = ""
    if node.startswith("["):
        end = node.find("]")
        if end == -1:
            return "", ""
        host, rest = node[1:end], node[end + 1 :]
        if rest.startswith(":"):
            port = rest[1:]
    elif node.count(":") == 1:
        host, _, port = node.partition(":")
    else:
        host = node
    address = parse_ip(host)
    if address is None:
        return "", ""
    return str(address), port if port.isdigit() else ""


def _forwarded_elements(value: str) -> list[dict[str, str]]:
    """RFC 7239 ``Forwarded``: its comma-separated elements, each ``key=value`` pairs."""
    elements: list[dict[str, str]] = []
    for element in _split_outside_quotes(value, ","):
        pairs: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            key, eq, val = pair.partition("=")
            if eq:
                pairs[key.strip().lower()] = val.strip().strip('"')
        elements.append(pairs)
    return elements


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _joined(headers: tuple[tuple[str, str], ...], name: str) -> str:
    """Every ``name`` header, joined with commas in the order they came (RFC 9110 §5.3)."""
    return ", ".join(value for key, value in headers if key.lower() == name)


def _https(proto: str) -> bool | None:
    proto = proto.strip().lower()
    if proto in ("https", "wss"):
        return True
    if proto in ("http", "ws"):
        return False
    return None
