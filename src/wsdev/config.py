"""The settings of one wsdev run: built once by the command line, validated, then frozen.

Everything downstream (server, bridge, reloader, dashboard) reads a ``Config`` and never parses
strings again, so each rule about a flag lives in ``cli.py`` and each fact derived from the flags
(resolved paths, the program's argv) is computed here exactly once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from wsdev.proxies import NO_PROXIES, Network, TrustedProxies

#: The websocketd release whose behaviour (and unreleased flags) wsdev reproduces.
WEBSOCKETD_COMPAT_VERSION = "0.5.0"

LOG_LEVELS = ("debug", "trace", "access", "info", "error", "fatal")
# --reload: what a save does to open connections (behaviour D2).
RELOAD_MODES = ("all", "new")


@dataclass(frozen=True)
class Config:
    """Every option of one run, with websocketd's flags first and wsdev's own after."""

    # What to serve: ``command`` is the program's argv with argv[0] resolved to an absolute path;
    # empty in ``--dir`` mode, where each request names its own script under ``script_dir``.
    command: tuple[str, ...] = ()
    command_display: str = ""
    script_dir: Path | None = None

    # websocketd's flags.
    port: int = 8080
    addresses: tuple[str, ...] = ()  # empty: localhost only (behaviour B7)
    unixsocket: Path | None = None
    sameorigin: bool = False
    origins: tuple[str, ...] = ()
    ssl: bool = False
    sslcert: Path | None = None
    sslkey: Path | None = None
    sslca: Path | None = None
    redirport: int = 0
    passenv: tuple[str, ...] = ("PATH", "LD_LIBRARY_PATH")
    binary: bool = False
    reverselookup: bool = False
    staticdir: Path | None = None
    cgidir: Path | None = None
    devconsole: bool = False
    maxforks: int = 0
    closems: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    headers_ws: tuple[tuple[str, str], ...] = ()
    headers_http: tuple[tuple[str, str], ...] = ()
    loglevel: str = "access"
    pingms: int = 0
    maxframesize: int = 1024 * 1024
    passstderr: bool = False

    # wsdev's own options.
    open_browser: bool = False
    console: bool = True
    reload: bool = True
    # What a save does to open connections (behaviour D2): "all" closes them, "new" keeps them.
    reload_mode: str = "all"
    watch: tuple[Path, ...] = ()
    dashboard: bool = False  # the command line turns it on when stdout is a terminal
    max_line_bytes: int = 16 * 1024 * 1024
    # Seconds from accept to a complete first request head, 0 for none (behaviour B15).
    handshake_timeout: float = 10.0
    # Python children get PYTHONUNBUFFERED=1 (behaviour B9); decided once from the command.
    python_child: bool = False
    # Limits for a shared server (behaviour B13); 0 means none.
    max_per_client: int = 0
    max_lifetime: float = 0.0
    idle_timeout: float = 0.0
    # Host names answered on loopback besides this machine's own (behaviour B10); "*": any.
    allow_hosts: tuple[str, ...] = ()
    # A room on the local network (behaviour B14): --lan, and the join secret ("" for none).
    lan: bool = False
    join_secret: str = ""
    names: bool = False  # --names: the program sees the console's name in its query (C9)
    record: Path | None = None  # --record: one transcript per connection here (behaviour H1)
    # Running as a service: behind proxies, several instances, a service manager (behaviour B12).
    drain: float = 0.0  # seconds live sessions get to end by themselves at shutdown
    trusted_proxies: TrustedProxies = NO_PROXIES
    metrics: bool = False
    metrics_from: tuple[Network, ...] = ()  # besides loopback, who may read health and metrics

    @property
    def scheme(self) -> str:
        return "wss" if self.ssl else "ws"

    @property
    def http_scheme(self) -> str:
        return "https" if self.ssl else "http"

    @property
    def serves_websocket(self) -> bool:
        return bool(self.command) or self.script_dir is not None

    @property
    def console_on_any_path(self) -> bool:
        """The console owns plain GETs unless a static or CGI folder claims them (behaviour C1)."""
        return self.console and self.staticdir is None and self.cgidir is None

    def replace(self, **changes: object) -> Config:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
