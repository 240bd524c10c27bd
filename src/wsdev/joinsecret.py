"""The join secret of a room (behaviour B14): only people with the printed link get in.

Under ``--lan`` (or with ``--token=SECRET``) every request must carry the secret: in the link's
query (``?join=SECRET``) or in the cookie the console page sets from it, so reloads and
reconnects work without the link. A request without it gets 403 and a page that says to ask
for the link.

The secret is wsdev's, never the program's: it is taken out of the query string, the request
URI and the Cookie header before any environment is built from them, so neither
``QUERY_STRING``, ``REQUEST_URI`` nor ``HTTP_COOKIE`` carries it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import replace
from urllib.parse import unquote

from wsdev.environ import RequestFacts

PARAM = "join"
# The reason of a refusal, for the log and the console.
JOIN_REFUSAL = "this server needs its join secret: ask for the link (--lan, --token)"
COOKIE = "wsdev_join"
# Easy to read aloud and to type from a projector: no 0/O, 1/l/I.
ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
LENGTH = 8

REFUSAL_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ask for the link</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}
</style></head><body>
<h1>Ask for the link</h1>
<p>This wsdev server lets in only people who have its link, which carries a short secret.
Ask whoever runs it for the link (or scan the QR code on their screen), then open it here.</p>
</body></html>
"""


def new_secret() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


class JoinSecret:
    """Checks a request for the secret, and takes the secret out of what the program sees."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._encoded = secret.encode()

    def _matches(self, value: str) -> bool:
        return hmac.compare_digest(unquote(value).encode(), self._encoded)

    def in_query(self, query: str) -> bool:
        return any(
            name == PARAM and self._matches(value)
            for name, _, value in (pair.partition("=") for pair in query.split("&"))
        )

    def in_cookie(self, cookie_header: str) -> bool:
        return any(
            name.strip() == COOKIE and self._matches(value.strip())
            for name, _, value in (part.partition("=") for part in cookie_header.split(";"))
        )

    def admits(self, query: str, cookie_header: str) -> bool:
        return self.in_query(query) or self.in_cookie(cookie_header)

    def cookie(self, *, tls: bool) -> str:
        """The Set-Cookie value: for this server only, never sent along by other sites' pages."""
        secure = "; Secure" if tls else ""
        return f"{COOKIE}={self.secret}; Path=/; HttpOnly; SameSite=Strict{secure}"

    @staticmethod
    def clean_target(target: str) -> str:
        """A request target without the secret's query parameter."""
        path, mark, query = target.partition("?")
        if not mark:
            return target
        kept = clean_query(query)
        return f"{path}?{kept}" if kept else path

    def clean_facts(self, facts: RequestFacts) -> RequestFacts:
        """The request as the program may see it: no secret in its URI or its cookies."""
        headers = tuple(
            (name, clean_cookie(value)) if name.lower() == "cookie" else (name, value)
            for name, value in facts.headers
        )
        headers = tuple(
            (name, value) for name, value in headers if value or name.lower() != "cookie"
        )
        return replace(facts, raw_path=self.clean_target(facts.raw_path), headers=headers)


def clean_query(query: str) -> str:
    return "&".join(pair for pair in query.split("&") if pair.partition("=")[0] != PARAM)


def clean_cookie(header: str) -> str:
    kept = [part.strip() for part in header.split(";") if part.partition("=")[0].strip() != COOKIE]
    return "; ".join(part for part in kept if part)
