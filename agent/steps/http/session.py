"""The HTTP side of one run attempt: its clients, sharing the attempt's cookie jar.

One ``httpx.AsyncClient`` per TLS verify setting, made on first use and closed when the
attempt ends, so connections and cookies last across the steps of a run and never
across runs. Clients take the agent-wide SSL context: a run never builds its own. They
offer only the content codings :mod:`agent.steps.http.body` decodes within its cap.

Every connection, the first hop's and each redirect's, is opened by
:class:`EgressBackend`: it resolves the name itself, checks every address against the
agent's egress policy and connects to an allowed address, never to the name (which a
second lookup could resolve elsewhere), over a stream whose receives carry the kernel's
arrival times (:mod:`agent.run.wire`). A refusal propagates as
:class:`~agent.run.egress.EgressRefused`, before any connection is attempted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from http.cookiejar import CookieJar

import httpcore
import httpx

from agent import __version__
from agent.run.egress import EgressPolicy
from agent.run.tls import TlsContexts
from agent.run.wire import open_wire
from agent.steps.http.body import ACCEPT_ENCODING
from agent.steps.http.stream import WireStream

__all__ = ["USER_AGENT", "EgressBackend", "HttpSession", "open_session"]

USER_AGENT = f"journeyman/{__version__} (synthetic monitoring)"


class HttpSession:
    """The clients of one run attempt, and the certificate expiry of each origin it met."""

    def __init__(self, tls: TlsContexts, cookies: CookieJar, egress: EgressPolicy) -> None:
        self._tls = tls
        self._cookies = cookies
        self._egress = egress
        self._clients: dict[bool | str, httpx.AsyncClient] = {}
        # a reused connection makes no handshake: remember what the first one saw
        self.cert_expiry: dict[str, float] = {}

    def client(self, verify: bool | str) -> httpx.AsyncClient:
        client = self._clients.get(verify)
        if client is None:
            transport = httpx.AsyncHTTPTransport(verify=self._tls.get(verify), trust_env=False)
            pool = transport._pool  # httpx takes no network backend: give its pool ours
            assert isinstance(pool, httpcore.AsyncConnectionPool)
            pool._network_backend = EgressBackend(self._egress)
            client = httpx.AsyncClient(
                transport=transport,
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


class EgressBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only where the egress policy allows."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):  # the lookup is part of connecting
                addresses = await self._policy.addresses(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as error:  # socket.gaierror: the dns reason
            raise httpcore.ConnectError(str(error)) from error
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await _connect(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:
                failure = error  # the next address, as a browser would
        assert failure is not None  # addresses() returns at least one
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("journeys connect over TCP only")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _connect(
    address: str,
    port: int,
    timeout: float | None,  # noqa: ASYNC109 (httpcore's)
    local_address: str | None,
    socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
) -> WireStream:
    """A connection to an allowed address, as httpcore's backends open one."""
    try:
        async with asyncio.timeout(timeout):
            wire = await open_wire(address, port, local_address, socket_options or ())
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"connecting to {address}:{port} timed out") from None
    except OSError as error:
        raise httpcore.ConnectError(str(error)) from error
    return WireStream(wire)


@asynccontextmanager
async def open_session(
    tls: TlsContexts, cookies: CookieJar, egress: EgressPolicy
) -> AsyncIterator[HttpSession]:
    session = HttpSession(tls, cookies, egress)
    try:
        yield session
    finally:
        await session.aclose()
