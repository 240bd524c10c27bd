"""The ``--origin`` / ``--sameorigin`` matcher, case by case.

Each expectation was first observed on websocketd 0.4.1 (403 or 101 for the same flags, Host and
Origin); the few places where wsdev deliberately differs are marked. ``test_http_compare.py``
replays a subset against both servers.
"""

from __future__ import annotations

import pytest

from wsdev.config import Config
from wsdev.origin import origin_allowed, origin_refusal, parse_origin, split_host_port

HOST = "127.0.0.1:18802"


def config(*origins: str, sameorigin: bool = False, ssl: bool = False) -> Config:
    return Config(origins=origins, sameorigin=sameorigin, ssl=ssl)


# (origin entries, Origin header or None, allowed?)
ORIGIN_LIST_CASES = [
    (("example.com",), None, False),
    (("example.com",), "null", False),
    (("example.com",), "", False),
    (("example.com",), "http://example.com", True),
    (("example.com",), "http://example.com:80", True),
    (("example.com",), "http://example.com:8080", True),
    (("example.com",), "https://example.com", True),
    (("example.com",), "https://example.com:443", True),
    (("example.com",), "HTTP://example.com", True),
    (("example.com",), "http://EXAMPLE.com", False),
    (("example.com",), "http://example.com/", True),
    (("example.com",), "http://example.com/path", True),
    (("example.com",), "http://user@example.com", True),
    (("example.com",), "http://example.com:", True),
    (("example.com",), "ws://example.com", True),
    (("example.com",), "example.com", False),
    (("example.com",), "http://sub.example.com", False),
    (("example.com",), "http://example.com.evil.org", False),
    (("example.com",), "file://", False),
    (("example.com:80",), "http://example.com", True),
    (("example.com:80",), "http://example.com:80", True),
    (("example.com:80",), "http://example.com:8080", False),
    (("example.com:80",), "https://example.com", False),
    (("example.com:443",), "https://example.com", True),
    (("example.com:443",), "https://example.com:443", True),
    (("example.com:443",), "http://example.com", False),
    (("example.com:443",), "https://example.com:8443", False),
    (("example.com:8080",), "http://example.com:8080", True),
    (("example.com:8080",), "http://example.com", False),
    (("https://example.com",), "https://example.com", True),
    (("https://example.com",), "https://example.com:8443", True),
    (("https://example.com",), "http://example.com", False),
    (("HTTPS://example.com",), "https://example.com:443", True),
    (("http://example.com:8080",), "http://example.com:8080", True),
    (("http://example.com:8080",), "https://example.com:8080", False),
    (("http://example.com:8080",), "http://example.com", False),
    (("http://example.com/",), "http://example.com", False),
    (("EXAMPLE.com",), "http://example.com", False),
    (("example.com", " localhost"), "http://localhost:18802", False),
    (("localhost", "example.com:8080"), "http://localhost:18802", True),
    (("localhost", "example.com:8080"), "http://example.com:8080", True),
    (("localhost", "example.com:8080"), "http://example.com", False),
    (("127.0.0.1:18802",), "http://127.0.0.1:18802", True),
    (("127.0.0.1:18802",), "https://127.0.0.1:18802", True),
    (("127.0.0.1:18802",), "http://127.0.0.1", False),
    (("127.0.0.1:18802",), "http://LOCALHOST:18802", False),
    (("chrome-extension://abcdef",), "chrome-extension://abcdef", True),
    (("chrome-extension://abcdef",), "http://abcdef", False),
    (("[::1]:18802",), "http://[::1]:18802", True),
    (("[::1]:18802",), "http://[::1]", False),
    (("http://[::1]",), "http://[::1]", True),
    # websocketd keeps the brackets of a port-less IPv6 entry and so never matches another port;
    # "no port = any port" holds here.
    (("[::1]",), "http://[::1]:18802", True),
    (("[::1]",), "http://[::1]:80", True),
    # websocketd 0.4.1's handler panics on entries under three characters; here they match
    # only themselves (guard.py takes "*" and "null" as wsdev's own before this rule runs).
    (("*",), "http://example.com", False),
    (("*",), "http://*", True),
]


@pytest.mark.parametrize(("entries", "origin", "allowed"), ORIGIN_LIST_CASES)
def test_origin_list(entries: tuple[str, ...], origin: str | None, allowed: bool) -> None:
    assert origin_allowed(origin, HOST, config(*entries)) is allowed


# (Host header, Origin header or None, allowed?) under --sameorigin
SAME_ORIGIN_CASES = [
    (HOST, None, False),
    (HOST, "null", False),
    (HOST, "http://127.0.0.1:18802", True),
    (HOST, "https://127.0.0.1:18802", True),  # the scheme is not compared
    (HOST, "http://127.0.0.1:18802/", True),
    (HOST, "http://127.0.0.1:18802?x", True),
    (HOST, "http://127.0.0.1:18802#x", False),
    (HOST, "http://127.0.0.1:018802", False),  # ports compare as written
    (HOST, "http://127.0.0.1", False),
    (HOST, "http://localhost:18802", False),
    (HOST, "file:", False),
    (HOST, "/foo", False),
    ("localhost:18802", "http://localhost:18802", True),
    ("localhost:18802", "http://LOCALHOST:18802", False),
    ("example.com", "http://example.com", True),
    ("example.com", "http://example.com:80", True),
    ("example.com", "https://example.com", False),
    ("example.com", "http://example.com:8080", False),
    ("example.com:80", "http://example.com", True),
    ("example.com:8080", "http://example.com:8080", True),
    ("example.com:8080", "http://example.com", False),
    ("EXAMPLE.com", "http://example.com", False),
    ("[::1]:18802", "http://[::1]:18802", True),
    ("[::1]:18802", "http://[::1]", False),
    # websocketd lets a missing or null Origin through when the Host header is empty too;
    # behaviour A5 refuses a missing or null Origin whenever a restriction is set.
    ("", None, False),
    ("", "null", False),
]


@pytest.mark.parametrize(("host", "origin", "allowed"), SAME_ORIGIN_CASES)
def test_same_origin(host: str, origin: str | None, allowed: bool) -> None:
    assert origin_allowed(origin, host, config(sameorigin=True)) is allowed


def test_same_origin_under_tls_defaults_the_host_port_to_443() -> None:
    tls = config(sameorigin=True, ssl=True)
    assert origin_allowed("https://example.com", "example.com", tls)
    assert not origin_allowed("http://example.com", "example.com", tls)
    assert origin_allowed("https://example.com:8443", "example.com:8443", tls)


def test_both_flags_must_both_pass() -> None:
    both = config("example.com", sameorigin=True)
    assert origin_allowed("http://example.com", "example.com", both)
    assert not origin_allowed("http://example.com", "other.org", both)
    assert not origin_allowed("http://other.org", "other.org", both)


@pytest.mark.parametrize(
    "origin",
    [None, "", "null", "example.com", "http://[::1", "%zz", "http://exa mple.com", "x://y#z"],
)
def test_no_restriction_allows_everything(origin: str | None) -> None:
    # websocketd refuses an unparsable Origin even with no flag set; with nothing to enforce,
    # wsdev lets it through.
    assert origin_allowed(origin, HOST, Config())


def test_empty_entries_are_no_restriction() -> None:
    # "--origin=" is websocketd's "no restriction"; empty entries from "a,,b" mean nothing.
    assert origin_allowed("http://anything.org", HOST, config(""))
    assert not origin_allowed("http://anything.org", HOST, config("", "example.com"))


@pytest.mark.parametrize(
    "origin",
    [
        "example.com",
        "http://[::1",
        "http://exa mple.com",
        "%zz",
        "http://example.com:abc",
        "http://ex%zzample.com",
        "http://a:1:2",
        "http://[::1]x",
    ],
)
def test_unparsable_origin_is_refused_with_a_reason(origin: str) -> None:
    reason = origin_refusal(origin, HOST, config("example.com"))
    assert reason is not None and "parsing" in reason


def test_refusal_reasons_use_websocketd_wording() -> None:
    assert origin_refusal("http://x.org", HOST, config("example.com")) == (
        "Origin is not listed in allowed list"
    )
    assert origin_refusal("http://x.org", HOST, config(sameorigin=True)) == (
        "Same origin policy mismatch"
    )
    assert origin_refusal("http://example.com", HOST, config("example.com")) is None


@pytest.mark.parametrize(
    ("origin", "parsed"),
    [
        ("http://example.com", ("http", "example.com", "80")),
        ("https://example.com", ("https", "example.com", "443")),
        ("HTTPS://Example.com:8443/x?y", ("https", "Example.com", "8443")),
        ("http://u:p@h:1", ("http", "h", "1")),
        ("http://[::1]:9", ("http", "::1", "9")),
        ("file:", ("file", "", "80")),
        ("file:///etc/passwd", ("file", "", "80")),
        ("mailto:someone", ("mailto", "", "80")),
        ("/relative", ("", "", "80")),
        ("http://example.com:99999", ("http", "example.com", "99999")),
        ("relative", None),
    ],
)
def test_parse_origin(origin: str, parsed: tuple[str, str, str] | None) -> None:
    assert parse_origin(origin) == parsed


@pytest.mark.parametrize(
    ("host", "tls", "split"),
    [
        ("example.com", False, ("example.com", "80", False)),
        ("example.com", True, ("example.com", "443", False)),
        ("example.com:8080", False, ("example.com", "8080", True)),
        ("example.com:", False, ("example.com", "", True)),
        ("[::1]", False, ("::1", "80", False)),
        ("[::1]:8080", True, ("::1", "8080", True)),
        ("", False, ("", "80", False)),
        ("::1", False, None),
        ("[::1", False, None),
        ("h:x", False, None),
    ],
)
def test_split_host_port(host: str, tls: bool, split: tuple[str, str, bool] | None) -> None:
    assert split_host_port(host, tls=tls) == split
