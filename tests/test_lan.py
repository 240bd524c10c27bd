"""``lan``: the machine's addresses for a room, and the QR code of a URL (behaviour B14)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from terminalqr import scan
from wsdev.lan import lan_addresses, qr_lines, shown_hosts


def test_lan_addresses_are_ipv4_and_never_loopback() -> None:
    for address in lan_addresses():
        ip = ipaddress.ip_address(address)
        assert ip.version == 4
        assert not ip.is_loopback and not ip.is_link_local


def test_a_wildcard_bind_is_shown_as_localhost_and_each_lan_address() -> None:
    assert shown_hosts("0.0.0.0") == ["localhost", *lan_addresses()]
    assert shown_hosts("10.1.2.3") == ["10.1.2.3"]


def test_the_terminal_qr_code_scans_back_to_the_url(tmp_path: Path) -> None:
    url = "http://192.168.1.20:8080/?wsdev_key=4kP9q2"
    lines = qr_lines(url)
    assert len({len(line) for line in lines}) == 1, "ragged rows"
    assert scan(lines, tmp_path) == url
