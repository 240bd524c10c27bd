"""wsdev: turn any program that reads stdin and writes stdout into a WebSocket server.

A drop-in for websocketd with a browser console, a live terminal dashboard and restart on edit.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
