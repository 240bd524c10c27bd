"""Reads back a QR code drawn in a terminal with half blocks, as a phone's camera would: the
rows become a black-on-white bitmap (PBM) that Debian's ``zbarimg`` decodes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

# Each character is two modules, one above the other: (top, bottom), 1 for dark.
HALVES = {" ": (0, 0), "▀": (1, 0), "▄": (0, 1), "█": (1, 1)}
SCALE = 8  # pixels per module
QUIET = 2  # light modules added around the code, so a code drawn without its margin still reads


def scan(rows: list[str], folder: Path) -> str:
    """The text of the QR code in ``rows``; skips the test when zbarimg is not installed."""
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        pytest.skip("zbarimg (Debian's zbar-tools) is not installed")
    width = max(len(row) for row in rows)
    modules = [[0] * width for _ in range(QUIET)]
    for row in rows:
        padded = row.ljust(width)
        modules.append([HALVES[c][0] for c in padded])
        modules.append([HALVES[c][1] for c in padded])
    modules += [[0] * width for _ in range(QUIET)]
    modules = [[0] * QUIET + row + [0] * QUIET for row in modules]
    lines = [" ".join(str(m) for m in row for _ in range(SCALE)) + "\n" for row in modules]
    image = folder / "qr.pbm"
    size = f"{len(modules[0]) * SCALE} {len(modules) * SCALE}"
    image.write_text(f"P1\n{size}\n" + "".join(line * SCALE for line in lines))
    decoded = subprocess.run(
        [zbarimg, "--quiet", "--raw", str(image)], capture_output=True, text=True, check=True
    )
    return decoded.stdout.strip()
