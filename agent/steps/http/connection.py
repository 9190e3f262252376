"""One HTTP/1.1 connection of an HTTP step: h11 over a :class:`~agent.run.wire.Wire`.

It sends a request and reads its response as httpcore's HTTP/1.1 connection does (64 KB
reads, 100 KB at most for a head, 1xx answers skipped, a write error taken as the
server answering early), without httpcore's pool, locks, async library detection and
trace callbacks around each call. Each act and arrival is told to the hop's
:class:`~agent.steps.http.timing.HopTimer`.

Errors are httpx's, raised from what happened underneath (``OSError``,
``ssl.SSLError``, h11's protocol errors), as httpx's own transport raises them, so that
:mod:`agent.steps.http.errors` maps them to the same reasons and messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator

import h11
import httpx

from agent.run.wire import Wire
from agent.steps.http.timing import HopTimer

__all__ = ["H11Connection", "Timeouts"]

_READ_SIZE = 64 * 1024
_MAX_HEAD = 100 * 1024  # bytes of a response's head before it is a protocol error

Timeouts = dict[str, float | None]  # httpx's "timeout" request extension


class H11Connection:
    """A request at a time over ``wire``; :attr:`reusable` once a response ended cleanly."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)

    @property
    def reusable(self) -> bool:
        """Both sides done and keeping the connection alive: it may carry the next request."""
        return self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE

    def stale(self) -> bool:
        """The server said something (its end, most likely) while the connection was idle."""
        return self.wire.readable()

    def next_cycle(self) -> None:
        self._h11.start_next_cycle()

    async def send(self, request: httpx.Request, timer: HopTimer, timeouts: Timeouts) -> None:
        """Write ``request``, head and body. A failed write is not raised: the server may
        have answered early and closed; reading the answer tells."""
        timer.mark("request.start")
        try:
            out = [self._h11.send(self._head(request)) or b""]
            stream = request.stream
            if isinstance(stream, httpx.SyncByteStream):  # content=, json=, data=: in memory
                out += (self._h11.send(h11.Data(data=chunk)) or b"" for chunk in stream if chunk)
            else:
                assert isinstance(stream, httpx.AsyncByteStream)
                async for chunk in stream:
                    if chunk:
                        out.append(self._h11.send(h11.Data(data=chunk)) or b"")
            out.append(self._h11.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError as error:
            raise httpx.LocalProtocolError(str(error)) from error
        with contextlib.suppress(httpx.WriteError):  # as httpcore: the answer tells
            await self._write(b"".join(out), timeouts.get("write"))
        timer.mark("request.sent")

    @staticmethod
    def _head(request: httpx.Request) -> h11.Request:
        return h11.Request(
            method=request.method.encode("ascii"),
            target=request.url.raw_path,
            headers=request.headers.raw,
        )

    async def receive_head(self, timer: HopTimer, timeouts: Timeouts) -> h11.Response:
        """The response's head, 1xx answers skipped (but a switch of protocols)."""
        while True:
            event = await self._next(timeouts.get("read"))
            if isinstance(event, h11.Response):
                break
            if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
                break
        timer.mark_arrival("response.head")
        return event  # type: ignore[return-value]  # a 101 InformationalResponse too

    async def body(self, timeouts: Timeouts) -> AsyncIterator[bytes]:
        """The response's body as it arrives, until its end (or a switch of protocols)."""
        timeout = timeouts.get("read")
        while True:
            event = await self._next(timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                return

    async def _next(self, within: float | None) -> h11.Event | type[h11.PAUSED]:
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as error:
                raise httpx.RemoteProtocolError(str(error)) from error
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]  # h11's sentinels are types
            data = await self._read(within)
            if not data and self._h11.their_state is h11.SEND_RESPONSE:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            self._h11.receive_data(data)

    async def _read(self, within: float | None) -> bytes:
        try:
            async with asyncio.timeout(within):
                return await self.wire.receive(_READ_SIZE)
        except TimeoutError:
            raise httpx.ReadTimeout("no bytes arrived in time") from None
        except (OSError, ssl.SSLError) as error:
            raise httpx.ReadError(str(error) or type(error).__name__) from error

    async def _write(self, data: bytes, within: float | None) -> None:
        try:
            async with asyncio.timeout(within):
                await self.wire.send(data)
        except TimeoutError:
            raise httpx.WriteTimeout("the bytes could not be sent in time") from None
        except (OSError, ssl.SSLError) as error:
            raise httpx.WriteError(str(error) or type(error).__name__) from error
