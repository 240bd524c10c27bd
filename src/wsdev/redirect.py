"""``--redirport``: a plain-HTTP listener sending every request to the TLS address (behaviour A5).

Every request gets a 301 to ``https://HOST:TLS_PORT/path?query``, HOST being the Host header's
host without its port. websocketd 0.4.1 drops the path and query (always redirecting to ``/``),
crashes on a Host header without a port and mangles a bracketed IPv6 host; wsdev keeps the path
and query and handles both hosts. A request without a Host header gets a 400, as Go's server
gives one. ``--header`` and ``--header-http`` apply here too.
"""

from __future__ import annotations

import re

from aiohttp import web

from wsdev.config import Config
from wsdev.origin import split_host_port

# What a host may be, so a Host header cannot smuggle a path or user into the Location.
_NAME = re.compile(r"[A-Za-z0-9.\-_~%]+")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+(%[A-Za-z0-9.\-_~]+)?")


def redirect_app(config: Config, tls_port: int) -> web.Application:
    """The application to serve on ``--redirport``."""

    async def redirect(request: web.Request) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        split = split_host_port(host, tls=True)
        name = split[0] if split is not None else ""
        if ":" in name and _IPV6.fullmatch(name):
            name = f"[{name}]"
        elif not _NAME.fullmatch(name):
            return web.Response(
                status=400, text="400 Bad Request: missing or malformed Host header\n"
            )
        # The raw target keeps the client's own percent-encoding; an absolute-form target
        # ("GET http://h/p") contributes only its path and query.
        target = request.rel_url.raw_path_qs if request.rel_url.raw_path else "/"
        location = f"https://{name}:{tls_port}{target}"
        return web.Response(status=301, headers={"Location": location})

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in (*config.headers, *config.headers_http):
            response.headers.add(name, value)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    app.on_response_prepare.append(add_headers)
    return app
