"""``wsdev test`` and ``wsdev.testing`` (behaviour H2-H5): transcripts replayed against real
programs, over their pipes and over a real WebSocket server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ScriptWriter, timeout
from wsdev.cli import main as cli_main
from wsdev.config import Config
from wsdev.testing import TranscriptMismatch, run_transcript
from wsdev.testrunner import keyword_matches
from wsdev.transcript import load

# Greets with the request's query and a header, echoes each line, answers "json" with a JSON
# object holding a fresh id and time, and quits on "bye".
BOT = """\
#!/usr/bin/env python3
import json, os, sys, time, uuid
print("hello " + os.environ.get("QUERY_STRING", "") + " " + os.environ.get("HTTP_X_TOKEN", "-"))
sys.stdout.flush()
for line in sys.stdin:
    line = line.rstrip("\\n")
    if line == "json":
        print(json.dumps({"id": str(uuid.uuid4()), "at": time.time(), "ok": True}))
    elif line == "bye":
        print("bye", flush=True)
        sys.exit(0)
    else:
        print(PREFIX + line)
    print("got " + line, file=sys.stderr, flush=True)
    sys.stdout.flush()
"""


def bot(tmp_script: ScriptWriter, prefix: str = "echo: ", name: str = "bot.py") -> Path:
    return tmp_script(name, BOT.replace("PREFIX", repr(prefix)))


def write_transcript(path: Path, command: str, events: list[dict[str, Any]], **header: Any) -> Path:
    head = {
        "wsdev": "test",
        "format": 1,
        "command": command,
        "mode": "text",
        "path": "/bot",
        "query": "room=1",
        "headers": [["Host", "localhost:8080"], ["X-Token", "t0k"]],
        **header,
    }
    lines = [head, *({"t": 0.0, **e} for e in events)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


CONVERSATION: list[dict[str, Any]] = [
    {"received": "hello room=1 t0k"},
    {"sent": "hi"},
    {"received": "echo: hi"},
    {"stderr": "got hi"},
    {"sent": "there"},
    {"received": "echo: there"},
    {"stderr": "got there"},
    {"close": 1000, "reason": "client closed", "by": "client"},
    {"exit": 0},
]


class Ran:
    def __init__(self, returncode: int, output: str) -> None:
        self.returncode = returncode
        self.output = output


async def wsdev_test(cwd: Path, *args: str) -> Ran:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wsdev",
        "test",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout(90))
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode())


async def test_same_program_passes_and_the_environment_is_wsdevs(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    # The greeting holds QUERY_STRING and HTTP_X_TOKEN: it matches only with wsdev's environment.
    bot(tmp_script)
    write_transcript(tmp_path / "chat.jsonl", "./bot.py", CONVERSATION)
    for mode in ([], ["--over-websocket"]):
        ran = await wsdev_test(tmp_path, "--stderr", *mode, "chat.jsonl")
        assert ran.returncode == 0, ran.output
        assert "chat.jsonl PASSED" in ran.output
        assert ran.output.rstrip().splitlines()[-1].startswith("1 passed in ")


async def test_a_changed_program_fails_with_a_readable_diff(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    bot(tmp_script, prefix="ECHO: ")
    (tmp_path / "tests").mkdir()
    write_transcript(tmp_path / "tests" / "chat.jsonl", "./bot.py", CONVERSATION)
    for mode in ([], ["--over-websocket"]):
        ran = await wsdev_test(tmp_path, *mode)  # no path: the transcripts in tests/
        assert ran.returncode == 1, ran.output
        assert "chat.jsonl FAILED" in ran.output
        assert (
            'message 3, after sent "there":\n  expected: "echo: there"\n  got:      "ECHO: there"'
        ) in ran.output
        assert "0 passed, 1 failed" in ran.output


async def test_regex_and_json_rules(tmp_script: ScriptWriter, tmp_path: Path) -> None:
    bot(tmp_script)
    events: list[dict[str, Any]] = [
        {"received": r"hello room=\d+ \w+", "match": "regex"},
        {"sent": "json"},
        {"received": '{"ok": true, "id": "x", "at": 0}', "match": "json", "ignore": ["id", "at"]},
    ]
    write_transcript(tmp_path / "rules.jsonl", "./bot.py", events)
    ran = await wsdev_test(tmp_path, "rules.jsonl")
    assert ran.returncode == 0, ran.output

    events[2] = {
        "received": '{"ok": false, "id": "x", "at": 0}',
        "match": "json",
        "ignore": ["id", "at"],
    }
    events[0] = {"received": r"hello room=\d+ nope", "match": "regex"}
    write_transcript(tmp_path / "rules.jsonl", "./bot.py", events)
    ran = await wsdev_test(tmp_path, "rules.jsonl")
    assert ran.returncode == 1
    assert r"expected: /hello room=\d+ nope/ (regex)" in ran.output
    assert "(JSON, ignoring id, at)" in ran.output
    assert "(differs at ok)" in ran.output


async def test_update_rewrites_what_changed_and_keeps_rules(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    bot(tmp_script, prefix="ECHO: ")
    events = [{"received": r"hello .*", "match": "regex"}, *CONVERSATION[1:]]
    path = write_transcript(tmp_path / "chat.jsonl", "./bot.py", events)
    ran = await wsdev_test(tmp_path, "--update", "chat.jsonl")
    assert ran.returncode == 0, ran.output
    assert "chat.jsonl UPDATED (2 changed)" in ran.output
    assert "1 updated (2 differences rewritten)" in ran.output
    received = [s for s in load(path).steps if s.kind == "received"]
    assert [s.data for s in received] == [r"hello .*", "ECHO: hi", "ECHO: there"]
    assert received[0].rule == {"match": "regex"}
    again = await wsdev_test(tmp_path, "--stderr", "chat.jsonl")
    assert again.returncode == 0, again.output


async def test_parallel_keyword_and_exitfirst(tmp_script: ScriptWriter, tmp_path: Path) -> None:
    bot(tmp_script)
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(4):
        write_transcript(folder / f"ok_{index}.jsonl", "./bot.py", CONVERSATION)
    broken = [dict(e) for e in CONVERSATION]
    broken[2] = {"received": "echo: nope"}
    write_transcript(folder / "bad_0.jsonl", "./bot.py", broken)
    write_transcript(folder / "bad_1.jsonl", "./bot.py", broken)

    ran = await wsdev_test(tmp_path, "-j", "3", "many")
    assert ran.returncode == 1
    assert ran.output.count("PASSED") == 4 and ran.output.count(" FAILED (") == 2
    assert "4 passed, 2 failed" in ran.output

    only_ok = await wsdev_test(tmp_path, "-k", "ok and not ok_3", "many")
    assert only_ok.returncode == 0 and "3 passed" in only_ok.output

    first = await wsdev_test(tmp_path, "-x", "-k", "bad", "many")
    assert first.returncode == 1
    assert "0 passed, 1 failed" in first.output


async def test_command_after_double_dash_and_program_ending(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    bot(tmp_script, name="other.py")
    events: list[dict[str, Any]] = [
        {"received": "hello room=1 t0k"},
        {"sent": "bye"},
        {"received": "bye"},
        {"close": 1000, "reason": "exit 0", "by": "program"},
        {"exit": 0},
    ]
    write_transcript(tmp_path / "quit.jsonl", "./missing.py", events)
    ran = await wsdev_test(tmp_path, "quit.jsonl", "--", "./other.py")
    assert ran.returncode == 0, ran.output
    missing = await wsdev_test(tmp_path, "quit.jsonl")
    assert missing.returncode == 1
    assert "command not found: ./missing.py" in missing.output
    assert "Traceback" not in missing.output

    # The recorded session ended by the program: one that exits differently fails.
    events[3] = {"close": 1011, "reason": "exit 2", "by": "program"}
    write_transcript(tmp_path / "quit.jsonl", "./other.py", events)
    ran = await wsdev_test(tmp_path, "quit.jsonl")
    assert "expected: program closed: 1011 exit 2" in ran.output
    assert "got:      program closed: 1000 exit 0" in ran.output


async def test_binary_transcripts(tmp_path: Path) -> None:
    import base64

    data = base64.b64encode(bytes(range(256))).decode()
    events = [
        {"sent": data, "binary": True},
        {"received": data, "binary": True},
        {"close": 1000, "reason": "client closed", "by": "client"},
    ]
    write_transcript(tmp_path / "bin.jsonl", "cat", events, mode="binary")
    ran = await wsdev_test(tmp_path, "bin.jsonl")
    assert ran.returncode == 0, ran.output


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("not json\n", ":1: not JSON"),
        ('{"command": "cat", "path": "/"}\n{"t": 0}\n', ":2: an event line has exactly one of"),
        (
            '{"command": "cat", "path": "/"}\n{"received": "x", "match": "glob"}\n',
            ":2: match 'glob'",
        ),
    ],
)
async def test_a_bad_transcript_is_one_clear_line(tmp_path: Path, text: str, why: str) -> None:
    (tmp_path / "bad.jsonl").write_text(text)
    ran = await wsdev_test(tmp_path, "bad.jsonl")
    assert ran.returncode == 1
    assert why in ran.output and "Traceback" not in ran.output


def test_run_transcript_raises_with_the_diff(tmp_script: ScriptWriter, tmp_path: Path) -> None:
    script = bot(tmp_script)
    path = write_transcript(tmp_path / "chat.jsonl", str(script), CONVERSATION)
    run_transcript(path, stderr=True)
    changed = bot(tmp_script, prefix="ECHO: ", name="changed.py")
    with pytest.raises(TranscriptMismatch) as caught:
        run_transcript(path, command=[str(changed)])
    assert 'got:      "ECHO: hi"' in str(caught.value)
    assert isinstance(caught.value, AssertionError)


def test_test_is_a_subcommand_only_as_the_first_word(tmp_path: Path) -> None:
    # A program named ``test`` still runs: ``wsdev ./test``, ``wsdev -- test``, flags first.
    program = tmp_path / "test"
    program.write_text("#!/bin/sh\necho hi\n")
    program.chmod(0o755)
    ran: list[Config] = []

    def run(config: Config) -> int:
        ran.append(config)
        return 0

    assert cli_main([str(program)], run=run) == 0
    assert cli_main(["--", str(program)], run=run) == 0
    assert cli_main(["--port=0", str(program)], run=run) == 0
    assert [c.command for c in ran] == [(str(program),)] * 3
    assert cli_main(["test", str(tmp_path / "none")], run=run) == 1  # the subcommand: no file


def test_keyword_expressions() -> None:
    assert keyword_matches("chat", "tests/Chat_1.jsonl")
    assert keyword_matches("not login and (chat or echo)", "echo.jsonl")
    assert not keyword_matches("chat and login", "chat.jsonl")


async def test_a_program_that_stops_answering_fails_once_it_times_out(tmp_path: Path) -> None:
    events = [{"received": "hi"}, *({"sent": str(i)} for i in range(20)), {"received": "bye"}]
    write_transcript(tmp_path / "silent.jsonl", "sleep 30", events)
    ran = await wsdev_test(tmp_path, "--timeout", "0.5", "silent.jsonl")
    assert ran.returncode == 1
    assert 'message 1, before any message was sent:\n  expected: "hi"\n  got:      (nothing)' in (
        ran.output
    )
    assert "(no reply within the timeout (waited for reply 1))" in ran.output
