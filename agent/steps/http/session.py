"""The HTTP side of one run attempt: its clients, sharing the attempt's cookie jar.

One ``httpx.AsyncClient`` per TLS verify setting, made on first use and closed when the
attempt ends, so connections and cookies last across the steps of a run and never
across runs. Clients take the agent-wide SSL context: a run never builds its own. They
offer only the content codings :mod:`agent.steps.http.body` decodes within its cap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookiejar import CookieJar

import httpx

from agent import __version__
from agent.run.tls import TlsContexts
from agent.steps.http.body import ACCEPT_ENCODING

__all__ = ["USER_AGENT", "HttpSession", "open_session"]

USER_AGENT = f"journeyman/{__version__} (synthetic monitoring)"


class HttpSession:
    """The clients of one run attempt, and the certificate expiry of each origin it met."""

    def __init__(self, tls: TlsContexts, cookies: CookieJar) -> None:
        self._tls = tls
        self._cookies = cookies
        self._clients: dict[bool | str, httpx.AsyncClient] = {}
        # a reused connection makes no handshake: remember what the first one saw
        self.cert_expiry: dict[str, float] = {}

    def client(self, verify: bool | str) -> httpx.AsyncClient:
        client = self._clients.get(verify)
        if client is None:
            client = httpx.AsyncClient(
                verify=self._tls.get(verify),
                cookies=self._cookies,  # a CookieJar is shared, not copied
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
                follow_redirects=False,  # the step follows hops itself, to time each one
                trust_env=False,  # no proxies or .netrc credentials picked up by surprise
            )
            self._clients[verify] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


@asynccontextmanager
async def open_session(tls: TlsContexts, cookies: CookieJar) -> AsyncIterator[HttpSession]:
    session = HttpSession(tls, cookies)
    try:
        yield session
    finally:
        await session.aclose()
