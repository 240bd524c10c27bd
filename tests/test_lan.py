"""``lan``: the machine's addresses for a room, and the QR code of a URL (behaviour B14)."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest

from wsdev.lan import lan_addresses, qr_lines, shown_hosts

HALVES = {" ": (0, 0), "▀": (1, 0), "▄": (0, 1), "█": (1, 1)}


def test_lan_addresses_are_ipv4_and_never_loopback() -> None:
    for address in lan_addresses():
        ip = ipaddress.ip_address(address)
        assert ip.version == 4
        assert not ip.is_loopback and not ip.is_link_local


def test_a_wildcard_bind_is_shown_as_localhost_and_each_lan_address() -> None:
    assert shown_hosts("0.0.0.0") == ["localhost", *lan_addresses()]
    assert shown_hosts("10.1.2.3") == ["10.1.2.3"]


def test_the_terminal_qr_code_scans_back_to_the_url(tmp_path: Path) -> None:
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        pytest.skip("zbarimg (Debian's zbar-tools) is not installed")
    url = "http://192.168.1.20:8080/?wsdev_key=4kP9q2"
    lines = qr_lines(url)
    assert len({len(line) for line in lines}) == 1, "ragged rows"
    # Back from half blocks to modules, scaled up 8x as a black-on-white bitmap (PBM).
    modules = []
    for line in lines:
        modules.append([HALVES[c][0] for c in line])
        modules.append([HALVES[c][1] for c in line])
    scale = 8
    rows = [" ".join(str(m) for m in row for _ in range(scale)) for row in modules]
    image = tmp_path / "qr.pbm"
    width, height = len(modules[0]) * scale, len(modules) * scale
    image.write_text(f"P1\n{width} {height}\n" + "".join((r + "\n") * scale for r in rows))
    decoded = subprocess.run(
        [zbarimg, "--quiet", "--raw", str(image)], capture_output=True, text=True, check=True
    )
    assert decoded.stdout.strip() == url
