"""One HTTP/1.1 connection of an HTTP step over a :class:`~agent.run.wire.Wire`.

It sends a request and reads its response as httpcore's HTTP/1.1 connection does (64 KB
reads, 100 KB at most for a head, 1xx answers skipped, a write error taken as the
server answering early), without httpcore's pool, locks, async library detection and
trace callbacks around each call, and without h11: the bytes are written by
:mod:`~agent.steps.http.request_writer` and read by
:mod:`~agent.steps.http.response_reader`, as strictly. Each act and arrival is told to
the hop's :class:`~agent.steps.http.timing.HopTimer`.

Errors are httpx's, raised from what happened underneath (``OSError``,
``ssl.SSLError``, a protocol fault), as httpx's own transport raises them, so that
:mod:`agent.steps.http.errors` maps them to the same reasons and messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator

import httpx

from agent.run.wire import Wire
from agent.steps.http.request_writer import request_bytes
from agent.steps.http.response_reader import Head, ResponseReader
from agent.steps.http.timing import HopTimer

__all__ = ["Head", "Http1Connection", "Timeouts"]

_READ_SIZE = 64 * 1024
_MAX_HEAD = 100 * 1024  # bytes of a response's head before it is a protocol error

Timeouts = dict[str, float | None]  # httpx's "timeout" request extension


class Http1Connection:
    """A request at a time over ``wire``; :attr:`reusable` once a response ended cleanly."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self._reader: ResponseReader | None = None

    @property
    def reusable(self) -> bool:
        """Both sides done and keeping the connection alive: it may carry the next request."""
        return self._reader is not None and self._reader.reusable

    def stale(self) -> bool:
        """The server said something (its end, most likely) while the connection was idle."""
        return self.wire.readable()

    async def send(self, request: httpx.Request, timer: HopTimer, timeouts: Timeouts) -> None:
        """Write ``request``, head and body. A failed write is not raised: the server may
        have answered early and closed; reading the answer tells."""
        timer.mark("request.start")
        stream = request.stream
        if isinstance(stream, httpx.SyncByteStream):  # content=, json=, data=: in memory
            body = list(stream)
        else:
            assert isinstance(stream, httpx.AsyncByteStream)
            body = [chunk async for chunk in stream]
        method = request.method.encode("ascii")
        written = request_bytes(method, request.url.raw_path, request.headers.raw, body)
        self._reader = ResponseReader(
            method, upgrade=written.upgrade, keep_alive=written.keep_alive, max_head=_MAX_HEAD
        )
        with contextlib.suppress(httpx.WriteError):  # as httpcore: the answer tells
            await self._write(written.data, timeouts.get("write"))
        timer.mark("request.sent")

    async def receive_head(self, timer: HopTimer, timeouts: Timeouts) -> Head:
        """The response's head, 1xx answers skipped (but a switch of protocols)."""
        reader = self._reader
        assert reader is not None
        timeout = timeouts.get("read")
        while (head := reader.head()) is None:
            reader.feed(await self._read(timeout))
        timer.mark_arrival("response.head")
        return head

    async def body(self, timeouts: Timeouts) -> AsyncIterator[bytes]:
        """The response's body as it arrives, until its end (or a switch of protocols)."""
        reader = self._reader
        assert reader is not None
        timeout = timeouts.get("read")
        while (data := reader.data()) != b"":
            if data is None:
                reader.feed(await self._read(timeout))
            else:
                yield data

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
