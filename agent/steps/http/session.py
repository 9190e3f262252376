"""The HTTP side of one run attempt: httpx requests sent over its transports, sharing
the attempt's cookie jar.

One :class:`~agent.steps.http.transport.WireTransport` per TLS verify setting, made on
first use and closed when the attempt ends, so connections and cookies last across the
steps of a run and never across runs. Transports take the agent-wide SSL context: a run
never builds its own.

It does for a step what httpx's ``AsyncClient`` did, and only that, without building
a client per run (~4% of the agent's CPU at 100 steps/s) or reading every response
for cookies through ``urllib`` (~6%, with no cookie in sight): the same default headers
(offering only the content codings :mod:`agent.steps.http.body` decodes within its
cap), the jar's cookies on each request and a response's ``Set-Cookie`` into the jar,
Basic credentials from a URL's user info. Redirects are the step's
(:mod:`agent.steps.http.redirect`). No proxies or ``.netrc`` are ever read.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from http.cookiejar import CookieJar
from typing import Any

import httpx

from agent import __version__
from agent.run.egress import EgressPolicy
from agent.run.tls import TlsContexts
from agent.steps.http.body import ACCEPT_ENCODING
from agent.steps.http.transport import WireTransport

__all__ = ["USER_AGENT", "HttpSession", "open_session"]

USER_AGENT = f"journeyman/{__version__} (synthetic monitoring)"

# httpx's client defaults, in its order, with ours; copied into each request
_DEFAULT_HEADERS = httpx.Headers(
    {
        "Accept": "*/*",
        "Accept-Encoding": ACCEPT_ENCODING,
        "Connection": "keep-alive",
        "User-Agent": USER_AGENT,
    }
)


class HttpSession:
    """The transports of one run attempt, and the certificate expiry of each origin it met."""

    def __init__(self, tls: TlsContexts, cookies: CookieJar, egress: EgressPolicy) -> None:
        self._tls = tls
        self._jar = cookies
        self._cookies = httpx.Cookies(cookies)  # a CookieJar is shared, not copied
        self._egress = egress
        self._transports: dict[bool | str, WireTransport] = {}
        # a reused connection makes no handshake: remember what the first one saw
        self.cert_expiry: dict[str, float] = {}

    def transport(self, verify: bool | str) -> WireTransport:
        transport = self._transports.get(verify)
        if transport is None:
            transport = WireTransport(self._tls.get(verify), self._egress)
            self._transports[verify] = transport
        return transport

    def request(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str],
        timeout: float,
        body: Mapping[str, Any],
    ) -> httpx.Request:
        """A request with the defaults' headers under ``headers``; ``timeout`` bounds each
        connect, read and write; ``body``: httpx's ``json``, ``data`` or ``content``."""
        merged = httpx.Headers(_DEFAULT_HEADERS)
        merged.update(headers)
        timeouts = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        return httpx.Request(method, url, headers=merged, extensions={"timeout": timeouts}, **body)

    async def send(self, transport: WireTransport, request: httpx.Request) -> httpx.Response:
        """Send ``request`` with the jar's cookies and return the response, its body not
        read; a ``Set-Cookie`` it carries goes into the jar."""
        if len(self._jar):
            self._cookies.set_cookie_header(request)
        url = request.url
        if url.userinfo and (url.username or url.password):  # as httpx: Basic credentials
            pair = f"{url.username}:{url.password}".encode()
            request.headers["Authorization"] = f"Basic {base64.b64encode(pair).decode('ascii')}"
        response = await transport.handle_async_request(request)
        response.request = request
        if "set-cookie" in response.headers:
            self._cookies.extract_cookies(response)
        return response

    async def aclose(self) -> None:
        for transport in self._transports.values():
            await transport.aclose()
        self._transports.clear()


@asynccontextmanager
async def open_session(
    tls: TlsContexts, cookies: CookieJar, egress: EgressPolicy
) -> AsyncIterator[HttpSession]:
    session = HttpSession(tls, cookies, egress)
    try:
        yield session
    finally:
        await session.aclose()
