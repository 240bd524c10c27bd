"""wsdev's flags: the table FLAGS that parsing, ``--help`` and the ``WSDEV_<NAME>`` variables all
read, how a flag's value is read, and the help and licence texts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from wsdev import __version__
from wsdev.errors import UsageError


@dataclass(frozen=True)
class Flag:
    name: str
    kind: str  # "bool", "int", "seconds", "str", "list" (repeatable)
    help: str
    metavar: str = ""
    wsdev_only: bool = False


FLAGS: tuple[Flag, ...] = (
    Flag("port", "int", "HTTP port to listen on (default 8080; 0 picks a free port)", "PORT"),
    Flag("address", "list", "address to bind to, repeatable (default: localhost only)", "ADDR"),
    Flag(
        "sameorigin", "bool", "allow upgrades only from pages of the Host's origin (websocketd's)"
    ),
    Flag(
        "origin", "str", "allow upgrades only from host[:port],scheme://host[:port] (* any)", "LIST"
    ),
    Flag("ssl", "bool", "serve over TLS (needs --sslcert and --sslkey)"),
    Flag("sslcert", "str", "TLS certificate (PEM) for --ssl", "FILE"),
    Flag("sslkey", "str", "TLS private key (PEM) for --ssl", "FILE"),
    Flag("sslca", "str", "require client certificates signed by this CA (PEM)", "FILE"),
    Flag(
        "redirport", "int", "also answer plain HTTP on this port with a 301 to the TLS URL", "PORT"
    ),
    Flag(
        "passenv",
        "str",
        "environment variables passed to programs (default PATH,LD_LIBRARY_PATH)",
        "LIST",
    ),
    Flag("binary", "bool", "binary mode: stdout bytes go out as binary messages"),
    Flag("reverselookup", "bool", "REMOTE_HOST from reverse DNS instead of the address"),
    Flag("dir", "str", "serve every program in DIR, one per URL path", "DIR"),
    Flag("staticdir", "str", "serve static files from DIR", "DIR"),
    Flag("cgidir", "str", "run CGI scripts from DIR over plain HTTP", "DIR"),
    Flag("devconsole", "bool", "serve the browser console (it is on unless --no-console)"),
    Flag("maxforks", "int", "refuse (429) connections over N running programs (0: no limit)", "N"),
    Flag("closems", "int", "extra milliseconds before each signal when ending a program", "MS"),
    Flag("header", "list", "'Name: value' header on every response, repeatable", "HEADER"),
    Flag(
        "header-ws", "list", "'Name: value' header on WebSocket upgrades only, repeatable", "HEADER"
    ),
    Flag(
        "header-http", "list", "'Name: value' header on plain HTTP responses, repeatable", "HEADER"
    ),
    Flag("loglevel", "str", "debug, trace, access, info, error or fatal (default access)", "LEVEL"),
    Flag("pingms", "int", "ping clients every MS milliseconds; drop one silent for two", "MS"),
    Flag(
        "maxframesize", "int", "largest message accepted from a client (default 1048576)", "BYTES"
    ),
    Flag("passstderr", "bool", 'send stderr too, as {"stream":"stderr","data":…} (text mode)'),
    Flag("unixsocket", "str", "listen on this Unix socket instead of TCP", "PATH"),
    Flag("version", "bool", "print the version and exit"),
    Flag("license", "bool", "print the licence and exit"),
    Flag("help", "bool", "print this help and exit"),
    # wsdev's own options: also accepted after COMMAND and as WSDEV_<NAME> variables.
    Flag("open", "bool", "open the console in the default browser once listening", wsdev_only=True),
    Flag("no-console", "bool", "do not serve the browser console", wsdev_only=True),
    Flag("no-reload", "bool", "do not restart programs when their files change", wsdev_only=True),
    Flag(
        "reload",
        "str",
        "on a save: all (close open connections, 1012) or new (they keep their version)",
        "MODE",
        True,
    ),
    Flag(
        "watch", "list", "watch PATH for changes instead of the default, repeatable", "PATH", True
    ),
    Flag("no-dashboard", "bool", "plain websocketd log lines even on a terminal", wsdev_only=True),
    Flag(
        "allow-host",
        "list",
        "also answer requests for Host NAME on loopback, repeatable (* any)",
        "NAME",
        True,
    ),
    Flag(
        "max-line-bytes",
        "int",
        "longest stdout line before closing with 1009 (default 16 MiB)",
        "BYTES",
        True,
    ),
    Flag(
        "lan",
        "bool",
        "serve the local network too: print its URLs and a QR code; asks for a join secret",
        wsdev_only=True,
    ),
    Flag(
        "token", "str", "the join secret in the link (default under --lan: random)", "SECRET", True
    ),
    Flag(
        "no-token",
        "bool",
        "no join secret under --lan: anyone on the network gets in",
        wsdev_only=True,
    ),
    Flag(
        "max-per-client",
        "int",
        "refuse (429) connections over N live ones from one client address",
        "N",
        True,
    ),
    Flag(
        "max-lifetime",
        "seconds",
        "close connections open this long (1008, with the reason)",
        "SECONDS",
        True,
    ),
    Flag(
        "idle-timeout",
        "seconds",
        "close connections whose client sent nothing this long (1008)",
        "SECONDS",
        True,
    ),
    # Who is who (behaviour C9).
    Flag(
        "names",
        "bool",
        "let programs see the name given in the console (name= in QUERY_STRING)",
        wsdev_only=True,
    ),
    # Record, replay, test (behaviour H1).
    Flag("record", "str", "write each connection's transcript into DIR", "DIR", True),
    # Running as a service (behaviour B12).
    Flag(
        "drain",
        "seconds",
        "on SIGTERM/SIGINT refuse new connections (503) and give live ones up to SECONDS",
        "SECONDS",
        True,
    ),
    Flag(
        "trusted-proxy",
        "list",
        "believe Forwarded/X-Forwarded-* from ADDR, CIDR or unix, repeatable",
        "ADDR",
        True,
    ),
    Flag("metrics", "bool", "serve Prometheus metrics at /_wsdev/metrics", wsdev_only=True),
    Flag(
        "metrics-from",
        "list",
        "answer /_wsdev/health and /_wsdev/metrics for CIDR too, not only loopback",
        "CIDR",
        True,
    ),
    Flag(
        "handshake-timeout",
        "seconds",
        "seconds a client has to send a complete request head (default 10, 0: no limit)",
        "SECONDS",
        True,
    ),
)
BY_NAME = {f.name: f for f in FLAGS}
ALIASES = {"h": "help"}
# The words Go's strconv.ParseBool accepts, so websocketd's boolean values all work.
TRUE = {"1", "t", "T", "true", "TRUE", "True"}
FALSE = {"0", "f", "F", "false", "FALSE", "False"}

LICENSE = """\
wsdev is distributed under the BSD 2-Clause License.

Copyright (c) 2026, the wsdev developers. All rights reserved.

Redistribution and use in source and binary forms, with or without modification, are permitted
provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this list of
   conditions and the following disclaimer.
2. Redistributions in binary form must reproduce the above copyright notice, this list of
   conditions and the following disclaimer in the documentation and/or other materials provided
   with the distribution.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS OR
IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND
FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR
CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE,
DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER
IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT
OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""


def help_text() -> str:
    lines = [
        f"wsdev {__version__} — turn any stdin/stdout program into a WebSocket server",
        "",
        "Usage:",
        "  wsdev [OPTIONS] COMMAND [ARGS...]     one COMMAND process per connection",
        "  wsdev [OPTIONS] --dir=DIR             every program in DIR, by URL path",
        "  wsdev test [TRANSCRIPT|DIR]... [-- COMMAND ARGS]   replay transcripts (wsdev test -h)",
        "",
        "Example:",
        "  wsdev ./bot.py --open                 serve bot.py, open the console in a browser",
        "",
        "websocketd options (each also -flag, --flag=value or --flag value):",
    ]
    for flag in FLAGS:
        if flag.wsdev_only:
            continue
        lines.append(_help_line(flag))
    lines += [
        "",
        "wsdev options (may also follow COMMAND; each may be set by WSDEV_<NAME>, e.g.",
        "WSDEV_NO_RELOAD=1; a flag on the command line wins):",
    ]
    for flag in FLAGS:
        if flag.wsdev_only:
            lines.append(_help_line(flag))
    lines += [
        "",
        "After COMMAND, arguments that are not wsdev options go to the program; everything after",
        "a '--' goes to it untouched. The console is at http://localhost:PORT/ (or /_wsdev/).",
        "While wsdev listens on loopback only (the default), pages of other sites get 403 (add",
        "their origin to --origin; --origin=null for file:// pages) and so does a Host that is",
        "not this machine (--allow-host); --origin or --sameorigin apply websocketd's rule.",
    ]
    return "\n".join(lines) + "\n"


def _help_line(flag: Flag) -> str:
    left = f"  --{flag.name}" + (f"={flag.metavar}" if flag.metavar else "")
    return f"{left:<30} {flag.help}"


def parse_int(name: str, value: str) -> int:
    try:
        number = int(value, 0)
    except ValueError:
        raise UsageError(f"invalid value {value!r} for --{name}: expected a whole number") from None
    if number < 0:
        raise UsageError(f"invalid value {value!r} for --{name}: must not be negative")
    return number


def parse_seconds(name: str, value: str) -> float:
    """A duration in seconds (``90``, ``1.5``); 0 turns the limit off."""
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"invalid value {value!r} for --{name}: expected seconds") from None
    if not number >= 0 or number == float("inf"):
        raise UsageError(f"invalid value {value!r} for --{name}: must be 0 or more seconds")
    return number


def env_options(environ: Mapping[str, str]) -> dict[str, object]:
    """wsdev's own options from WSDEV_<NAME> variables (the command line wins over these)."""
    values: dict[str, object] = {}
    for flag in FLAGS:
        if not flag.wsdev_only:
            continue
        key = "WSDEV_" + flag.name.upper().replace("-", "_")
        raw = environ.get(key)
        if raw is None or raw == "":
            continue
        if flag.kind == "bool":
            if raw in TRUE:
                values[flag.name] = True
            elif raw in FALSE:
                values[flag.name] = False
            else:
                raise UsageError(f"invalid value {raw!r} for {key}: use 1 or 0")
        elif flag.kind == "int":
            try:
                values[flag.name] = parse_int(flag.name, raw)
            except UsageError:
                raise UsageError(
                    f"invalid value {raw!r} for {key}: expected a whole number"
                ) from None
        elif flag.kind == "seconds":
            try:
                values[flag.name] = parse_seconds(flag.name, raw)
            except UsageError:
                raise UsageError(f"invalid value {raw!r} for {key}: expected seconds") from None
        elif flag.kind == "str":
            values[flag.name] = raw
        else:
            values[flag.name] = [p for p in raw.split(os.pathsep) if p]
    return values
