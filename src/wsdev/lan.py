"""This machine's addresses on the local network, and the URL a room can type or scan.

A workshop needs URLs that students' laptops reach: not ``localhost``, and not the ``0.0.0.0``
a server binds to. The addresses come from the kernel's list of interfaces (IPv4, up or not,
loopback and link-local left out), private ranges first, since that is where a classroom's
Wi-Fi lives. The QR code is drawn with half blocks, two rows of modules per line of text, so it
fits beside the rest of the start-up output.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct
from collections.abc import Sequence

import segno

# ioctl(2) request that reads an interface's IPv4 address (linux/sockios.h).
_SIOCGIFADDR = 0x8915
WILDCARDS = ("0.0.0.0", "::", "")


def lan_addresses() -> list[str]:
    """The machine's IPv4 addresses that other machines may reach, most likely first."""
    found: list[str] = []
    for address in _interface_addresses() or _outbound_address():
        ip = ipaddress.ip_address(address)
        if ip.is_loopback or ip.is_link_local or ip.is_unspecified or address in found:
            continue
        found.append(address)
    # Private ranges (a classroom's Wi-Fi) before public ones; otherwise the kernel's order.
    return sorted(found, key=lambda a: not ipaddress.ip_address(a).is_private)


def _interface_addresses() -> list[str]:
    addresses = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError:
                continue  # no IPv4 address on this interface
            addresses.append(socket.inet_ntoa(answer[20:24]))
    return addresses


def _outbound_address() -> list[str]:
    """The address the kernel would send from (no packet leaves: UDP connect only routes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe, contextlib.suppress(OSError):
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere for real
        return [str(probe.getsockname()[0])]
    return []


def shown_hosts(bound: str) -> list[str]:
    """The hosts to print in URLs for a bound address: a wildcard means every LAN address."""
    if bound in WILDCARDS:
        return ["localhost", *lan_addresses()]
    return [bound]


def room_link(console_urls: Sequence[str]) -> str | None:
    """The console URL a room can reach: the first that does not say localhost."""
    return next((url for url in console_urls if "://localhost:" not in url), None)


def qr_lines(text: str) -> list[str]:
    """``text`` as a QR code of half blocks: dark modules are drawn, light ones are spaces.

    Print it dark on light (a phone's camera reads either way, but not every scanner does).
    """
    code = segno.make(text, error="l", micro=False)
    rows = [list(row) for row in code.matrix_iter(scale=1, border=2)]
    if len(rows) % 2:
        rows.append([0] * len(rows[0]))
    glyphs = {(0, 0): " ", (1, 0): "▀", (0, 1): "▄", (1, 1): "█"}
    return [
        "".join(
            glyphs[(int(bool(top)), int(bool(bottom)))]
            for top, bottom in zip(upper, lower, strict=True)
        )
        for upper, lower in zip(rows[::2], rows[1::2], strict=True)
    ]
