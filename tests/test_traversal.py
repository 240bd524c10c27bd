"""Nothing outside the served folders is run or served, however the path is spelled.

``--dir`` is walked here: plain ``..``, percent-encoded and double-encoded dots and slashes,
backslashes, NUL, and symlinks (to a script, and to a folder) that point outside. Whatever the
status, the program outside never runs; a redirect is followed once and must not lead there
either. websocketd 0.4.1 is run on the same tree: it too keeps ``..`` inside, but runs a script
that a symlink inside the folder points to outside it (behaviour B5 is wsdev's difference).

Also here: a percent-encoded CR/LF in a path never becomes a header of a redirect.

The same traversal in ``--staticdir`` and ``--cgidir`` is proven by
``test_staticfiles.py::test_traversal_never_leaves_the_folder``,
``test_cgi.py::test_traversal_never_runs_a_script_outside`` and
``test_http_compare.py::test_nothing_outside_the_folders_is_served_or_run`` (with symlinks in
``test_http_compare.py::test_static_never_follows_a_symlink_out``); not repeated here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ServerProcess, converse, requires_websocketd, run_websocketd, run_wsdev
from rawhttp import request, upgrade

INSIDE = "#!/bin/sh\necho inside\n"
ESCAPED = "#!/bin/sh\necho ESCAPED\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ (served) with in.sh and sub/, next to outside/evil.sh, and links from one to the
    other."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    for path, text in ((root / "in.sh", INSIDE), (tmp_path / "outside" / "evil.sh", ESCAPED)):
        path.write_text(text)
        path.chmod(0o755)
    (root / "link.sh").symlink_to("../outside/evil.sh")
    (root / "linkdir").symlink_to("../outside")
    (root / "sub" / "index.html").write_text("<p>sub</p>\n")
    return root


TARGETS = [
    "/../outside/evil.sh",
    "/sub/../../outside/evil.sh",
    "/%2e%2e/outside/evil.sh",
    "/.%2E/outside/evil.sh",
    "/..%2foutside%2fevil.sh",
    "/%2e%2e%2foutside%2fevil.sh",
    "/%252e%252e/outside/evil.sh",
    "/%252e%252e%252foutside%252fevil.sh",
    "/..\\outside\\evil.sh",
    "/..%5coutside%5cevil.sh",
    "/in.sh/../../outside/evil.sh",
    "/in.sh%00/../../outside/evil.sh",
    "//../outside/evil.sh",
    "/sub/./../../outside/evil.sh",
]
SYMLINKS = ["/link.sh", "/linkdir/evil.sh", "/sub/../link.sh"]


async def what_runs(server: ServerProcess, target: str) -> tuple[int, list[str]]:
    """The upgrade's status, and what the program it started said (a redirect followed once)."""
    response = await upgrade(server.port, target=target)
    if response.status == 301:
        location = response.header("Location") or ""
        assert location.startswith("/"), location
        response = await upgrade(server.port, target=location)
    if response.status != 101:
        return response.status, []
    seen = await converse(server.ws_url + target.replace("\\", "%5C"))
    return 101, [str(message) for message in seen.messages]


async def test_dir_never_runs_a_program_outside(tree: Path) -> None:
    async with run_wsdev(f"--dir={tree}") as server:
        outcomes = {target: await what_runs(server, target) for target in TARGETS + SYMLINKS}
        inside = await what_runs(server, "/in.sh")
    assert inside == (101, ["inside"])
    for target, (status, said) in outcomes.items():
        assert "ESCAPED" not in said, target
        assert status in (101, 400, 404), (target, status)
    output = "\n".join(server.lines + server.stderr_lines)
    assert "Traceback" not in output


@requires_websocketd
async def test_websocketd_runs_what_a_symlink_points_to_outside(tree: Path) -> None:
    """websocketd's column of docs/faults.md: ``..`` stays inside (Go cleans the path and
    redirects), but a symlink inside the folder is followed out of it."""
    async with run_websocketd(f"--dir={tree}") as server:
        dotted = {target: await what_runs(server, target) for target in TARGETS}
        linked = {target: await what_runs(server, target) for target in SYMLINKS}
    assert all("ESCAPED" not in said for _, said in dotted.values()), dotted
    assert linked["/link.sh"] == (101, ["ESCAPED"])
    assert linked["/linkdir/evil.sh"] == (101, ["ESCAPED"])


CRLF_TARGETS = [
    "/sub%0d%0aSet-Cookie:%20injected=1",
    "/sub%0d%0aSet-Cookie:%20injected=1/",
    "/%0d%0aSet-Cookie:%20injected=1/../sub",
    "/sub/..%0d%0aSet-Cookie:%20injected=1",
    "//%0d%0aSet-Cookie:%20injected=1",
    "/sub%0aSet-Cookie:%20injected=1",
]


@pytest.mark.parametrize("flag", ["--staticdir", "--dir"])
async def test_an_encoded_crlf_never_becomes_a_header(tree: Path, flag: str) -> None:
    async with run_wsdev(f"{flag}={tree}", *([] if flag == "--dir" else ["cat"])) as server:
        responses = [await request(server.port, target) for target in CRLF_TARGETS]
    for target, response in zip(CRLF_TARGETS, responses, strict=True):
        assert response.header("Set-Cookie") is None, (target, response.headers)
        assert not any(name.lower() == "set-cookie" for name, _ in response.headers)
        assert 300 <= response.status < 500, (target, response.status)
    output = "\n".join(server.lines + server.stderr_lines)
    assert "Traceback" not in output
