"""Which WebSocket upgrades ``--origin`` and ``--sameorigin`` let through (behaviour A5).

The rules are websocketd's, checked against 0.4.1 by running it:

- With neither flag, every upgrade is allowed.
- With either flag, a missing, empty or ``null`` Origin is refused, and so is one that does not
  parse as a URL (``example.com``, ``http://[::1``, ``http://h:abc``).
- An Origin's port defaults to 443 for ``https`` and 80 otherwise. The scheme is compared
  case-insensitively, the host exactly (websocketd does not fold the host's case, and browsers
  always send it in lower case), ports as written.
- ``--sameorigin``: the Origin's host and port equal the Host header's (whose port defaults to
  443 under TLS, else 80); the scheme is not compared.
- ``--origin=LIST``: each entry is ``host``, ``host:port`` or ``scheme://host[:port]``. An entry
  without a port accepts any port; one with a scheme accepts only that scheme. Both flags
  together must both pass.

The entries ``*`` (every origin) and ``null`` (``Origin: null``) are wsdev's own: ``guard.py``
decides them and hands this rule the other entries (behaviour B10).

Where websocketd misbehaves wsdev does the sensible thing instead: an entry shorter than three
characters crashes websocketd's handler and matches nothing here; a bracketed IPv6 host without a
port (``[::1]``) keeps its brackets in websocketd and so never matches, while here it means that
address on any port. An unparsable Origin with neither flag set is refused by websocketd but
allowed here: without a restriction there is nothing to check (``guard.py`` then applies wsdev's
default).
"""

from __future__ import annotations

import re

from wsdev.config import Config

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
# What an authority may hold (RFC 3986 unreserved, sub-delims, ':', '[]', '%' escapes, and any
# non-ASCII); anything else, such as a space or '#', makes Go's URL parser refuse the Origin.
_AUTHORITY = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%\x80-\U0010ffff]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def origin_allowed(origin: str | None, host: str, config: Config) -> bool:
    """True when an upgrade with this Origin and Host header may proceed."""
    return origin_refusal(origin, host, config) is None


def origin_refusal(origin: str | None, host: str, config: Config) -> str | None:
    """Why the upgrade is refused (websocketd's wording, for the log), or None to allow it."""
    entries = tuple(entry for entry in config.origins if entry)
    if not entries and not config.sameorigin:
        return None
    if origin is None or origin.strip() in ("", "null"):
        return "Origin header is missing or null"
    parsed = parse_origin(origin.strip())
    if parsed is None:
        return f"Origin parsing error: {origin!r} is not a URL"
    scheme, server, port = parsed
    if config.sameorigin:
        local = split_host_port(host, tls=config.ssl)
        if local is None or local[:2] != (server, port):
            return "Same origin policy mismatch"
    if entries and not any(_entry_matches(entry, scheme, server, port) for entry in entries):
        return "Origin is not listed in allowed list"
    return None


def parse_origin(origin: str) -> tuple[str, str, str] | None:
    """``(scheme, host, port)`` of an Origin header, the port defaulted by scheme; None if bad.

    Mirrors what websocketd gets from Go's ``url.ParseRequestURI``: ``file:``, ``/path`` and
    other URLs without an authority parse, with an empty host.
    """
    match = _SCHEME.match(origin)
    if match is None:
        return ("", "", "80") if origin.startswith("/") else None
    scheme = match.group()[:-1].lower()
    rest = origin[match.end() :].partition("?")[0]
    if not rest.startswith("//"):
        return scheme, "", _default_port(scheme == "https")
    authority = rest[2:].partition("/")[0].rpartition("@")[2]
    if not _AUTHORITY.fullmatch(authority) or _BAD_ESCAPE.search(authority):
        return None
    split = split_host_port(authority, tls=scheme == "https")
    if split is None:
        return None
    server, port, _ = split
    return scheme, server, port


def split_host_port(host: str, *, tls: bool) -> tuple[str, str, bool] | None:
    """``(host, port, port_was_given)`` with IPv6 brackets removed; None if malformed.

    The port is kept as written (websocketd compares ports as strings) and defaults to 443 or 80.
    """
    default = _default_port(tls)
    if host.startswith("["):
        end = host.find("]")
        if end == -1:
            return None
        name, after = host[1:end], host[end + 1 :]
        if not after:
            return name, default, False
        if not after.startswith(":") or not _valid_port(after[1:]):
            return None
        return name, after[1:], True
    colons = host.count(":")
    if colons == 0:
        return host, default, False
    if colons > 1:
        return None  # an IPv6 address must be bracketed to carry a port
    name, _, port = host.partition(":")
    if not _valid_port(port):
        return None
    return name, port, True


def _entry_matches(entry: str, scheme: str, server: str, port: str) -> bool:
    scheme_end = entry.find("://")
    if scheme_end > 0:
        if entry[:scheme_end].lower() != scheme:
            return False
        entry = entry[scheme_end + 3 :]
    split = split_host_port(entry, tls=False)
    if split is None:
        return False
    allowed_server, allowed_port, port_given = split
    if allowed_server != server:
        return False
    return not port_given or allowed_port == port


def _valid_port(port: str) -> bool:
    # Go accepts an empty port after the colon ("example.com:") and any run of digits.
    return port == "" or (port.isascii() and port.isdigit())


def _default_port(tls: bool) -> str:
    return "443" if tls else "80"
