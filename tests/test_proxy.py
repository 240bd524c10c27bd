"""--trusted-proxy (behaviour B12): forwarding headers from trusted peers name the client, for the
program's environment, the log and the loopback-only routes; from anyone else they change nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from websockets.asyncio.client import connect, unix_connect

from conftest import ScriptWriter, run_wsdev
from wsdev.proxies import Client, TrustedProxies, forwarded_client, parse_trusted

# Prints what the program was told about its client, as one JSON line, once a line comes in.
PROBE = """#!/bin/sh
read line
printf '{"addr":"%s","port":"%s","host":"%s","https":"%s","xff":"%s"}\\n' \\
  "$REMOTE_ADDR" "$REMOTE_PORT" "$REMOTE_HOST" "$HTTPS" "$HTTP_X_FORWARDED_FOR"
"""


async def seen_by_program(url: str, headers: dict[str, str]) -> dict[str, str]:
    async with connect(url, additional_headers=headers) as ws:
        await ws.send("who am I")
        reply = await ws.recv()
    assert isinstance(reply, str)
    seen: dict[str, str] = json.loads(reply)
    return seen


@pytest.fixture
def probe(tmp_script: ScriptWriter) -> Path:
    return tmp_script("probe.sh", PROBE)


async def test_a_trusted_proxy_names_the_client_for_the_program_and_the_log(probe: Path) -> None:
    trusted = ("--trusted-proxy=127.0.0.1", "--trusted-proxy=10.0.0.0/8")
    async with run_wsdev(*trusted, str(probe)) as server:
        # 10.1.2.3 is a trusted proxy too: the client is the last hop that is not.
        headers = {
            "X-Forwarded-For": "198.51.100.1, 203.0.113.5, 10.1.2.3",
            "X-Forwarded-Proto": "https",
        }
        seen = await seen_by_program(server.ws_url + "/", headers)
        assert (seen["addr"], seen["port"], seen["host"], seen["https"]) == (
            "203.0.113.5",
            "",
            "203.0.113.5",
            "on",
        )
        # The header still reaches the program as it came.
        assert seen["xff"] == "198.51.100.1, 203.0.113.5, 10.1.2.3"
        await server.wait_for_log(r"remote:'203\.0\.113\.5'.*\| CONNECT")

        forwarded = {"Forwarded": 'for=198.51.100.1, for="[2001:db8::7]:4711";proto=https'}
        seen = await seen_by_program(server.ws_url + "/", forwarded)
        assert (seen["addr"], seen["port"], seen["https"]) == ("2001:db8::7", "4711", "on")


async def test_forwarding_headers_from_an_untrusted_peer_are_ignored(probe: Path) -> None:
    async with run_wsdev("--trusted-proxy=10.0.0.0/8", str(probe)) as server:
        spoofed = {
            "X-Forwarded-For": "203.0.113.5",
            "X-Forwarded-Proto": "https",
            "Forwarded": "for=203.0.113.9;proto=https",
        }
        async with connect(server.ws_url + "/", additional_headers=spoofed) as ws:
            port = str(ws.local_address[1])
            await ws.send("who am I")
            seen = json.loads(str(await ws.recv()))
        assert (seen["addr"], seen["port"], seen["https"]) == ("127.0.0.1", port, "")
        assert seen["xff"] == "203.0.113.5"  # an HTTP_* variable, as it always was
        await server.wait_for_log(r"remote:'127\.0\.0\.1'.*\| CONNECT")


async def test_cgi_and_the_loopback_only_routes_see_the_client(tmp_path: Path) -> None:
    cgidir = tmp_path / "cgi"
    cgidir.mkdir()
    script = cgidir / "who.sh"
    script.write_text(
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
        'echo "$REMOTE_ADDR $REMOTE_PORT $HTTPS"\n'
    )
    script.chmod(0o755)
    async with run_wsdev("--trusted-proxy=127.0.0.1", "--metrics", f"--cgidir={cgidir}") as server:
        async with aiohttp.ClientSession() as http:
            forwarded = {"Forwarded": 'for="203.0.113.5:5555";proto=https'}
            async with http.get(server.http_url + "/who.sh", headers=forwarded) as response:
                assert await response.text() == "203.0.113.5 5555 on\n"
            await server.wait_for_log(r"remote:'203\.0\.113\.5'.*CGI")
            # A client outside reaches the proxy, not loopback: metrics are not for it.
            outside = {"X-Forwarded-For": "203.0.113.5"}
            async with http.get(server.http_url + "/_wsdev/metrics", headers=outside) as metrics:
                assert metrics.status == 403
            inside = {"X-Forwarded-For": "127.0.0.1"}
            async with http.get(server.http_url + "/_wsdev/metrics", headers=inside) as metrics:
                assert metrics.status == 200


@pytest.mark.parametrize("trust_unix", [True, False])
async def test_unix_trusts_the_peers_of_the_unix_socket(
    tmp_path: Path, probe: Path, trust_unix: bool
) -> None:
    path = tmp_path / "w.sock"
    args = [f"--unixsocket={path}", "--no-dashboard", "--no-reload"]
    if trust_unix:
        args.append("--trusted-proxy=unix")
    async with run_wsdev(*args, str(probe), defaults=False) as server:
        await server.wait_for_log("unix socket at ")
        headers = {"X-Forwarded-For": "203.0.113.5"}
        async with unix_connect(str(path), "ws://localhost/", additional_headers=headers) as ws:
            await ws.send("who am I")
            seen = json.loads(str(await ws.recv()))
        assert seen["addr"] == ("203.0.113.5" if trust_unix else "")


def test_forwarded_parsing() -> None:
    trusted = parse_trusted(["127.0.0.1", "unix"])
    assert trusted == TrustedProxies(trusted.networks, unix=True)

    def client(peer: str, *headers: tuple[str, str]) -> Client | None:
        return forwarded_client(trusted, peer, headers)

    assert client("127.0.0.1", ("Forwarded", 'For="[::1]:80";Proto=HTTP')) == Client(
        "::1", "80", False
    )
    # Split over two header lines, as RFC 9110 allows.
    assert client("", ("Forwarded", "for=192.0.2.1"), ("forwarded", "for=192.0.2.2")) == Client(
        "192.0.2.2", "", None
    )
    # An obfuscated or unknown client is no address to believe: the peer stands.
    assert client("127.0.0.1", ("Forwarded", "for=_hidden")) is None
    assert client("127.0.0.1", ("X-Forwarded-For", "unknown")) is None
    assert client("127.0.0.1", ("X-Forwarded-For", "not an address, 192.0.2.1")) == Client(
        "192.0.2.1", "", None
    )
    # Every hop trusted: the first one is the client.
    assert client("127.0.0.1", ("X-Forwarded-For", "127.0.0.1, 127.0.0.1")) == Client(
        "127.0.0.1", "", None
    )
    # A proxy that appends to X-Forwarded-For only: a client's own Forwarded is not believed...
    forged = ("Forwarded", "for=127.0.0.1"), ("X-Forwarded-For", "203.0.113.5")
    assert client("127.0.0.1", *forged) == Client("203.0.113.5", "", None)
    # ...but gives the port and scheme when its proxy wrote it for the same client (nginx).
    both = ("Forwarded", 'for="203.0.113.5:4711";proto=https'), ("X-Forwarded-For", "203.0.113.5")
    assert client("127.0.0.1", *both) == Client("203.0.113.5", "4711", True)
    assert client("192.0.2.1", ("X-Forwarded-For", "203.0.113.5")) is None
    assert client("127.0.0.1") is None
    assert parse_trusted([]).trusts("") is False
    with pytest.raises(ValueError, match="--trusted-proxy"):
        parse_trusted(["10.0.0.0/33"])
