"""The Host and Origin decision of behaviour B10, case by case, on ``Guard`` itself.

``test_guard_server.py`` sends the same kinds of requests to a real wsdev over real sockets; this
file covers the combinations (flags × Host × Origin × route) without starting anything.
"""

from __future__ import annotations

import pytest

from wsdev.config import Config
from wsdev.guard import (
    DECISION_CACHE_SIZE,
    Guard,
    OriginRule,
    Route,
    listens_on_loopback_only,
    machine_names,
)

HOST = "127.0.0.1:8080"
MACHINE = "devbox"


def guard(**settings: object) -> Guard:
    return Guard(Config().replace(**settings), hostname=MACHINE)


# (Host header, allowed on loopback?)
HOST_CASES = [
    ("127.0.0.1:8080", True),
    ("127.0.0.1", True),
    ("127.8.9.10:1", True),
    ("localhost:8080", True),
    ("LOCALHOST:8080", True),
    ("localhost.:8080", True),
    ("app.localhost:8080", True),
    ("[::1]:8080", True),
    ("[::1]", True),
    ("[::ffff:127.0.0.1]:8080", True),
    ("devbox:8080", True),
    ("DevBox.local:8080", True),
    ("", True),  # no Host at all: not a browser, which always sends one
    ("attacker.example:8080", False),
    ("attacker.example", False),
    ("localhost.attacker.example:8080", False),
    ("127.0.0.1.attacker.example", False),
    ("devbox.attacker.example", False),
    ("0.0.0.0:8080", False),
    ("10.0.0.7:8080", False),
    ("[::]:8080", False),
    ("[fe80::1]:8080", False),
    ("2130706433:8080", False),
    ("localhost:abc", False),
    ("[::1", False),
]


@pytest.mark.parametrize(("host", "allowed"), HOST_CASES)
@pytest.mark.parametrize("route", list(Route))
def test_host_check_on_loopback(host: str, allowed: bool, route: Route) -> None:
    why = guard().refusal(route, host, None)
    assert (why is None) is allowed, why
    if not allowed:
        assert why is not None and "--allow-host=" in why and "DNS rebinding" in why


def test_allow_host_adds_names_and_star_allows_all() -> None:
    named = guard(allow_hosts=("myapp.test", "10.0.0.7"))
    assert named.refusal(Route.PROGRAM, "myapp.test:8080", None) is None
    assert named.refusal(Route.PLAIN, "10.0.0.7:8080", None) is None
    assert named.refusal(Route.PLAIN, "other.test:8080", None) is not None
    # A page served under an allowed name may also drive the program (its origin is local).
    assert named.refusal(Route.PROGRAM, "127.0.0.1:8080", "http://myapp.test:3000") is None
    anything = guard(allow_hosts=("*",))
    assert anything.refusal(Route.PLAIN, "attacker.example", None) is None


def test_host_refusal_names_the_flag_for_that_host() -> None:
    why = guard().refusal(Route.PLAIN, "Evil.Example:8080", None)
    assert why is not None and "--allow-host=Evil.Example" in why
    why = guard().refusal(Route.PLAIN, "[2001:db8::1]:8080", None)
    assert why is not None and "--allow-host=[2001:db8::1]" in why


@pytest.mark.parametrize(
    "settings",
    [
        {"addresses": ("0.0.0.0",)},
        {"addresses": ("127.0.0.1", "192.0.2.1")},
        {"addresses": ("::",)},
        {"unixsocket": "/tmp/wsdev.sock"},
    ],
)
def test_no_host_check_and_no_default_origin_rule_beyond_loopback(
    settings: dict[str, object],
) -> None:
    wide = guard(**settings)
    assert not wide.loopback_only and wide.rule is OriginRule.ANY
    assert wide.refusal(Route.PROGRAM, "192.0.2.1:8080", "http://elsewhere.example") is None
    assert wide.refusal(Route.PLAIN, "attacker.example", "null") is None


@pytest.mark.parametrize(
    "addresses",
    [(), ("127.0.0.1",), ("::1",), ("localhost",), ("127.0.0.2", "[::1]"), ("app.localhost",)],
)
def test_loopback_addresses(addresses: tuple[str, ...]) -> None:
    assert listens_on_loopback_only(Config(addresses=addresses))


# (Origin header, allowed on the program's path by the loopback default?)
LOCAL_ORIGIN_CASES = [
    (None, True),  # curl, scripts, websocketd clients
    ("", True),
    ("http://localhost", True),
    ("http://localhost:3000", True),
    ("https://localhost:8443", True),
    ("http://127.0.0.1:8080", True),
    ("http://127.0.0.53", True),
    ("http://[::1]:5173", True),
    ("http://app.localhost:3000", True),
    ("http://devbox:3000", True),
    ("http://devbox.local", True),
    ("HTTP://LOCALHOST:3000", True),
    ("http://evil.example", False),
    ("https://evil.example:8080", False),
    ("http://localhost.evil.example", False),
    ("http://127.0.0.1.evil.example", False),
    ("http://user@evil.example", False),
    ("http://192.168.1.20:8080", False),
    ("null", False),
    ("file://", False),
    ("chrome-extension://abcdef", False),
    ("evil.example", False),
    ("http://[::1", False),
]


@pytest.mark.parametrize(("origin", "allowed"), LOCAL_ORIGIN_CASES)
@pytest.mark.parametrize("route", [Route.PROGRAM, Route.PLAIN])
def test_loopback_default_allows_pages_on_this_machine(
    origin: str | None, allowed: bool, route: Route
) -> None:
    why = guard().refusal(route, HOST, origin)
    assert (why is None) is allowed, why


def test_refusals_say_how_to_allow() -> None:
    evil = guard().refusal(Route.PROGRAM, HOST, "http://evil.example:3000/page")
    assert evil is not None
    assert "--origin=http://evil.example:3000 " in evil and "--origin=*" in evil
    assert "is not a page on this machine" in evil
    odd = guard().refusal(Route.PROGRAM, HOST, "http://user@evil.example")
    assert odd is not None and "--origin=ORIGIN" in odd  # never a misleading value to paste
    null = guard().refusal(Route.PROGRAM, HOST, "null")
    assert null is not None and "--staticdir" in null and "--origin=null" in null
    own = guard().refusal(Route.OWN, HOST, "http://evil.example")
    assert own is not None and "/_wsdev/" in own
    listed = guard(origins=("example.com",)).refusal(Route.PROGRAM, HOST, "http://evil.example")
    assert listed == (
        "origin not allowed: Origin is not listed in allowed list "
        "(to allow it, add http://evil.example to --origin)"
    )
    same = guard(sameorigin=True).refusal(Route.PROGRAM, HOST, "http://evil.example")
    assert same is not None and same.startswith("origin not allowed: Same origin policy mismatch")
    assert "--sameorigin" in same


# (Host header, Origin header or None, allowed on /_wsdev/?)
OWN_ROUTE_CASES = [
    (HOST, None, True),
    (HOST, "http://127.0.0.1:8080", True),
    (HOST, "https://127.0.0.1:8080", True),  # the port says it is this server
    ("localhost:8080", "http://localhost:8080", True),
    ("LocalHost:8080", "http://localhost:8080", True),
    ("localhost", "http://localhost", True),
    ("localhost", "http://localhost:80", True),
    (HOST, "http://localhost:8080", False),  # another name is another origin
    (HOST, "http://127.0.0.1:3000", False),  # another local page is still another origin
    (HOST, "http://127.0.0.1", False),
    (HOST, "http://evil.example", False),
    (HOST, "null", False),
    ("", "http://127.0.0.1:8080", False),
]


@pytest.mark.parametrize(("host", "origin", "allowed"), OWN_ROUTE_CASES)
@pytest.mark.parametrize(
    "settings",
    [{}, {"origins": ("*",)}, {"origins": ("evil.example", "null")}, {"addresses": ("0.0.0.0",)}],
    ids=["default", "any", "listed", "wide"],
)
def test_own_routes_answer_same_origin_pages_only(
    host: str, origin: str | None, allowed: bool, settings: dict[str, object]
) -> None:
    why = guard(**settings).refusal(Route.OWN, host, origin)
    assert (why is None) is allowed, why


def test_own_routes_on_a_wide_address_follow_the_host() -> None:
    wide = guard(addresses=("0.0.0.0",))
    assert wide.refusal(Route.OWN, "192.0.2.1:8080", "http://192.0.2.1:8080") is None
    assert wide.refusal(Route.OWN, "dev.example:8080", "http://dev.example:8080") is None
    assert wide.refusal(Route.OWN, "dev.example:8080", "http://evil.example:8080") is not None


def test_own_routes_under_tls_default_the_host_port_to_443() -> None:
    tls = guard(ssl=True)
    assert tls.refusal(Route.OWN, "localhost", "https://localhost") is None
    assert tls.refusal(Route.OWN, "localhost", "http://localhost") is not None


def test_origin_star_allows_every_page_but_keeps_the_host_check() -> None:
    star = guard(origins=("*",))
    assert star.rule is OriginRule.ANY
    for origin in (None, "null", "http://evil.example", "garbage"):
        assert star.refusal(Route.PROGRAM, HOST, origin) is None
        assert star.refusal(Route.PLAIN, HOST, origin) is None
    assert star.refusal(Route.PROGRAM, "attacker.example", "http://attacker.example") is not None


def test_origin_null_lets_null_through_and_keeps_the_default_otherwise() -> None:
    null = guard(origins=("null",))
    assert null.rule is OriginRule.LOCAL
    assert null.refusal(Route.PROGRAM, HOST, "null") is None
    assert null.refusal(Route.PLAIN, HOST, "null") is None
    assert null.refusal(Route.PROGRAM, HOST, None) is None
    assert null.refusal(Route.PROGRAM, HOST, "http://localhost:3000") is None
    assert null.refusal(Route.PROGRAM, HOST, "http://evil.example") is not None
    # With websocketd entries beside it, websocketd's rule decides everything but null.
    listed = guard(origins=("null", "example.com"))
    assert listed.rule is OriginRule.WEBSOCKETD
    assert listed.refusal(Route.PROGRAM, HOST, "null") is None
    assert listed.refusal(Route.PROGRAM, HOST, "http://example.com") is None
    assert listed.refusal(Route.PROGRAM, HOST, "http://localhost:3000") is not None
    assert listed.refusal(Route.PROGRAM, HOST, None) is not None


@pytest.mark.parametrize(
    "settings", [{"origins": ("example.com",)}, {"sameorigin": True}], ids=["origin", "same"]
)
def test_websocketd_flags_replace_the_default_for_upgrades_only(
    settings: dict[str, object],
) -> None:
    strict = guard(**settings)
    assert strict.rule is OriginRule.WEBSOCKETD
    # websocketd refuses an upgrade without an Origin once either flag is set, and so does wsdev.
    assert strict.refusal(Route.PROGRAM, HOST, None) is not None
    assert strict.refusal(Route.PROGRAM, HOST, "http://localhost:3000") is not None
    # websocketd checks no plain request: neither does wsdev then.
    assert strict.refusal(Route.PLAIN, HOST, "http://evil.example") is None
    # The Host check stays: --sameorigin alone cannot tell a rebound name from this machine.
    assert strict.refusal(Route.PROGRAM, "attacker.example", "http://attacker.example") is not None


def test_machine_names() -> None:
    assert machine_names("DevBox") == {"devbox", "devbox.local"}
    assert machine_names("box.corp.example") == {
        "box.corp.example",
        "box",
        "box.corp.example.local",
        "box.local",
    }
    assert machine_names("mac.local") == {"mac.local", "mac"}
    assert machine_names("") == frozenset()


def test_decisions_are_remembered_and_bounded() -> None:
    g = guard()
    for index in range(1000):
        g.refusal(Route.PLAIN, f"name{index}.example", None)
    assert g.refusal(Route.PLAIN, "localhost:8080", None) is None
    assert g.refusal(Route.PLAIN, "name999.example", None) is not None
    assert len(g._decided) <= DECISION_CACHE_SIZE


def test_allow_host_on_the_command_line_and_in_the_environment() -> None:
    from wsdev.cli import build_config, parse_args

    def allowed(*argv: str, environ: dict[str, str] | None = None) -> tuple[str, ...]:
        return build_config(parse_args([*argv, "cat"]), environ=environ or {}).allow_hosts

    assert allowed("--allow-host=MyApp.test.", "--allow-host", "[::1]") == ("myapp.test", "::1")
    assert allowed("--allow-host=*") == ("*",)
    assert allowed(environ={"WSDEV_ALLOW_HOST": "a.test:b.test"}) == ("a.test", "b.test")
    # A wsdev option, so it may also follow COMMAND.
    config = build_config(parse_args(["cat", "--allow-host=x.test"]), environ={})
    assert config.allow_hosts == ("x.test",) and config.command[1:] == ()


@pytest.mark.parametrize("value", ["myapp.test:8080", "", "http://myapp.test", "a b"])
def test_a_bad_allow_host_is_one_clear_error(value: str) -> None:
    from wsdev.cli import build_config, parse_args
    from wsdev.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--allow-host=.*without a port"):
        build_config(parse_args([f"--allow-host={value}", "cat"]), environ={})
