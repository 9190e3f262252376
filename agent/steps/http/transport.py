"""httpx's transport for the HTTP steps of one run attempt: HTTP/1.1 on the agent's wire.

Every connection, the first hop's and each redirect's, is opened here: the name resolved
by the agent, every address checked against the egress policy, and a connection made to
an allowed address, never to the name (which a second lookup could resolve elsewhere),
over a :class:`~agent.run.wire.Wire` whose receives carry the kernel's arrival times. A
refusal propagates as :class:`~agent.run.egress.EgressRefused`, before any connection
is attempted. A connection whose response ended cleanly is kept for the next request to
its origin within the attempt (keep-alive), never across attempts.

It stands where httpx's default transport and httpcore's pool stood, and raises the
same httpx errors for the same faults (see :mod:`agent.steps.http.connection`); it
tells the hop's timer (the ``timer`` request extension) when each phase began and ended.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import httpx

from agent.run.egress import EgressPolicy
from agent.run.tls import certificate_expiry
from agent.run.wire import Wire, open_wire
from agent.steps.http.connection import Http1Connection, Timeouts
from agent.steps.http.timing import HopTimer

__all__ = ["WireTransport"]

_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}  # the schemes httpcore took
_TLS = frozenset(("https", "wss"))

Origin = tuple[str, str, int]  # scheme, host, port


class WireTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for one run attempt and one TLS setting, its connections kept per origin."""

    def __init__(self, tls: ssl.SSLContext, egress: EgressPolicy) -> None:
        self._tls = tls  # offering ALPN http/1.1 (agent.run.tls)
        self._egress = egress
        self._idle: dict[Origin, list[Http1Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timer = request.extensions.get("timer")
        if not isinstance(timer, HopTimer):
            timer = HopTimer()
        timeouts: Timeouts = request.extensions.get("timeout", {})
        origin = _origin(request.url)
        connection = self._reuse(origin) or await self._connect(origin, timer, timeouts)
        try:
            await connection.send(request, timer, timeouts)
            head = await connection.receive_head(timer, timeouts)
        except BaseException:  # cancelled by a deadline too
            connection.wire.close()
            raise
        return httpx.Response(
            head.status_code,
            headers=head.headers,
            stream=_Body(self, origin, connection, timeouts),
            extensions={
                "http_version": b"HTTP/" + head.http_version,
                "reason_phrase": head.reason,
            },
        )

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.wire.close()
        self._idle.clear()

    def release(self, origin: Origin, connection: Http1Connection) -> None:
        """A response is closed: keep its connection for the next request, or close it."""
        if connection.reusable:
            self._idle.setdefault(origin, []).append(connection)
        else:
            connection.wire.close()

    def _reuse(self, origin: Origin) -> Http1Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.stale():
                return connection
            connection.wire.close()
        return None

    async def _connect(
        self, origin: Origin, timer: HopTimer, timeouts: Timeouts
    ) -> Http1Connection:
        scheme, host, port = origin
        timeout = timeouts.get("connect")
        wire = await self._open(host, port, timeout)
        timer.connect = wire.connect_seconds
        if scheme in _TLS:
            timer.mark("tls.start")
            try:
                async with asyncio.timeout(timeout):
                    await wire.start_tls(self._tls, host)
            except TimeoutError:
                wire.close()
                raise httpx.ConnectTimeout("the TLS handshake timed out") from None
            except (OSError, ssl.SSLError) as error:
                wire.close()
                raise httpx.ConnectError(str(error) or type(error).__name__) from error
            except BaseException:
                wire.close()
                raise
            timer.mark_arrival("tls.end")
            if wire.tls is not None:
                timer.cert_expiry = certificate_expiry(wire.tls)
        return Http1Connection(wire)

    async def _open(self, host: str, port: int, timeout: float | None) -> Wire:  # noqa: ASYNC109
        """A connection to the first allowed address of ``host`` that takes one; the lookup
        is part of connecting, in the same time limit."""
        address = None
        failure: httpx.ConnectError | None = None
        try:
            async with asyncio.timeout(timeout):
                try:
                    addresses = await self._egress.addresses(host, port)
                except OSError as error:  # socket.gaierror: the dns reason
                    raise httpx.ConnectError(str(error)) from error
                for address in addresses:
                    try:
                        return await open_wire(address, port)
                    except OSError as error:  # the next address, as a browser would
                        failure = httpx.ConnectError(str(error))
                        failure.__cause__ = error
        except TimeoutError:
            doing = f"resolving {host}" if address is None else f"connecting to {address}:{port}"
            raise httpx.ConnectTimeout(f"{doing} timed out") from None
        assert failure is not None  # addresses() returns at least one
        raise failure


class _Body(httpx.AsyncByteStream):
    """A response's body off its connection; closing it hands the connection back."""

    def __init__(
        self,
        transport: WireTransport,
        origin: Origin,
        connection: Http1Connection,
        timeouts: Timeouts,
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._connection = connection
        self._timeouts = timeouts
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._connection.body(self._timeouts):
            yield chunk

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._transport.release(self._origin, self._connection)


def _origin(url: httpx.URL) -> Origin:
    default = _PORTS.get(url.scheme)
    if default is None:
        if not url.scheme:
            raise httpx.UnsupportedProtocol(
                "Request URL is missing an 'http://' or 'https://' protocol."
            )
        raise httpx.UnsupportedProtocol(
            f"Request URL has an unsupported protocol '{url.scheme}://'."
        )
    return url.scheme, url.raw_host.decode("ascii"), url.port or default
