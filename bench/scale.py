"""How far one instance goes, and how it grows behind nginx: ``python bench/scale.py [--quick]``.

For websocketd and wsdev in the same set-up, serving ``cat`` in text mode: one instance reached
directly, then 1, 2, 3… instances behind nginx (docs/deploy.md's configuration, with the
instances on TCP ports, since websocketd 0.4.1 has no Unix sockets). Two figures each:

- ``held``: connections opened (64 handshakes in flight) and held at once, each of which then
  echoes one line: how many echoed. The open-file limit is raised to its hard limit first; each
  wsdev connection costs about five descriptors (socket, three pipes, a pidfd), so the limit,
  not memory, is what ends it. nginx gets a limit as high.
- ``msg/s``: 32 connections at once echoing 16-byte lines with 4 in flight each, for a few
  seconds: the messages per second received across them.

Figures are only worth having from a quiet machine: on a shared one they say nothing. The report
(a markdown table) goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from client import Client, ClientError, build
from servers import ROOT, SERVERS, Server, ServerError, raise_open_file_limit, running

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PROGRAM = ("cat",)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1,000 held; 2 s of echoes")
    parser.add_argument("--instances", default="1,2,3", help="instance counts behind nginx")
    parser.add_argument("--hold", type=int, help="connections to try to hold (default 20,000)")
    parser.add_argument("--conns", type=int, default=32, help="connections echoing at once")
    parser.add_argument("--seconds", type=int, help="how long they echo (default 5)")
    return parser.parse_args(argv)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def nginx_conf(folder: Path, listen: int, upstreams: Sequence[int], nofile: int) -> str:
    """docs/deploy.md's nginx block, with TCP upstreams and room for many connections."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    match = re.search(r"```nginx\n(.*?)```", text, re.DOTALL)
    if match is None:
        raise SystemExit("docs/deploy.md has no nginx block")
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in upstreams)
    site = re.sub(r"(?m)^\s*server unix:\S+;\n", "", match.group(1))
    site = site.replace("    least_conn;\n", "    least_conn;\n" + servers, 1)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{listen} backlog=4096;")
    temp = "".join(
        f"    {kind}_temp_path {folder}/{kind}_temp;\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return (
        f"daemon off;\nworker_processes auto;\nworker_rlimit_nofile {nofile};\n"
        f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log warn;\n{user}"
        f"events {{ worker_connections {nofile}; }}\n"
        f"http {{\n    access_log off;\n{temp}{site}}}\n"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def nginx_in_front(upstreams: Sequence[int], nofile: int) -> Iterator[int]:
    """nginx on a free port of 127.0.0.1 in front of ``upstreams``; yields its port."""
    with tempfile.TemporaryDirectory(prefix="wsdev-scale-") as folder:
        port = free_port()
        conf = Path(folder) / "nginx.conf"
        conf.write_text(nginx_conf(Path(folder), port, upstreams, nofile))
        proc = subprocess.Popen(
            [NGINX, "-p", folder, "-c", str(conf), "-e", f"{folder}/error.log"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (Path(folder) / "error.log").read_text(errors="replace")
                    raise ServerError(f"nginx did not start: {log[-2000:]}")
                time.sleep(0.05)  # polling a port has no event to wait on
            yield port
        finally:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def held(client: Client, port: int, count: int) -> str:
    session = client.start("hold", port, count, 64, limit=600)
    try:
        opened = session.read_until("open")
        session.next_stage()
        alive = session.read_until("alive")
    except ClientError as exc:
        return f"failed ({exc})"
    finally:
        session.finish()
    return f"{alive['alive']} of {count} ({opened['open']} opened)"


def rate(client: Client, port: int, conns: int, seconds: int) -> str:
    try:
        result = client.run("many", port, conns, seconds, 4, limit=seconds + 60)
    except ClientError as exc:
        return f"failed ({exc})"
    return f"{float(result['messages_per_s']):,.0f}"


def measure(
    client: Client, kind: str, instances: int, behind_nginx: bool, args: argparse.Namespace
) -> tuple[str, str]:
    with contextlib.ExitStack() as stack:
        servers: list[Server] = [
            stack.enter_context(running(kind, PROGRAM)) for _ in range(instances)
        ]
        port = servers[0].port
        if behind_nginx:
            port = stack.enter_context(nginx_in_front([s.port for s in servers], args.nofile))
        echoes = rate(client, port, args.conns, args.seconds)
        most = held(client, port, args.hold)
        return most, echoes


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    args.hold = args.hold or (1000 if args.quick else 20000)
    args.seconds = args.seconds or (2 if args.quick else 5)
    args.nofile = raise_open_file_limit(1 << 20)
    counts = [int(n) for n in args.instances.split(",") if n.strip()]
    setups = [("direct, 1 instance", 1, False)] + [
        (f"nginx, {n} instance{'s' if n != 1 else ''}", n, True) for n in counts
    ]
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="wsdev-scale-client-") as folder:
        client = Client(build(Path(folder)))
        rows: list[tuple[str, dict[str, tuple[str, str]]]] = []
        for label, instances, behind in setups:
            results: dict[str, tuple[str, str]] = {}
            for kind in SERVERS:
                say(f"{label}: {kind}")
                try:
                    results[kind] = measure(client, kind, instances, behind, args)
                except ServerError as exc:
                    results[kind] = (f"failed ({exc})", "")
            rows.append((label, results))
    print(f"open-file limit {args.nofile}; load average {load:.2f} at the start, ", end="")
    print(f"{os.getloadavg()[0]:.2f} at the end; {os.cpu_count()} cores")
    print()
    print("| set-up | " + " | ".join(f"{k} held" for k in SERVERS), end=" | ")
    print(" | ".join(f"{k} msg/s ({args.conns} conns)" for k in SERVERS) + " |")
    print("|" + " --- |" * (1 + 2 * len(SERVERS)))
    for label, results in rows:
        cells = [results[k][0] for k in SERVERS] + [results[k][1] for k in SERVERS]
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
