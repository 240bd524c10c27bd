"""The browser console in a real headless Chromium against a real wsdev (behaviour C).

One browser and one echo server are shared by the module (each test opens its own browser
context, so localStorage starts empty); tests that need their own program or port start it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from conftest import ServerProcess, free_port, run_wsdev, timeout

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
if not os.environ.get("CI"):
    pytest.importorskip("playwright")

from playwright.async_api import (  # noqa: E402
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    async_playwright,
    expect,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = timeout(15) * 1000
expect.set_options(timeout=WAIT_MS)

# One line in, one line out; a few words make it misbehave in the ways the console must show.
ECHO_BOT = """\
import json, os, sys
for line in sys.stdin:
    line = line.rstrip("\\n")
    if line == "env":
        print(json.dumps({"path": os.environ["PATH_INFO"], "query": os.environ["QUERY_STRING"]}))
    elif line == "json":
        print('{"user": {"name": "ann", "tags": ["a", "b"]}, "big": 12345678901234567890, '
              '"ratio": 1.0, "ok": true, "none": null}')
    elif line.startswith("err "):
        print(line[4:], file=sys.stderr, flush=True)
    elif line.startswith("exit "):
        print("bye", flush=True)
        sys.exit(int(line[5:]))
    elif line.startswith("raw "):
        print(line[4:])
    elif line.startswith("flood "):
        print("\\n".join(f"line {i}" for i in range(1, int(line[6:]) + 1)))
    elif line.startswith("errflood "):
        print("\\n".join(f"line {i}" for i in range(1, int(line[9:]) + 1)), file=sys.stderr)
    elif line == "partial":
        sys.stdout.write("prompt> ")
    else:
        print("echo: " + line)
    sys.stdout.flush()
"""


def write_program(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def echo_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    bot = write_program(tmp_path_factory.mktemp("echo"), "bot.py", ECHO_BOT)
    async with run_wsdev(str(bot)) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport={"width": 1100, "height": 720}, accept_downloads=True)
    ctx.set_default_timeout(WAIT_MS)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))

    def console_error(message: ConsoleMessage) -> None:
        # A refused connection while the server is down is logged by Chromium itself.
        if message.type == "error" and "WebSocket connection to" not in message.text:
            errors.append(message.text)

    # Content-Security-Policy violations and script errors both land here.
    opened.on("console", console_error)
    yield opened
    assert not errors, f"the page reported errors: {errors}"


async def open_console(page: Page, url: str) -> None:
    await page.goto(url)
    await expect(page.locator("#status")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
    # The connect note is filled in from the hello envelope once the program runs.
    await expect(page.locator(".entry.connect").last).to_contain_text("pid", timeout=WAIT_MS)


async def send(page: Page, text: str) -> None:
    await page.locator("#input").fill(text)
    await page.locator("#input").press("Enter")


def entries(page: Page, kind: str) -> Locator:
    return page.locator(f"#transcript .entry.{kind}")


async def test_connects_on_load_and_echoes(page: Page, echo_server: ServerProcess) -> None:
    await open_console(page, f"{echo_server.http_url}/chat?room=1")
    await expect(page.locator("#input")).to_be_focused()
    await expect(page.locator("#path")).to_have_value("/chat")
    await expect(page.locator("#query")).to_have_value("room=1")
    await expect(page.locator("#status-text")).to_contain_text("pid")

    await send(page, "hello")
    await expect(entries(page, "sent").last.locator(".body")).to_have_text("hello")
    reply = entries(page, "recv").last
    await expect(reply.locator(".body")).to_have_text("echo: hello")
    await expect(reply.locator(".latency")).to_have_text(re.compile(r"^\+[\d.]+ (ms|s)$"))
    await expect(page.locator("#input")).to_have_value("")
    await expect(page.locator("#input")).to_be_focused()

    # The program saw the endpoint the console was opened on, as a plain client would give it.
    await send(page, "env")
    await expect(entries(page, "recv").last).to_contain_text('"path": "/chat"')
    await expect(entries(page, "recv").last).to_contain_text('"query": "room=1"')
    env = page.locator(".entry.connect .env")
    await env.locator("summary").click()
    await expect(env).to_contain_text("QUERY_STRING")
    await expect(env).to_contain_text("room=1")


async def test_shift_enter_makes_one_multiline_message(
    page: Page, echo_server: ServerProcess
) -> None:
    await open_console(page, echo_server.http_url + "/")
    box = page.locator("#input")
    await box.press_sequentially("one")
    await box.press("Shift+Enter")
    await box.press_sequentially("two")
    await expect(box).to_have_value("one\ntwo")
    await box.press("Enter")
    # One message of two lines: the program reads two lines and answers each.
    await expect(entries(page, "sent")).to_have_count(1)
    await expect(entries(page, "recv")).to_have_count(2)
    await expect(entries(page, "recv").last).to_contain_text("echo: two")


async def test_history_survives_reload(page: Page, echo_server: ServerProcess) -> None:
    await open_console(page, echo_server.http_url + "/")
    for word in ("first", "second"):
        await send(page, word)
        await expect(entries(page, "recv").last).to_contain_text(f"echo: {word}")
    await page.reload()
    await expect(page.locator("#status")).to_have_attribute("data-state", "open")
    box = page.locator("#input")
    await box.fill("draft")
    await box.press("ArrowUp")
    await expect(box).to_have_value("second")
    await box.press("ArrowUp")
    await expect(box).to_have_value("first")
    await box.press("ArrowDown")
    await expect(box).to_have_value("second")
    await box.press("ArrowDown")
    await expect(box).to_have_value("draft")


async def test_json_reply_is_pretty_and_foldable(page: Page, echo_server: ServerProcess) -> None:
    await open_console(page, echo_server.http_url + "/")
    await send(page, "json")
    reply = entries(page, "recv").last
    tree = reply.locator(".json")
    await expect(tree).to_be_visible()
    name = tree.locator(".jline", has_text='"name": "ann"')
    await expect(name).to_be_visible()
    # Numbers are shown exactly as the program wrote them.
    await expect(tree.locator(".jline", has_text='"big"')).to_contain_text("12345678901234567890")
    await expect(tree.locator(".jline", has_text='"ratio"')).to_contain_text("1.0")

    user = tree.locator(".jbody > details").first
    await expect(user.locator("summary").first).to_contain_text('"user"')
    await user.locator("summary").first.click()
    await expect(name).to_be_hidden()
    await expect(user.locator("summary .jfold").first).to_contain_text("2 keys")
    # Keyboard folding works too: the summary is focusable and toggles with Enter.
    await user.locator("summary").first.focus()
    await page.keyboard.press("Enter")
    await expect(name).to_be_visible()

    top = tree.locator(":scope > details > summary")
    await top.click()
    await expect(tree.locator(":scope > details > summary .jfold")).to_contain_text('"user"')
    await expect(tree.locator(".jline").first).to_be_hidden()


async def test_stderr_exit_and_restart_on_enter(page: Page, echo_server: ServerProcess) -> None:
    await open_console(page, echo_server.http_url + "/")
    await send(page, "err something broke")
    stderr = entries(page, "stderr").last
    await expect(stderr).to_contain_text("something broke")
    await expect(stderr.locator(".tag")).to_have_text("stderr")
    # Visually distinct from stdout.
    stderr_colour = await stderr.locator(".body").evaluate("e => getComputedStyle(e).color")
    await send(page, "plain")
    recv = entries(page, "recv").last
    await expect(recv).to_contain_text("echo: plain")
    recv_colour = await recv.locator(".body").evaluate("e => getComputedStyle(e).color")
    assert stderr_colour != recv_colour

    await send(page, "exit 3")
    await expect(entries(page, "exit").last).to_contain_text("exit 3")
    await expect(entries(page, "close").last).to_contain_text("1011 exit 3")
    await expect(page.locator("#status")).to_have_attribute("data-state", "closed")
    await expect(page.locator("#status-text")).to_contain_text("exit 3")
    assert await page.locator("dialog[open]").count() == 0

    # Enter after the exit starts the program again and delivers the message.
    await send(page, "again")
    await expect(entries(page, "connect")).to_have_count(2)
    await expect(entries(page, "recv").last).to_contain_text("echo: again")
    await expect(page.locator("#status")).to_have_attribute("data-state", "open")


async def test_hostile_output_is_shown_not_run(page: Page, echo_server: ServerProcess) -> None:
    await open_console(page, echo_server.http_url + "/")
    hostile = [
        "<img src=x onerror=\"window.__pwned='img'\">",
        "<script>window.__pwned='script'</script>",
        '{"<b>key</b>": "<img src=x onerror=window.__pwned=1>"}',
    ]
    for text in hostile:
        await send(page, f"raw {text}")
        await expect(entries(page, "recv").last).to_contain_text(text.split('"')[0][:10])
    await send(page, "err <img src=x onerror=\"window.__pwned='stderr'\">")
    await expect(entries(page, "stderr").last).to_contain_text("<img src=x")

    bodies = await entries(page, "recv").locator(".body").all_inner_texts()
    assert any(hostile[0] in body for body in bodies)
    assert any(hostile[1] in body for body in bodies)
    assert await page.locator("#transcript img, #transcript script, #transcript b").count() == 0
    assert await page.evaluate("window.__pwned") is None


async def test_hostile_endpoint_in_the_page_url(page: Page, echo_server: ServerProcess) -> None:
    query = "a=%22%3E%3Cimg%20src=x%20onerror=window.__pwned=1%3E"
    await open_console(
        page, f"{echo_server.http_url}/x%22%3E%3Cscript%3Ewindow.__pwned=2%3C/script%3E?{query}"
    )
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator("body > script, body img").count() == 0
    await expect(page.locator("#query")).to_have_value(query)


async def test_clear_disconnect_connect_and_theme(page: Page, echo_server: ServerProcess) -> None:
    await open_console(page, echo_server.http_url + "/")
    await send(page, "one")
    await expect(entries(page, "recv").last).to_contain_text("echo: one")
    await page.keyboard.press("Control+l")
    await expect(page.locator("#transcript .entry")).to_have_count(0)

    await page.keyboard.press("Alt+c")
    await expect(page.locator("#status")).to_have_attribute("data-state", "closed")
    await expect(page.locator("#connect")).to_contain_text("Connect")
    await page.locator("#connect").click()
    await expect(page.locator("#status")).to_have_attribute("data-state", "open")
    await expect(page.locator("#connect")).to_contain_text("Disconnect")

    html = page.locator("html")
    before = await html.get_attribute("data-theme")
    await page.locator("#theme").click()
    after = "dark" if before == "light" else "light"
    await expect(html).to_have_attribute("data-theme", after)
    await page.reload()
    await expect(html).to_have_attribute("data-theme", after)

    await page.keyboard.press("F1")
    await expect(page.locator("#help")).to_be_visible()
    await expect(page.locator("#help")).to_contain_text("Ctrl")
    await page.keyboard.press("Escape")
    await expect(page.locator("#help")).to_be_hidden()
    await expect(page.locator("#input")).to_be_focused()


async def test_dark_by_system_preference_and_narrow_window(
    browser: Browser, echo_server: ServerProcess
) -> None:
    ctx = await browser.new_context(viewport={"width": 400, "height": 700}, color_scheme="dark")
    try:
        page = await ctx.new_page()
        page.set_default_timeout(WAIT_MS)
        await open_console(page, echo_server.http_url + "/narrow")
        await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        await send(page, "x" * 300)
        await expect(entries(page, "recv").last).to_contain_text("echo: xxx")
        await send(page, "json")
        await expect(entries(page, "recv").last.locator(".json")).to_be_visible()
        # The view follows the conversation even when rows wrap onto several lines.
        await send(page, "exit 0")
        await expect(entries(page, "close").last).to_be_in_viewport(ratio=1)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 400
        for control in ("#input", "#send", "#path", "#connect", "#status"):
            box = await page.locator(control).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 400, control
    finally:
        await ctx.close()


async def test_editing_path_and_query_reconnects(page: Page, echo_server: ServerProcess) -> None:
    await open_console(page, echo_server.http_url + "/first")
    await page.keyboard.press("Alt+p")
    await expect(page.locator("#path")).to_be_focused()
    await page.locator("#path").fill("/second/part")
    await page.locator("#query").fill("x=1&y=%20")
    await page.locator("#query").press("Enter")
    await expect(entries(page, "connect")).to_have_count(2)
    await expect(entries(page, "connect").last).to_contain_text("/second/part?x=1&y=%20")
    await expect(page.locator("#status")).to_have_attribute("data-state", "open")
    await send(page, "env")
    await expect(entries(page, "recv").last).to_contain_text('"path": "/second/part"')
    await expect(entries(page, "recv").last).to_contain_text('"query": "x=1&y=%20"')
    assert page.url.endswith("/second/part?x=1&y=%20")


async def test_console_at_reserved_prefix(page: Page, echo_server: ServerProcess) -> None:
    await open_console(page, echo_server.http_url + "/_wsdev/")
    await expect(page.locator("#path")).to_have_value("/")
    await send(page, "env")
    await expect(entries(page, "recv").last).to_contain_text('"path": "/"')


async def test_copy_and_download_transcript(page: Page, echo_server: ServerProcess) -> None:
    await open_console(page, echo_server.http_url + "/")
    await send(page, "hello")
    await expect(entries(page, "recv").last).to_contain_text("echo: hello")
    await send(page, "err oops")
    await expect(entries(page, "stderr").last).to_contain_text("oops")

    async def download(action: str) -> str:
        await page.locator("#export").click()
        async with page.expect_download() as info:
            await page.locator(f"[data-export={action}]").click()
        path = await (await info.value).path()
        return Path(path).read_text()

    records = [json.loads(line) for line in (await download("download-jsonl")).splitlines()]
    kinds = [(r["kind"], r.get("data")) for r in records]
    assert ("sent", "hello") in kinds
    assert ("recv", "echo: hello") in kinds
    assert ("stderr", "oops") in kinds
    assert any("latency_ms" in r for r in records if r["kind"] == "recv")

    text = await download("download-text")
    assert "→ hello" in text
    assert "← echo: hello" in text
    assert "[stderr] oops" in text

    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await page.locator("#export").click()
    await page.locator("[data-export=copy-text]").click()
    await expect(page.locator("#toast")).to_contain_text("Copied")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert "← echo: hello" in copied

    # Each message's own copy button (shown on hover) copies just its text.
    row = entries(page, "stderr").last
    await row.hover()
    await row.locator(".copy-entry").click()
    await expect(page.locator("#toast")).to_contain_text("Message copied")
    assert await page.evaluate("navigator.clipboard.readText()") == "oops"


async def test_export_menu_by_keyboard(page: Page, echo_server: ServerProcess) -> None:
    await open_console(page, echo_server.http_url + "/")
    await page.locator("#export").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("[data-export=copy-text]")).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(page.locator("[data-export=copy-jsonl]")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator("#export-list")).to_be_hidden()
    await expect(page.locator("#export")).to_be_focused()


async def test_stalled_output_is_explained(page: Page, echo_server: ServerProcess) -> None:
    await open_console(page, echo_server.http_url + "/")
    await send(page, "partial")
    await expect(entries(page, "warn").last).to_contain_text("without a newline")
    await send(page, "after")
    await expect(entries(page, "recv").last).to_contain_text("prompt> echo: after")


BINARY_BOT = """\
import os
while True:
    data = os.read(0, 65536)
    if not data:
        break
    os.write(1, b"\\x00\\xff" + data)
"""


async def test_binary_mode_shows_hex(page: Page, tmp_path: Path) -> None:
    bot = write_program(tmp_path, "bin.py", BINARY_BOT)
    async with run_wsdev("--binary", str(bot)) as server:
        await open_console(page, server.http_url + "/")
        await expect(page.locator(".entry.connect")).to_contain_text("binary mode")
        await send(page, "abc")
        reply = entries(page, "recv").last
        await expect(reply.locator(".bin-head")).to_have_text("binary · 6 bytes")
        await expect(reply.locator(".hex")).to_contain_text("00 ff 61 62 63 0a")
        await expect(reply.locator(".hex")).to_contain_text("|..abc.|")

        await page.locator("#format").select_option("hex")
        await send(page, "de ad be ef")
        await expect(entries(page, "sent").last.locator(".bin-head")).to_have_text(
            "binary · 4 bytes"
        )
        await expect(entries(page, "recv").last.locator(".hex")).to_contain_text(
            "00 ff de ad be ef"
        )


async def test_reconnects_after_server_restart(page: Page, tmp_path: Path) -> None:
    bot = write_program(tmp_path, "bot.py", ECHO_BOT)
    port = free_port()
    args = (f"--port={port}", "--address=127.0.0.1", "--no-dashboard", "--no-reload", str(bot))
    async with run_wsdev(*args, defaults=False) as first:
        await first.wait_for_log(rf"ws://127\.0\.0\.1:{port}/")
        await open_console(page, f"http://127.0.0.1:{port}/")
        await send(page, "before")
        await expect(entries(page, "recv").last).to_contain_text("echo: before")
        await first.stop()
    await expect(page.locator("#status")).to_have_attribute("data-state", "reconnecting")
    await expect(entries(page, "close").last).to_contain_text("reconnecting")

    async with run_wsdev(*args, defaults=False) as second:
        await second.wait_for_log(rf"ws://127\.0\.0\.1:{port}/")
        await expect(page.locator("#status")).to_have_attribute("data-state", "open")
        await expect(entries(page, "connect")).to_have_count(2)
        await send(page, "after")
        await expect(entries(page, "recv").last).to_contain_text("echo: after")
        # The transcript survived the restart.
        await expect(entries(page, "sent").first).to_contain_text("before")


VERSIONED_BOT = """\
import sys
for line in sys.stdin:
    print("v1 " + line, end="", flush=True)
"""


async def test_restart_on_edit_marks_and_reconnects(page: Page, tmp_path: Path) -> None:
    bot = write_program(tmp_path, "bot.py", VERSIONED_BOT)
    async with run_wsdev(
        "--port=0", "--address=127.0.0.1", "--no-dashboard", str(bot), cwd=tmp_path, defaults=False
    ) as server:
        match = await server.wait_for_log(r"ws://127\.0\.0\.1:(\d+)/")
        server.port = int(match.group(1))
        await open_console(page, server.http_url + "/")
        await send(page, "a")
        await expect(entries(page, "recv").last).to_contain_text("v1 a")

        bot.write_text(bot.read_text().replace('"v1 "', '"v2 "'))
        await expect(entries(page, "restart").last).to_contain_text("↻ bot.py changed")
        await expect(entries(page, "restart").last).to_contain_text("1012")
        await expect(entries(page, "connect")).to_have_count(2)
        await expect(page.locator("#status")).to_have_attribute("data-state", "open")
        await send(page, "b")
        await expect(entries(page, "recv").last).to_contain_text("v2 b")


async def test_refusals_are_shown_without_retrying(
    context: BrowserContext, page: Page, tmp_path: Path
) -> None:
    write_program(tmp_path, "hello.py", ECHO_BOT)
    async with run_wsdev("--maxforks=1", f"--dir={tmp_path}") as server:
        await open_console(page, server.http_url + "/hello.py")
        await send(page, "hi")
        await expect(entries(page, "recv").last).to_contain_text("echo: hi")

        # The one allowed program is running: a second console is told why it cannot start one.
        second = await context.new_page()
        await second.goto(server.http_url + "/hello.py")
        await expect(entries(second, "error")).to_contain_text("HTTP 429")
        await expect(second.locator("#status")).to_have_attribute("data-state", "closed")
        await second.close()

        await page.locator("#path").fill("/missing.py")
        await page.locator("#path").press("Enter")
        await expect(entries(page, "error")).to_contain_text("HTTP 404")
        await expect(entries(page, "error")).to_contain_text("/missing.py")
        await expect(page.locator("#status")).to_have_attribute("data-state", "closed")
        await expect(page.locator("#version")).to_contain_text("--dir")
        assert await entries(page, "error").count() == 1


# ---------------------------------------------------------------- floods, refusals, --dir, details


@pytest.mark.parametrize(("command", "kind"), [("flood", "recv"), ("errflood", "stderr")])
async def test_flood_is_virtual_marked_and_downloadable(
    page: Page, echo_server: ServerProcess, command: str, kind: str
) -> None:
    """Behaviour C6: only rows in view are in the document, a marker counts what left the
    window, and the download still holds every line; on stdout and on stderr."""
    await open_console(page, echo_server.http_url + "/")
    await send(page, f"{command} 12000")
    last = entries(page, kind).locator(".body", has_text=re.compile(r"line 12000$"))
    await expect(last).to_be_in_viewport()
    # connect + sent + 12,000 lines, of which the window keeps the last 5,000.
    await expect(page.locator("#marker")).to_contain_text("7,002 earlier lines not shown")
    assert await page.locator("#transcript .entry").count() < 300

    # At the top of the window: the marker, then the oldest line it holds.
    await page.locator("#transcript").evaluate("t => { t.scrollTop = 0; }")
    await expect(page.locator("#marker")).to_be_in_viewport()
    await expect(entries(page, kind).first.locator(".body")).to_contain_text(
        re.compile(r"line 7001$")
    )
    assert await page.locator("#transcript .entry").count() < 300

    await page.locator("#export").click()
    async with page.expect_download() as info:
        await page.locator("[data-export=download-jsonl]").click()
    path = await (await info.value).path()
    records = [json.loads(line) for line in Path(path).read_text().splitlines()]
    lines = [r["data"] for r in records if r["kind"] == kind]
    assert lines == [f"line {i}" for i in range(1, 12001)]


async def test_refusals_are_one_row_and_never_connected(
    context: BrowserContext, page: Page, tmp_path: Path
) -> None:
    """Behaviour C2: a 429, a 404 under --dir and a program that cannot start (500) each show
    one refusal row, and no "Connected"."""
    write_program(tmp_path, "hello.py", ECHO_BOT)
    broken = tmp_path / "broken.sh"
    broken.write_text("#!/nonexistent/interpreter\n")
    broken.chmod(0o755)
    async with run_wsdev("--maxforks=1", f"--dir={tmp_path}") as server:
        await open_console(page, server.http_url + "/hello.py")

        second = await context.new_page()
        await second.goto(server.http_url + "/hello.py")
        await expect(entries(second, "error")).to_contain_text("HTTP 429")
        await expect(second.locator("#status")).to_have_attribute("data-state", "closed")
        await expect(second.locator("#status-text")).to_contain_text("refused")
        await expect(second.locator("#transcript .entry")).to_have_count(1)
        assert await entries(second, "connect").count() == 0
        await second.close()

        page.on("dialog", lambda dialog: dialog.dismiss())
        await page.locator("#path").fill("/missing.py")
        await page.locator("#path").press("Enter")
        await expect(entries(page, "error")).to_contain_text("HTTP 404")
        await expect(page.locator("#status-text")).to_contain_text("refused")
        await page.locator("#path").fill("/broken.sh")
        await page.locator("#path").press("Enter")
        await expect(entries(page, "error")).to_have_count(2)
        await expect(entries(page, "error").last).to_contain_text("HTTP 500")
        await expect(page.locator("#status")).to_have_attribute("data-state", "closed")
        # Only the first console connected; each refusal is its one error row.
        assert await entries(page, "connect").count() == 1


async def test_dir_root_lists_programs_that_open_their_consoles(page: Page, tmp_path: Path) -> None:
    """Behaviour C7: the --dir root (and any folder path) lists the folder's programs."""
    write_program(tmp_path, "hello.py", ECHO_BOT)
    idle = tmp_path / "notes.sh"
    idle.write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "games").mkdir()
    write_program(tmp_path / "games", '<img src=x onerror="window.__pwned=1">.py', ECHO_BOT)
    async with run_wsdev(f"--dir={tmp_path}") as server:
        await page.goto(server.http_url + "/")
        listing = page.locator(".listing-entries")
        await expect(listing.locator("a", has_text="hello.py")).to_be_visible()
        await expect(listing.locator(".idle")).to_contain_text("notes.sh")
        await expect(listing.locator(".idle")).to_contain_text("chmod +x notes.sh")
        assert await listing.locator(".idle a").count() == 0

        await listing.locator("a", has_text="games/").click()
        await expect(page.locator("h1")).to_contain_text("games")
        hostile = listing.locator("a", has_text="<img")
        await expect(hostile).to_be_visible()
        assert await page.locator("img").count() == 0
        assert await page.evaluate("window.__pwned") is None
        await listing.locator("a", has_text="../").click()

        await listing.locator("a", has_text="hello.py").click()
        await expect(page.locator("#status")).to_have_attribute("data-state", "open")
        await expect(page.locator("#path")).to_have_value("/hello.py")
        await send(page, "hi")
        await expect(entries(page, "recv").last).to_contain_text("echo: hi")


async def test_env_lists_every_variable_the_path_ones_first(
    page: Page, echo_server: ServerProcess
) -> None:
    await open_console(page, echo_server.http_url + "/room?x=1")
    env = page.locator(".entry.connect .env")
    await env.locator("summary").click()
    names = await env.locator("tr td:first-child").all_inner_texts()
    assert names[:6] == [
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "REQUEST_URI",
        "REMOTE_ADDR",
        "UNIQUE_ID",
    ]
    assert {"SERVER_SOFTWARE", "GATEWAY_INTERFACE", "HTTP_USER_AGENT", "PATH"} <= set(names)
    await expect(env.locator("summary")).to_have_text(f"CGI environment ({len(names)} variables)")


GREETER = """\
import sys
print("welcome\\nsay something", flush=True)  # two lines, one read: one envelope
for line in sys.stdin:
    print("echo: " + line, end="", flush=True)
"""


async def test_the_lines_of_one_read_are_rows_of_their_own_each_timed(
    page: Page, echo_server: ServerProcess
) -> None:
    """Behaviour C6: the lines of one read come as one envelope; each is its own row, in order,
    and as replies to a message sent they each get a latency badge."""
    await open_console(page, echo_server.http_url + "/")
    await send(page, "flood 3")
    rows = entries(page, "recv")
    await expect(rows.locator(".body")).to_have_text(["line 1", "line 2", "line 3"])
    await expect(rows.locator(".latency")).to_have_count(3)
    await send(page, "errflood 2")
    await expect(entries(page, "stderr").locator(".body")).to_have_text(
        [re.compile("line 1$"), re.compile("line 2$")]
    )


async def test_queued_message_is_shown_and_greeting_gets_no_latency(
    page: Page, tmp_path: Path
) -> None:
    """A message typed while the server is away shows at once as queued, and goes out when the
    program runs again; the greeting that comes first is not a reply (no latency badge)."""
    bot = write_program(tmp_path, "greet.py", GREETER)
    port = free_port()
    args = (f"--port={port}", "--address=127.0.0.1", "--no-dashboard", "--no-reload", str(bot))
    async with run_wsdev(*args, defaults=False) as first:
        await first.wait_for_log(rf"ws://127\.0\.0\.1:{port}/")
        await open_console(page, f"http://127.0.0.1:{port}/")
        await expect(entries(page, "recv").first).to_have_text(re.compile("welcome"))
        await first.stop()
    await expect(page.locator("#status")).to_have_attribute("data-state", "reconnecting")
    await send(page, "later")
    queued = entries(page, "sent").last
    await expect(queued).to_contain_text("later")
    await expect(queued.locator(".tag")).to_have_text("queued")
    await expect(page.locator("#status-text")).to_contain_text("1 queued")

    async with run_wsdev(*args, defaults=False) as second:
        await second.wait_for_log(rf"ws://127\.0\.0\.1:{port}/")
        await expect(entries(page, "recv").last).to_contain_text("echo: later")
        await expect(queued.locator(".tag")).to_have_count(0)
        greetings = entries(page, "recv").filter(has_text="welcome")
        await expect(greetings).to_have_count(2)
        assert await greetings.locator(".latency").count() == 0
        assert await entries(page, "recv").locator(".latency").count() == 0
        # A message sent to the running program starts a turn: its reply is timed.
        await send(page, "now")
        reply = entries(page, "recv").last
        await expect(reply).to_contain_text("echo: now")
        await expect(reply.locator(".latency")).to_have_count(1)


async def test_status_text_never_moves_the_endpoint_field(
    browser: Browser, echo_server: ServerProcess
) -> None:
    for width in (1100, 420):
        ctx = await browser.new_context(viewport={"width": width, "height": 700})
        try:
            page = await ctx.new_page()
            page.set_default_timeout(WAIT_MS)
            await open_console(page, echo_server.http_url + "/")
            path_open = await page.locator("#path").bounding_box()
            status_open = await page.locator("#status").bounding_box()
            await page.keyboard.press("Alt+c")
            await expect(page.locator("#status")).to_have_attribute("data-state", "closed")
            path_closed = await page.locator("#path").bounding_box()
            status_closed = await page.locator("#status").bounding_box()
            connect = await page.locator("#connect").bounding_box()
            assert path_open == path_closed, width
            assert status_open is not None and status_closed is not None and connect is not None
            assert status_open["y"] == status_closed["y"], width
            # The pill shares the first row with the buttons.
            assert (
                abs(
                    status_closed["y"]
                    + status_closed["height"] / 2
                    - connect["y"]
                    - connect["height"] / 2
                )
                < 4
            ), width
        finally:
            await ctx.close()


async def test_narrow_hex_dump_is_whole(browser: Browser, tmp_path: Path) -> None:
    bot = write_program(tmp_path, "bin.py", BINARY_BOT)
    ctx = await browser.new_context(viewport={"width": 420, "height": 700})
    try:
        page = await ctx.new_page()
        page.set_default_timeout(WAIT_MS)
        async with run_wsdev("--binary", str(bot)) as server:
            await open_console(page, server.http_url + "/")
            await send(page, "abcdefghijklmnopqrstuvwxyz")
            hex_dump = entries(page, "recv").last.locator(".hex")
            await expect(hex_dump).to_contain_text("|..abcdef|")
            overflow = await hex_dump.evaluate("e => e.scrollWidth - e.clientWidth")
            assert overflow <= 0
    finally:
        await ctx.close()


async def test_no_keyboard_hints_on_a_touch_screen(
    browser: Browser, echo_server: ServerProcess
) -> None:
    ctx = await browser.new_context(
        viewport={"width": 400, "height": 700}, has_touch=True, is_mobile=True
    )
    try:
        page = await ctx.new_page()
        page.set_default_timeout(WAIT_MS)
        await open_console(page, echo_server.http_url + "/")
        await expect(page.locator("#hints span", has_text="Shift")).to_be_hidden()
        await expect(page.locator("#hints kbd").first).to_be_hidden()
        await expect(page.locator("#send")).to_be_visible()
    finally:
        await ctx.close()
