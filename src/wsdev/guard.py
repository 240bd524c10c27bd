"""Who may reach wsdev from a web browser (behaviour B10): the Host check against DNS rebinding
and the Origin rules, decided in one place for WebSocket upgrades (``sessions``) and for plain
HTTP (``routes``).

A browser is the one client that visits other sites while it can reach the developer's loopback
port, so the rules are about what a browser sends: every request of a browser carries a Host
header, and every WebSocket upgrade and cross-site request an ``Origin``. Clients that send no
Origin (curl, scripts, websocketd's clients) are not pages and are never refused for it.

Everything that does not depend on the request (whether wsdev listens on loopback only, the
names of this machine, which rule the flags choose) is worked out once, when the ``Guard`` is
built, and each decision is remembered, so a request with the usual Host and Origin costs one
dictionary look-up. Nothing here looks a name up in DNS after start-up.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import socket

from wsdev.config import Config
from wsdev.origin import origin_refusal, parse_origin, split_host_port

# Names that always mean this machine; any ``*.localhost`` does too (RFC 6761, and browsers
# resolve them to loopback themselves).
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
# The literal --origin entries that are wsdev's, not a host: every origin, and ``Origin: null``.
ANY_ORIGIN = "*"
NULL_ORIGIN = "null"
ANY_HOST = "*"
# Decisions remembered: browsers and clients repeat the same few Host and Origin headers, and a
# client that sends ever-new ones only empties the memory.
DECISION_CACHE_SIZE = 256
# What an Origin may look like to be repeated in a hint as a ready-to-paste --origin value.
_PASTEABLE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[A-Za-z0-9.\-_~\[\]:]+")


class Route(enum.Enum):
    """What a request asks for, which decides the Origin rule it meets."""

    OWN = "own"  # wsdev's own routes under /_wsdev/: the console's socket, the events feed
    PROGRAM = "program"  # a WebSocket upgrade that runs the program
    PLAIN = "plain"  # plain HTTP: the console page, static files, CGI, 404


class OriginRule(enum.Enum):
    """Which pages may reach the program, as chosen by the flags (behaviour A5, B10)."""

    LOCAL = "local"  # the default on loopback: pages on this machine only
    WEBSOCKETD = "websocketd"  # --origin / --sameorigin: websocketd's rule, for upgrades
    ANY = "any"  # --origin=*, or the default beyond loopback (websocketd checks nothing)


class Guard:
    """The one decision: may this request, with this Host and Origin, be served?"""

    def __init__(self, config: Config, *, hostname: str | None = None) -> None:
        self.tls = config.ssl
        self.loopback_only = listens_on_loopback_only(config)
        allowed_hosts = {name.lower().rstrip(".") for name in config.allow_hosts}
        self.check_host = self.loopback_only and ANY_HOST not in allowed_hosts
        # Names a Host (or a page's Origin) may carry on loopback: loopback names, this machine's
        # own name and its mDNS ``.local`` form, and the user's --allow-host names.
        self.local_names = frozenset(
            LOOPBACK_NAMES
            | machine_names(socket.gethostname() if hostname is None else hostname)
            | allowed_hosts
        )
        entries = tuple(entry for entry in config.origins if entry)
        self.allow_null = NULL_ORIGIN in entries
        websocketd_entries = tuple(e for e in entries if e not in (ANY_ORIGIN, NULL_ORIGIN))
        if ANY_ORIGIN in entries:
            self.rule = OriginRule.ANY
        elif websocketd_entries or config.sameorigin:
            self.rule = OriginRule.WEBSOCKETD
        elif self.loopback_only:
            self.rule = OriginRule.LOCAL
        else:
            self.rule = OriginRule.ANY
        # origin.py implements websocketd's rule on a Config; it gets the entries that are hosts.
        self._websocketd = config.replace(origins=websocketd_entries)
        self._decided: dict[tuple[Route, str, str | None], str | None] = {}

    def refusal(self, route: Route, host: str, origin: str | None) -> str | None:
        """Why the request is refused with 403 (for the log and the body), or None to serve it.

        ``host`` is the Host header ("" when there is none), ``origin`` the Origin header (None
        when there is none).
        """
        key = (route, host, origin)
        try:
            return self._decided[key]
        except KeyError:
            pass
        why = self._decide(route, host, origin)
        if len(self._decided) >= DECISION_CACHE_SIZE:
            self._decided.clear()
        self._decided[key] = why
        return why

    def _decide(self, route: Route, host: str, origin: str | None) -> str | None:
        if self.check_host and host and not self._host_allowed(host):
            return _host_refusal(host)
        if route is Route.OWN:
            if not origin or self._same_origin(origin, host):
                return None
            return (
                f"Origin {origin!r} is not this server: wsdev's own routes (/_wsdev/) answer "
                "its own pages and clients that send no Origin; open the console from this server"
            )
        if origin is not None and self.allow_null and origin.strip() == NULL_ORIGIN:
            return None
        rule = self.rule
        if rule is OriginRule.ANY:
            return None
        if rule is OriginRule.WEBSOCKETD:
            if route is Route.PLAIN:
                return None  # websocketd checks upgrades only
            why = origin_refusal(origin, host, self._websocketd)
            return None if why is None else _websocketd_refusal(why, origin)
        if not origin or self._origin_local(origin, host):
            return None
        if origin.strip() == NULL_ORIGIN:
            return (
                "Origin 'null' (a sandboxed frame or a file:// page) is refused while wsdev "
                "listens on loopback: serve the page from wsdev with --staticdir=DIR, or allow "
                "it with --origin=null"
            )
        return (
            f"Origin {origin!r} is not a page on this machine (refused while wsdev listens on "
            f"loopback): to allow it, add --origin={_pasteable(origin)} (websocketd's rule: only "
            "the origins listed), or --origin=* for any page"
        )

    # ------------------------------------------------------------------ the pieces

    def _host_allowed(self, host: str) -> bool:
        split = split_host_port(host, tls=False)
        return split is not None and self._is_local(split[0])

    def _is_local(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        return name in self.local_names or name.endswith(".localhost") or is_loopback_ip(name)

    def _origin_local(self, origin: str, host: str) -> bool:
        """The page is on this machine: a local name or address, or the server's own."""
        parsed = parse_origin(origin.strip())
        if parsed is None or not parsed[1]:
            return False
        return self._is_local(parsed[1]) or self._same_origin(origin, host)

    def _same_origin(self, origin: str, host: str) -> bool:
        parsed = parse_origin(origin.strip())
        local = split_host_port(host, tls=self.tls)
        if parsed is None or local is None or not parsed[1]:
            return False
        _, server, port = parsed
        return (server.lower(), port) == (local[0].lower(), local[1])


def listens_on_loopback_only(config: Config) -> bool:
    """Only this machine can connect: no --address (behaviour B7) or only loopback ones.

    A Unix socket is not: it usually sits behind a proxy that brings the public's requests, so
    the proxy's own rules apply, as under websocketd. A name given to --address is resolved here,
    once, as binding it does.
    """
    if config.unixsocket is not None:
        return False
    return all(_address_is_loopback(address) for address in config.addresses)


def machine_names(hostname: str) -> frozenset[str]:
    """This machine's name as a browser may reach it: as set, its first label, and the ``.local``
    form of each (mDNS), all in lower case."""
    name = hostname.lower().rstrip(".")
    if not name:
        return frozenset()
    names = {name, name.partition(".")[0]}
    return frozenset(names | {n + ".local" for n in names if not n.endswith(".local")})


def is_loopback_ip(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _address_is_loopback(address: str) -> bool:
    name = address.strip("[]").lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost") or is_loopback_ip(name):
        return True
    if not name:
        return False  # an empty --address binds every interface
    try:
        found = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False  # binding fails too, and says why
    return bool(found) and all(_resolved_loopback(info[4][0]) for info in found)


def _resolved_loopback(address: object) -> bool:
    return isinstance(address, str) and is_loopback_ip(address.partition("%")[0])


def _host_refusal(host: str) -> str:
    split = split_host_port(host, tls=False)
    name = split[0] if split is not None and split[0] else "NAME"
    if ":" in name:
        name = f"[{name}]"
    return (
        f"Host {host!r} is not a name of this machine (refused while wsdev listens on loopback, "
        f"against DNS rebinding): to serve it under this name, add --allow-host={name}"
    )


def _websocketd_refusal(why: str, origin: str | None) -> str:
    if why.startswith("Same origin"):
        return f"origin not allowed: {why} (--sameorigin allows pages of the Host's origin only)"
    if origin is None or origin.strip() in ("", NULL_ORIGIN):
        return f"origin not allowed: {why} (--origin and --sameorigin require one)"
    return f"origin not allowed: {why} (to allow it, add {_pasteable(origin)} to --origin)"


def _pasteable(origin: str) -> str:
    """``scheme://host[:port]`` of the Origin if it is plain enough to paste, else a placeholder."""
    origin = origin.strip()
    match = _PASTEABLE.match(origin)
    if match is None or origin[match.end() :][:1] not in ("", "/", "?"):
        return "ORIGIN"
    return match.group()
