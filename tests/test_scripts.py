"""What wsdev reads from a program file: Python or not (behaviour B9), and the mistakes that stop
it from running, each said in one line with what to do (F). Real files, real children."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import converse, run_wsdev
from wsdev.scripts import inspect_script

# Answers nothing until its output is flushed: buffered, it replies only at exit.
UNFLUSHED_BOT = (
    "import sys\nprint('hello')\nfor line in sys.stdin:\n    print('echo: ' + line.strip())\n"
)


def write(path: Path, text: str | bytes, mode: int = 0o755) -> Path:
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    path.chmod(mode)
    return path


def test_python_is_recognised_by_extension_or_shebang(tmp_path: Path) -> None:
    assert inspect_script(write(tmp_path / "bot.py", "#!/bin/sh\n")).python
    assert inspect_script(write(tmp_path / "greeter", "#!/usr/bin/env python3\n")).python
    assert not inspect_script(write(tmp_path / "count.sh", "#!/bin/sh\n")).python
    assert not inspect_script(write(tmp_path / "tool", b"\x7fELF\x02\x01\x01\0")).python


def test_the_two_student_mistakes_are_named_with_what_to_do(tmp_path: Path) -> None:
    bare = write(tmp_path / "bot.py", "print('hi')\n")
    problem = inspect_script(bare, command_mode=True).problem
    assert problem is not None
    assert "no #! line" in problem and "#!/usr/bin/env python3" in problem
    assert "wsdev python3 bot.py" in problem
    # Under --dir there is no command line to change: only the #! advice.
    assert "wsdev python3" not in (inspect_script(bare).problem or "")

    crlf = write(tmp_path / "crlf.py", b"#!/usr/bin/env python3\r\nprint('hi')\r\n")
    problem = inspect_script(crlf).problem
    assert problem is not None and "CRLF" in problem and "dos2unix crlf.py" in problem


def test_nothing_is_said_about_programs_that_run(tmp_path: Path) -> None:
    assert inspect_script(write(tmp_path / "ok.py", "#!/usr/bin/env python3\n")).problem is None
    assert inspect_script(write(tmp_path / "tool", b"\x7fELF\x02\x01\x01\0")).problem is None
    assert inspect_script(write(tmp_path / "empty.sh", "")).problem is None  # still being written
    # Not executable: not meant to be run (a README beside the programs).
    assert inspect_script(write(tmp_path / "README", "how to\n", mode=0o644)).problem is None


async def test_dir_mode_unbuffers_each_python_script(tmp_path: Path) -> None:
    """B9 per script under --dir: by extension, by shebang, and not for other programs."""
    write(tmp_path / "bot.py", f"#!{sys.executable}\n{UNFLUSHED_BOT}")
    write(tmp_path / "greeter", f"#!{sys.executable}\n{UNFLUSHED_BOT}")
    write(tmp_path / "env.sh", '#!/bin/sh\necho "${PYTHONUNBUFFERED:-unset}"\n')
    async with run_wsdev(f"--dir={tmp_path}") as server:
        for name in ("bot.py", "greeter"):
            reply = await converse(f"{server.ws_url}/{name}", ["hi"], read=2)
            assert reply.messages == ["hello", "echo: hi"], name
        assert (await converse(f"{server.ws_url}/env.sh")).messages == ["unset"]


async def test_start_up_names_a_script_without_shebang(tmp_path: Path) -> None:
    write(tmp_path / "bot.py", "print('hi')\n")
    async with run_wsdev("./bot.py", cwd=tmp_path) as server:
        await server.wait_for_log(
            r"bot\.py has no #! line, so it cannot be run directly; add #!/usr/bin/env python3"
            r" as its first line, or run it as: wsdev python3 bot\.py$"
        )
        # Every connection says it too, where the person is looking.
        failed = await converse(server.ws_url + "/")
        assert failed.close_code == 1011
        await server.wait_for_log(r"cannot run .*bot\.py: bot\.py has no #! line")


async def test_start_up_names_a_crlf_shebang(tmp_path: Path) -> None:
    write(tmp_path / "bot.py", b"#!/usr/bin/env python3\r\nprint('hi')\r\n")
    async with run_wsdev("./bot.py", cwd=tmp_path) as server:
        await server.wait_for_log(r"bot\.py has Windows line endings \(CRLF\).*dos2unix bot\.py")


async def test_dir_mode_names_the_mistake_when_a_connection_asks(tmp_path: Path) -> None:
    async with run_wsdev(f"--dir={tmp_path}") as server:
        # Written after start-up: only the connection can find it.
        write(tmp_path / "crlf.py", b"#!/usr/bin/env python3\r\nprint('hi')\r\n")
        write(tmp_path / "bare.py", "print('hi')\n")
        assert (await converse(server.ws_url + "/crlf.py")).close_code == 1011
        await server.wait_for_log(r"cannot run .*crlf\.py: crlf\.py has Windows line endings")
        assert (await converse(server.ws_url + "/bare.py")).close_code == 1011
        await server.wait_for_log(r"cannot run .*bare\.py: bare\.py has no #! line.*python3")


async def test_a_save_that_breaks_the_shebang_is_named_after_the_restart(tmp_path: Path) -> None:
    bot = write(tmp_path / "bot.py", "#!/usr/bin/env python3\nprint('hi')\n")
    async with run_wsdev("--no-reload=false", "./bot.py", cwd=tmp_path) as server:
        await server.wait_for_log(r"Restarting on changes to")
        bot.write_bytes(b"#!/usr/bin/env python3\r\nprint('hi')\r\n")  # saved on Windows
        restart = await server.wait_for_log(r"Restarting: bot\.py changed")
        after = server.lines.index(restart.string)
        await server.wait_for_log(r"bot\.py has Windows line endings \(CRLF\)", after=after)
