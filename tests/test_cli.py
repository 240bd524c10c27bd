"""The command line: websocketd's flag syntax, wsdev's own options, start-up errors (A1, F)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, timeout
from wsdev.cli import FLAGS, build_config, parse_args
from wsdev.config import Config
from wsdev.errors import ConfigError, UsageError

WEBSOCKETD_FLAGS = [
    "port",
    "address",
    "sameorigin",
    "origin",
    "ssl",
    "sslcert",
    "sslkey",
    "sslca",
    "redirport",
    "passenv",
    "binary",
    "reverselookup",
    "dir",
    "staticdir",
    "cgidir",
    "devconsole",
    "maxforks",
    "closems",
    "header",
    "header-ws",
    "header-http",
    "loglevel",
    "pingms",
    "maxframesize",
    "passstderr",
    "unixsocket",
    "version",
    "license",
    "help",
]


def config_for(*argv: str, env: dict[str, str] | None = None) -> Config:
    return build_config(parse_args(argv), environ=env or {})


def test_every_websocketd_flag_is_known() -> None:
    names = {f.name for f in FLAGS}
    assert set(WEBSOCKETD_FLAGS) <= names


@pytest.mark.parametrize(
    "argv",
    [
        ["--port=9001", "cat"],
        ["--port", "9001", "cat"],
        ["-port=9001", "cat"],
        ["-port", "9001", "cat"],
    ],
)
def test_both_spellings_and_value_forms(argv: list[str]) -> None:
    assert config_for(*argv).port == 9001


@pytest.mark.parametrize(
    ("flag", "expected"),
    [("--binary", True), ("--binary=true", True), ("-binary=1", True), ("--binary=false", False)],
)
def test_booleans_bare_or_with_value(flag: str, expected: bool) -> None:
    assert config_for(flag, "cat").binary is expected


def test_repeatable_and_list_flags() -> None:
    config = config_for(
        "--address=127.0.0.1",
        "--address",
        "::1",
        "--header=X-A: 1",
        "--header-ws=X-B: 2",
        "--header-http=X-C: 3",
        "--origin=a.example, b.example:8080",
        "--passenv=HOME,PATH",
        "cat",
    )
    assert config.addresses == ("127.0.0.1", "::1")
    assert config.headers == (("X-A", "1"),)
    assert config.headers_ws == (("X-B", "2"),)
    assert config.headers_http == (("X-C", "3"),)
    assert config.origins == ("a.example", "b.example:8080")
    assert config.passenv == ("HOME", "PATH")


def test_command_args_and_wsdev_options_after_command() -> None:
    parsed = parse_args(
        ["--port=1", "cat", "-n", "--open", "--port=5", "--watch", "x", "--", "--open"]
    )
    assert parsed.command == ["cat", "-n", "--port=5", "--open"]
    assert parsed.values["open"] is True
    assert parsed.values["watch"] == ["x"]
    assert parsed.values["port"] == 1


def test_double_dash_before_command() -> None:
    parsed = parse_args(["--", "--weird-program-name"])
    assert parsed.command == ["--weird-program-name"]


def test_environment_sets_wsdev_options_and_flags_win() -> None:
    assert config_for("cat", env={"WSDEV_NO_RELOAD": "1"}).reload is False
    assert config_for("--no-reload=false", "cat", env={"WSDEV_NO_RELOAD": "1"}).reload is True
    assert config_for("cat", env={"WSDEV_NO_CONSOLE": "1"}).console is False
    assert config_for("cat", env={"WSDEV_OPEN": "true"}).open_browser is True


def test_command_is_resolved_on_path_and_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config_for("cat").command[0].endswith("/cat")
    script = tmp_path / "bot.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    assert config_for("./bot.sh", "a").command == (str(script), "a")


@pytest.mark.parametrize(
    ("argv", "error", "words"),
    [
        (["--nope", "cat"], UsageError, "--nope"),
        (["--prot=1", "cat"], UsageError, "did you mean --port"),
        (["--port"], UsageError, "needs a value"),
        (["--port=abc", "cat"], UsageError, "whole number"),
        (["--binary=maybe", "cat"], UsageError, "true or false"),
        (["no-such-program-xyz"], ConfigError, "command not found"),
        (["--dir=/", "cat"], ConfigError, "either a COMMAND or --dir"),
        (["--dir=/no/such/dir"], ConfigError, "no such folder"),
        (["--staticdir=/no/such/dir", "cat"], ConfigError, "no such folder"),
        (["--ssl", "cat"], ConfigError, "--sslcert and --sslkey"),
        (["--loglevel=loud", "cat"], ConfigError, "--loglevel"),
        (["--binary", "--passstderr", "cat"], ConfigError, "--binary and --passstderr"),
        ([], ConfigError, "nothing to serve"),
        (["--header=broken", "cat"], ConfigError, "Name: value"),
    ],
)
def test_mistakes_are_one_clear_error(argv: list[str], error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(")):
        config_for(*argv)


def run_cli(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsdev", *argv],
        capture_output=True,
        text=True,
        timeout=timeout(20),
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--nope", "cat"], "unknown flag: --nope"),
        (["./missing.py"], "command not found: ./missing.py"),
        (["--binary", "--passstderr", "cat"], "--binary and --passstderr"),
        (["--ssl", "--sslcert=/etc/hostname", "cat"], "--sslcert and --sslkey"),
    ],
)
def test_errors_are_one_line_and_nonzero(argv: list[str], words: str) -> None:
    result = run_cli(*argv)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert words in lines[0]
    assert "Traceback" not in result.stderr


def test_not_executable_script_gets_a_hint(tmp_path: Path) -> None:
    (tmp_path / "bot.py").write_text("print('hi')\n")
    result = run_cli("./bot.py", cwd=tmp_path)
    assert result.returncode == 1
    assert "chmod +x ./bot.py" in result.stderr and "wsdev python3 ./bot.py" in result.stderr


def test_port_in_use_is_named() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(f"--port={port}", "--address=127.0.0.1", "--no-dashboard", "cat")
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_version_help_license() -> None:
    version = run_cli("--version")
    assert version.returncode == 0
    assert "wsdev" in version.stdout and "websocketd 0.5.0" in version.stdout
    helptext = run_cli("--help")
    assert helptext.returncode == 0
    for name in [*WEBSOCKETD_FLAGS, "open", "no-console", "no-reload", "watch", "no-dashboard"]:
        assert f"--{name}" in helptext.stdout, name
    assert "BSD" in run_cli("--license").stdout
