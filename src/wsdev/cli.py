"""The command line: argv → ``Config``, and the only place that prints errors and exits.

Flags are parsed the way websocketd (Go's ``flag`` package) parses them, so every websocketd
command line works unchanged: ``-flag``, ``--flag``, ``=value`` or a separate value, booleans bare
or ``=true|false``, flags ending at the first non-flag argument (the COMMAND) or at ``--``.
wsdev's own options may also stand after COMMAND (``wsdev ./bot.py --open``); everything else
there belongs to the program, and everything after a later ``--`` goes to it untouched.
The flags themselves, their help and their ``WSDEV_<NAME>`` variables are in ``flags.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wsdev import __version__
from wsdev.config import LOG_LEVELS, RELOAD_MODES, WEBSOCKETD_COMPAT_VERSION, Config
from wsdev.errors import ConfigError, UsageError, WsdevError
from wsdev.flags import (
    ALIASES,
    BY_NAME,
    FALSE,
    LICENSE,
    TRUE,
    env_options,
    help_text,
    parse_int,
    parse_seconds,
)

# Re-exported: the flag table moved to flags.py, and callers still import it from here.
from wsdev.flags import FLAGS as FLAGS
from wsdev.proxies import Network, TrustedProxies, parse_network, parse_trusted
from wsdev.scripts import is_python_command, is_script_file

# ---------------------------------------------------------------- parsing


@dataclass
class Parsed:
    values: dict[str, object]
    command: list[str]


def parse_args(argv: Sequence[str]) -> Parsed:
    """Split argv into flag values and the COMMAND with its arguments."""
    values: dict[str, object] = {}
    args = list(argv)
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            index += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        index = _take_flag(args, index, values, wsdev_only=False)
    command = args[index:]
    if command:
        command = [command[0], *_wsdev_options_after_command(command[1:], values)]
    return Parsed(values, command)


def _wsdev_options_after_command(rest: list[str], values: dict[str, object]) -> list[str]:
    program_args: list[str] = []
    index = 0
    while index < len(rest):
        arg = rest[index]
        if arg == "--":
            program_args += rest[index + 1 :]
            break
        name = arg.lstrip("-").partition("=")[0]
        flag = BY_NAME.get(name)
        if arg.startswith("-") and flag is not None and flag.wsdev_only:
            index = _take_flag(rest, index, values, wsdev_only=True)
            continue
        program_args.append(arg)
        index += 1
    return program_args


def _take_flag(args: list[str], index: int, values: dict[str, object], *, wsdev_only: bool) -> int:
    arg = args[index]
    body = arg[2:] if arg.startswith("--") else arg[1:]
    if not body or body.startswith(("-", "=")):
        raise UsageError(f"bad flag syntax: {arg}")
    name, has_value, value = body.partition("=")
    name = ALIASES.get(name, name)
    flag = BY_NAME.get(name)
    if flag is None:
        hint = _suggest(name)
        raise UsageError(f"unknown flag: {arg.partition('=')[0]}{hint} (see wsdev --help)")
    if flag.kind == "bool":
        if has_value:
            if value in TRUE:
                values[name] = True
            elif value in FALSE:
                values[name] = False
            else:
                raise UsageError(f"invalid value {value!r} for --{name}: use true or false")
        else:
            values[name] = True
        return index + 1
    if not has_value:
        if index + 1 >= len(args):
            raise UsageError(f"flag needs a value: --{name}")
        index += 1
        value = args[index]
    if flag.kind == "int":
        values[name] = parse_int(name, value)
    elif flag.kind == "seconds":
        values[name] = parse_seconds(name, value)
    elif flag.kind == "list":
        existing = values.setdefault(name, [])
        assert isinstance(existing, list)
        existing.append(value)
    else:
        values[name] = value
    return index + 1


def _suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(BY_NAME), n=1)
    return f" (did you mean --{close[0]}?)" if close else ""


# ---------------------------------------------------------------- building the Config


def build_config(
    parsed: Parsed, *, environ: Mapping[str, str] | None = None, stdout_isatty: bool = False
) -> Config:
    environ = os.environ if environ is None else environ
    v = {**env_options(environ), **parsed.values}

    def opt_str(name: str) -> str | None:
        value = v.get(name)
        return value if isinstance(value, str) else None

    def opt_list(name: str) -> list[str]:
        value = v.get(name, [])
        return value if isinstance(value, list) else []

    def opt_seconds(name: str, default: float = 0.0) -> float:
        value = v.get(name, default)
        return float(value) if isinstance(value, (int, float)) else default

    def opt_int(name: str, default: int) -> int:
        value = v.get(name, default)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    loglevel = (opt_str("loglevel") or "access").lower()
    if loglevel not in LOG_LEVELS:
        raise ConfigError(f"unknown --loglevel {loglevel!r}: use one of {', '.join(LOG_LEVELS)}")

    script_dir = _existing_dir("dir", opt_str("dir"))
    staticdir = _existing_dir("staticdir", opt_str("staticdir"))
    cgidir = _existing_dir("cgidir", opt_str("cgidir"))
    if script_dir is not None and parsed.command:
        raise ConfigError("give either a COMMAND or --dir, not both")
    if script_dir is None and not parsed.command and staticdir is None and cgidir is None:
        raise ConfigError(
            "nothing to serve: give a COMMAND (e.g. wsdev ./bot.py), or --dir, --staticdir"
            " or --cgidir"
        )

    ssl_on = bool(v.get("ssl"))
    sslcert = _existing_file("sslcert", opt_str("sslcert"))
    sslkey = _existing_file("sslkey", opt_str("sslkey"))
    sslca = _existing_file("sslca", opt_str("sslca"))
    if ssl_on and (sslcert is None or sslkey is None):
        raise ConfigError("--ssl needs both --sslcert and --sslkey")
    if not ssl_on and (sslcert or sslkey or sslca):
        raise ConfigError("--sslcert, --sslkey and --sslca only work together with --ssl")
    if opt_int("redirport", 0) and not ssl_on:
        raise ConfigError("--redirport redirects to the TLS port: it needs --ssl")
    binary = bool(v.get("binary"))
    passstderr = bool(v.get("passstderr"))
    if binary and passstderr:
        raise ConfigError(
            "--binary and --passstderr cannot be used together (--passstderr is text mode only)"
        )

    port = opt_int("port", 8080)
    if port > 65535:
        raise ConfigError(f"--port={port} is not a port number (0-65535)")

    command: tuple[str, ...] = ()
    display = ""
    python_child = False
    if parsed.command:
        program = _resolve_command(parsed.command[0])
        command = (program, *parsed.command[1:])
        display = " ".join(parsed.command)
        python_child = is_python_command(program)

    reload_on = not bool(v.get("no-reload"))
    watch = tuple(Path(p).resolve() for p in opt_list("watch"))
    for path in watch:
        if not path.exists():
            raise ConfigError(f"--watch {path}: no such file or folder")

    if opt_int("max-line-bytes", 1) < 1:
        raise ConfigError("--max-line-bytes must be at least 1")
    dashboard_on = stdout_isatty and not bool(v.get("no-dashboard"))
    lan = bool(v.get("lan"))
    trusted_proxies, metrics_from = _service_options(
        opt_list("trusted-proxy"), opt_list("metrics-from")
    )
    unixsocket = opt_str("unixsocket")
    return Config(
        command=command,
        command_display=display,
        script_dir=script_dir,
        port=port,
        addresses=_addresses(opt_list("address"), lan),
        unixsocket=Path(unixsocket) if unixsocket else None,
        sameorigin=bool(v.get("sameorigin")),
        origins=tuple(o.strip() for o in (opt_str("origin") or "").split(",") if o.strip()),
        ssl=ssl_on,
        sslcert=sslcert,
        sslkey=sslkey,
        sslca=sslca,
        redirport=opt_int("redirport", 0),
        passenv=tuple(
            n.strip()
            for n in (opt_str("passenv") or "PATH,LD_LIBRARY_PATH").split(",")
            if n.strip()
        ),
        binary=binary,
        reverselookup=bool(v.get("reverselookup")),
        staticdir=staticdir,
        cgidir=cgidir,
        devconsole=bool(v.get("devconsole")),
        maxforks=opt_int("maxforks", ROOM_DEFAULTS["maxforks"] if lan else 0),
        closems=opt_int("closems", 0),
        headers=_headers("header", opt_list("header")),
        headers_ws=_headers("header-ws", opt_list("header-ws")),
        headers_http=_headers("header-http", opt_list("header-http")),
        loglevel=loglevel,
        pingms=opt_int("pingms", 0),
        maxframesize=opt_int("maxframesize", 1024 * 1024),
        passstderr=passstderr,
        open_browser=bool(v.get("open")),
        console=not bool(v.get("no-console")) or bool(v.get("devconsole")),
        reload=reload_on,
        reload_mode=_reload_mode(opt_str("reload")),
        watch=watch,
        dashboard=dashboard_on,
        max_line_bytes=opt_int("max-line-bytes", 16 * 1024 * 1024),
        handshake_timeout=opt_seconds("handshake-timeout", 10.0),
        python_child=python_child,
        max_per_client=opt_int("max-per-client", ROOM_DEFAULTS["max-per-client"] if lan else 0),
        max_lifetime=opt_seconds("max-lifetime", ROOM_DEFAULTS["max-lifetime"] if lan else 0),
        idle_timeout=opt_seconds("idle-timeout", ROOM_DEFAULTS["idle-timeout"] if lan else 0),
        allow_hosts=_allow_hosts(opt_list("allow-host")),
        lan=lan,
        join_secret=_join_secret(opt_str("token"), lan=lan, no_token=bool(v.get("no-token"))),
        record=_record_folder(opt_str("record")),
        drain=opt_seconds("drain"),
        metrics=bool(v.get("metrics")) or bool(metrics_from),
        trusted_proxies=trusted_proxies,
        metrics_from=metrics_from,
        names=bool(v.get("names")),
    )


def _service_options(
    trusted: list[str], metrics_from: list[str]
) -> tuple[TrustedProxies, tuple[Network, ...]]:
    """--trusted-proxy and --metrics-from, parsed once (behaviour B12)."""
    try:
        networks = tuple(
            parse_network(part, "--metrics-from")
            for value in metrics_from
            for part in value.split(",")
            if part.strip()
        )
        return parse_trusted(trusted), networks
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _existing_dir(flag: str, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if not path.is_dir():
        raise ConfigError(f"--{flag}={value}: no such folder")
    return path.resolve()


def _reload_mode(value: str | None) -> str:
    """--reload=all (a save closes open connections) or --reload=new (they keep their version)."""
    if value is None or value in RELOAD_MODES:
        return value or "all"
    raise ConfigError(
        f"--reload={value}: use --reload=all (a save closes open connections with 1012)"
        " or --reload=new (open connections keep the version they started with)"
    )


def _record_folder(value: str | None) -> Path | None:
    """--record's folder, made if missing (behaviour H1)."""
    if value is None:
        return None
    path = Path(value)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--record={value}: cannot make the folder ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"--record={value}: the folder is not writable")
    return path.resolve()


def _existing_file(flag: str, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"--{flag}={value}: no such file")
    return path.resolve()


# The limits a room gets under --lan unless a flag says otherwise (behaviour B13, B14): enough
# for a student's few tabs, and no tab left open all night holding a process.
ROOM_DEFAULTS = {"maxforks": 200, "max-per-client": 8, "idle-timeout": 1800, "max-lifetime": 0}


def _addresses(given: list[str], lan: bool) -> tuple[str, ...]:
    """What to bind: --address as given; --lan adds localhost and every LAN address."""
    if not lan:
        return tuple(given)
    from wsdev.lan import lan_addresses

    found = lan_addresses()
    if not found and not given:
        raise ConfigError(
            "--lan: this machine has no address on a local network (is it connected?); "
            "--address=ADDR chooses one"
        )
    return tuple(dict.fromkeys(["127.0.0.1", *given, *found]))


def _join_secret(token: str | None, *, lan: bool, no_token: bool) -> str:
    """The room's join secret (behaviour B14): --token, else a new one under --lan."""
    from wsdev.joinsecret import new_secret

    if token is not None and no_token:
        raise ConfigError("give either --token=SECRET or --no-token, not both")
    if token is not None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{4,64}", token):
            raise ConfigError(
                f"--token={token!r}: use 4 to 64 letters, digits, '-' or '_' (it goes in a link)"
            )
        return token
    return new_secret() if lan and not no_token else ""


def _allow_hosts(values: list[str]) -> tuple[str, ...]:
    """--allow-host names (behaviour B10): a host name or address, any port; ``*`` for any."""
    names: list[str] = []
    for value in values:
        name = value.strip().lower().rstrip(".")
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        if name != "*" and (
            not name or not all(c.isalnum() or c in "-._:" for c in name) or name.count(":") == 1
        ):
            raise ConfigError(
                f"--allow-host={value!r}: expected a host name or address without a port"
                " (every port is allowed), e.g. --allow-host=myapp.test"
            )
        names.append(name)
    return tuple(dict.fromkeys(names))


def _headers(flag: str, values: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for value in values:
        name, colon, rest = value.partition(":")
        if not colon or not name.strip() or any(c in value for c in "\r\n"):
            raise ConfigError(f"--{flag}={value!r}: expected 'Name: value'")
        out.append((name.strip(), rest.strip()))
    return tuple(out)


def _resolve_command(name: str) -> str:
    """COMMAND as an absolute path: on PATH, or relative to the working folder if it has a '/'."""
    if "/" in name:
        path = Path(name)
        if not path.exists():
            raise ConfigError(f"command not found: {name} (no such file)")
        if path.is_dir():
            raise ConfigError(f"{name} is a folder; to serve every program in it use --dir={name}")
        if not os.access(path, os.X_OK):
            hint = f"chmod +x {name}"
            if path.suffix == ".py":
                hint += f", or run it as: wsdev python3 {name}"
            raise ConfigError(f"{name} is not executable ({hint})")
        return str(path.resolve())
    found = shutil.which(name)
    if found is None:
        local = Path(name)
        hint = f" (did you mean ./{name}?)" if local.is_file() else ""
        raise ConfigError(f"command not found: {name}{hint}")
    return found


def script_of(config: Config) -> Path | None:
    """The script file COMMAND names, if any: watched for restart on edit (behaviour D1)."""
    if config.script_dir is not None or not config.command:
        return None
    program = Path(config.command[0])
    if is_script_file(program):
        return program
    for arg in config.command[1:]:
        candidate = Path(arg)
        if candidate.is_file():
            return candidate.resolve()
    return None


# ---------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None, *, run: Callable[[Config], int] | None = None) -> int:
    """``wsdev``: parse, build the Config, serve. Every known error becomes one line."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["test"]:
            # The subcommand only as the very first word (behaviour H2): a program named
            # ``test`` still runs as ``wsdev ./test``, ``wsdev -- test`` or after any flag.
            from wsdev.testrunner import main as test_main

            return test_main(args[1:])
        parsed = parse_args(args)
        if parsed.values.get("help"):
            sys.stdout.write(help_text())
            return 0
        if parsed.values.get("version"):
            print(f"wsdev {__version__} (compatible with websocketd {WEBSOCKETD_COMPAT_VERSION})")
            return 0
        if parsed.values.get("license"):
            sys.stdout.write(LICENSE)
            return 0
        config = build_config(parsed, stdout_isatty=sys.stdout.isatty())
        if run is None:
            from wsdev.app import run as run_app

            run = run_app
        return run(config)
    except WsdevError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _error(message: str) -> None:
    red = "\x1b[31m" if sys.stderr.isatty() and not os.environ.get("NO_COLOR") else ""
    reset = "\x1b[0m" if red else ""
    sys.stderr.write(f"{red}wsdev: error:{reset} {message}\n")
    sys.stderr.flush()
