"""One connection end to end: real wsdev, real children, a real client (behaviour A3, A4, B)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from conftest import ScriptWriter, converse, run_wsdev, timeout

ECHO = "#!/bin/sh\nexec cat\n"


async def test_text_echo_roundtrip(tmp_script: ScriptWriter) -> None:
    prog = tmp_script("echo.sh", ECHO)
    async with run_wsdev(str(prog)) as server:
        got = await converse(server.ws_url + "/", ["hello", "wörld ✓", "", "x" * 100_000], read=4)
    assert got.messages == ["hello", "wörld ✓", "", "x" * 100_000]


async def test_crlf_and_empty_lines_and_no_trailing_newline(tmp_script: ScriptWriter) -> None:
    prog = tmp_script("lines.sh", "#!/bin/sh\nprintf 'a\\r\\nb\\n\\n\\r\\nc\\r\\r\\nlast'\n")
    async with run_wsdev(str(prog)) as server:
        got = await converse(server.ws_url + "/")
    # one \n or \r\n removed per line; an empty line is an empty message; the unterminated last
    # line is still sent (B1); then a proper Close 1000 "exit 0" (B2).
    assert got.messages == ["a", "b", "", "", "c\r", "last"]
    assert (got.close_code, got.close_reason) == (1000, "exit 0")


async def test_nonzero_exit_and_signal_close_codes(tmp_script: ScriptWriter) -> None:
    failing = tmp_script("fail.sh", "#!/bin/sh\necho bye\nexit 3\n")
    killed = tmp_script("killed.sh", "#!/bin/sh\necho x\nkill -TERM $$\n")
    async with run_wsdev(str(failing)) as server:
        got = await converse(server.ws_url + "/")
    assert got.messages == ["bye"]
    assert (got.close_code, got.close_reason) == (1011, "exit 3")
    async with run_wsdev(str(killed)) as server:
        got = await converse(server.ws_url + "/")
    assert (got.close_code, got.close_reason) == (1011, "signal SIGTERM")


async def test_binary_message_in_text_mode_is_written_raw(tmp_script: ScriptWriter) -> None:
    prog = tmp_script(
        "hex.py", f"#!{sys.executable}\nimport sys\nprint(sys.stdin.buffer.read(5).hex())\n"
    )
    async with run_wsdev(str(prog)) as server:
        got = await converse(server.ws_url + "/", [b"\x00\x01\xfe\xff\n"])
    assert got.messages == ["0001feff0a"]


async def test_binary_mode_roundtrip(tmp_script: ScriptWriter) -> None:
    prog = tmp_script("echo.sh", ECHO)
    payload = bytes(range(256)) * 1000
    async with run_wsdev("--binary", str(prog)) as server:
        async with connect(server.ws_url + "/", max_size=None) as ws:
            await ws.send(payload)
            await ws.send("text gets a newline")
            received = b""
            expected = payload + b"text gets a newline\n"
            while len(received) < len(expected):
                chunk = await asyncio.wait_for(ws.recv(), timeout(10))
                assert isinstance(chunk, bytes)
                received += chunk
    assert received == expected


async def test_invalid_utf8_becomes_replacement_character(tmp_script: ScriptWriter) -> None:
    prog = tmp_script(
        "bad.sh", "#!/bin/sh\nprintf 'ok\\n\\377\\376bad\\nfine \\342\\234\\223\\n'\n"
    )
    async with run_wsdev(str(prog)) as server:
        got = await converse(server.ws_url + "/")
        await server.wait_for_log(r"not valid UTF-8")
    assert got.messages == ["ok", "\ufffd\ufffdbad", "fine ✓"]


async def test_stderr_is_logged_not_sent(tmp_script: ScriptWriter) -> None:
    prog = tmp_script("err.sh", "#!/bin/sh\necho out\necho 'problem here' >&2\n")
    async with run_wsdev(str(prog)) as server:
        got = await converse(server.ws_url + "/")
        match = await server.wait_for_log(
            r"\| ERROR  \| stderr     \| .*pid:'\d+' \| problem here$"
        )
    assert got.messages == ["out"]
    assert match
    assert not server.stderr_lines  # the child's stderr goes to the log on stdout (A6)


async def test_passstderr_wraps_both_streams_as_json(tmp_script: ScriptWriter) -> None:
    prog = tmp_script("both.sh", "#!/bin/sh\necho out\nsleep 0.1\necho err >&2\n")
    async with run_wsdev("--passstderr", str(prog)) as server:
        got = await converse(server.ws_url + "/")
    assert [json.loads(m) for m in got.messages] == [
        {"stream": "stdout", "data": "out"},
        {"stream": "stderr", "data": "err"},
    ]


async def test_maxframesize_closes_with_1009(tmp_script: ScriptWriter) -> None:
    prog = tmp_script("echo.sh", ECHO)
    async with run_wsdev("--maxframesize=1000", str(prog)) as server:
        got = await converse(server.ws_url + "/", ["ok", "y" * 2000])
    assert got.close_code == 1009


async def test_stdout_line_over_limit_closes_with_1009(tmp_script: ScriptWriter) -> None:
    prog = tmp_script(
        "long.py", f"#!{sys.executable}\nprint('short')\nprint('z' * 5000, flush=True)\n"
    )
    async with run_wsdev("--max-line-bytes=1000", str(prog)) as server:
        got = await converse(server.ws_url + "/")
        await server.wait_for_log(r"longer than 1000 bytes")
    assert got.messages == ["short"]
    assert got.close_code == 1009


async def test_client_close_code_is_echoed_and_child_sees_eof(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    marker = tmp_path / "eof"
    prog = tmp_script("wait.sh", f"#!/bin/sh\necho ready\ncat >/dev/null\ntouch {marker}\n")
    async with run_wsdev(str(prog)) as server:
        async with connect(server.ws_url + "/") as ws:
            assert await ws.recv() == "ready"
            await ws.close(code=4001, reason="bye")
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 4001
        await server.wait_for_log(r"DISCONNECT")
    assert marker.exists()


async def test_client_vanishing_mid_message_ends_child(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    prog = tmp_script("echo.sh", ECHO)
    async with run_wsdev(str(prog)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await reader.readuntil(b"\r\n\r\n")
        pid_line = await server.wait_for_log(r"CONNECT")
        # A masked text frame header announcing 100 bytes, then only 3 of them, then gone.
        writer.write(bytes((0x81, 0x80 | 100)) + b"\x00\x00\x00\x00" + b"abc")
        await writer.drain()
        writer.close()
        match = await server.wait_for_log(r"pid:'(\d+)' \| DISCONNECT")
        assert pid_line
    pid = int(match.group(1))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_child_that_exits_at_once(tmp_script: ScriptWriter) -> None:
    prog = tmp_script("quick.sh", "#!/bin/sh\nexit 0\n")
    async with run_wsdev(str(prog)) as server:
        got = await converse(server.ws_url + "/", ["ignored"])
    assert got.messages == []
    assert (got.close_code, got.close_reason) == (1000, "exit 0")


async def test_program_that_cannot_start_is_reported(tmp_script: ScriptWriter) -> None:
    prog = tmp_script("gone.sh", "#!/nonexistent/interpreter\n")
    async with run_wsdev(str(prog)) as server:
        got = await converse(server.ws_url + "/")
        await server.wait_for_log(r"cannot run .*gone\.sh")
    assert got.close_code == 1011


async def test_child_that_never_reads_stdin_does_not_grow_memory(tmp_script: ScriptWriter) -> None:
    """A client floods a program that never reads: sending stalls, wsdev stays small (B4)."""
    prog = tmp_script("deaf.sh", "#!/bin/sh\necho ready\nexec sleep 60\n")
    async with run_wsdev(str(prog)) as server:
        async with connect(server.ws_url + "/", write_limit=2**16) as ws:
            assert await ws.recv() == "ready"
            chunk = "x" * 65536
            sent = 0

            async def flood() -> None:
                nonlocal sent
                while True:
                    await ws.send(chunk)
                    sent += len(chunk)

            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(flood(), timeout(3))
        rss_kib = _rss_kib(server.proc.pid)
    # The pipe holds 64 KiB, socket buffers a few MiB: far below what a free-running flood sends.
    assert sent < 64 * 1024 * 1024
    assert rss_kib < 200 * 1024


async def test_slow_client_does_not_grow_memory(tmp_script: ScriptWriter) -> None:
    """A program floods stdout while the client does not read: wsdev stops reading (B4)."""
    prog = tmp_script("flood.sh", "#!/bin/sh\nexec yes 0123456789012345678901234567890123456789\n")
    async with run_wsdev(str(prog)) as server:
        async with connect(server.ws_url + "/", max_queue=1) as ws:
            await ws.recv()
            before = _rss_kib(server.proc.pid)
            await asyncio.sleep(1.5)  # not a wait for an event: we measure what idling costs
            after = _rss_kib(server.proc.pid)
            # still flowing once we read again
            for _ in range(1000):
                assert await ws.recv() == "0123456789012345678901234567890123456789"
    assert after - before < 32 * 1024, (before, after)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_pingms_drops_a_silent_client(tmp_script: ScriptWriter) -> None:
    prog = tmp_script("echo.sh", ECHO)
    async with run_wsdev("--pingms=100", str(prog)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await reader.readuntil(b"\r\n\r\n")
        ping = await asyncio.wait_for(reader.readexactly(2), timeout(5))
        assert ping == b"\x89\x00"
        # We never answer: within a few intervals the server drops us.
        await asyncio.wait_for(server.wait_for_log(r"DISCONNECT"), timeout(5))
        writer.close()


async def test_pingms_keeps_an_answering_client(tmp_script: ScriptWriter) -> None:
    prog = tmp_script("echo.sh", ECHO)
    async with run_wsdev("--pingms=50", str(prog)) as server:
        async with connect(server.ws_url + "/") as ws:
            await asyncio.sleep(0.5)  # ten ping intervals pass; websockets answers each
            await ws.send("still here")
            assert await asyncio.wait_for(ws.recv(), timeout(5)) == "still here"


async def test_maxforks_refuses_with_429(tmp_script: ScriptWriter) -> None:
    prog = tmp_script("echo.sh", ECHO)
    async with run_wsdev("--maxforks=1", str(prog)) as server:
        async with connect(server.ws_url + "/") as first:
            with pytest.raises(websockets.InvalidStatus) as refused:
                await connect(server.ws_url + "/")
            assert refused.value.response.status_code == 429
            await first.send("ok")
            assert await first.recv() == "ok"


async def test_dir_mode_maps_script_and_path_info(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    (scripts / "sub").mkdir(parents=True)
    prog = scripts / "sub" / "show.sh"
    prog.write_text('#!/bin/sh\necho "$SCRIPT_NAME|$PATH_INFO|$QUERY_STRING"\n')
    prog.chmod(0o755)
    async with run_wsdev(f"--dir={scripts}") as server:
        deep = await converse(server.ws_url + "/sub/show.sh/a/b?q=1")
        exact = await converse(server.ws_url + "/sub/show.sh")
        with pytest.raises(websockets.InvalidStatus) as missing:
            await connect(server.ws_url + "/sub/nope.sh")
        with pytest.raises(websockets.InvalidStatus) as escape:
            await connect(server.ws_url + "/sub/../../etc/passwd")
    assert deep.messages == ["/sub/show.sh|/a/b|q=1"]
    assert exact.messages == ["/sub/show.sh||"]
    assert missing.value.response.status_code == 404
    assert escape.value.response.status_code == 404


async def test_python_children_are_unbuffered(tmp_script: ScriptWriter) -> None:
    prog = tmp_script(
        "slow.py", f"#!{sys.executable}\nimport sys\nprint('first')\nsys.stdin.readline()\n"
    )
    async with run_wsdev(str(prog)) as server, connect(server.ws_url + "/") as ws:
        # Without PYTHONUNBUFFERED=1 'first' would sit in the child's buffer until exit.
        assert await asyncio.wait_for(ws.recv(), timeout(5)) == "first"


async def test_output_without_newline_is_hinted(tmp_script: ScriptWriter) -> None:
    prog = tmp_script("prompt.sh", "#!/bin/sh\nprintf 'name? '\nread x\n")
    async with run_wsdev(str(prog)) as server, connect(server.ws_url + "/"):
        await server.wait_for_log(r"6 bytes written without a newline")


async def test_maxforks_frees_the_slot_once_the_program_ended(tmp_script: ScriptWriter) -> None:
    """A connection whose program has exited no longer counts, though its bookkeeping waits.

    The program leaves a process of its own session holding stderr open, so the connection's
    last step (waiting out stderr's grace period) lasts; a client reconnecting at once is let in.
    """
    prog = tmp_script(
        "leaves_stderr_open.sh",
        "#!/bin/sh\nsetsid sleep 3 </dev/null >/dev/null &\necho hi\n",
    )
    async with run_wsdev("--maxforks=1", str(prog)) as server:
        for _ in range(3):
            transcript = await converse(server.ws_url + "/")
            assert transcript.messages == ["hi"]
            assert transcript.close_code == 1000
        await server.wait_for_log(r"DISCONNECT")  # the bookkeeping still happened
