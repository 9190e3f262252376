"""A TCP connection timed by the kernel: when bytes arrived, not when the event loop saw them.

A coroutine stamping a receive stamps when the loop resumed it, and with 20 runs in
flight on a busy loop that can be milliseconds after the bytes arrived: the agent's own
queue would be reported as the target's time. Here every receive is a ``recvmsg`` with
``SO_TIMESTAMP``, so the kernel says when the last packet it returns came in, and the
connect is timed by the kernel's own measure of the handshake's round trip
(``TCP_INFO``). Whoever listens (a :class:`WireListener`, set for a task by
:func:`listening`) is told each receive time. TLS runs over memory buffers
(:meth:`ssl.SSLContext.wrap_bio`), so the encrypted bytes keep their kernel times too.

Errors are ``OSError`` (``ssl.SSLError`` is one). The TCP kind talks over a
:class:`Wire`; HTTP steps over the same, through their transport
(:mod:`agent.steps.http.transport`). Linux only, like the agent's image.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
import struct
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Protocol

__all__ = ["Wire", "WireClock", "WireListener", "listening", "open_wire"]

_SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)  # Linux's value; Python may not export it
_TIMEVAL = struct.Struct("@ll")  # struct timeval: seconds, microseconds
_ANCILLARY = socket.CMSG_SPACE(_TIMEVAL.size)
_TCP_INFO_RTT = struct.Struct("@I")  # tcpi_rtt, microseconds, after 8 bytes and 15 u32s
_TCP_INFO_RTT_AT = 68
_READ_SIZE = 65536


class WireListener(Protocol):
    def received(self, at: float) -> None:
        """Bytes of the exchange arrived at ``at`` (unix time, the kernel's stamp)."""


_LISTENER: ContextVar[WireListener | None] = ContextVar("wire_listener", default=None)


class WireClock:
    """The moments of one exchange, by name (unix time), and a :class:`WireListener`: the
    agent's acts stamped as they happen, arrivals with the kernel's stamp of the last bytes
    read, so a busy loop that resumes the exchange late never counts. ``spans`` names each
    phase's ``(start event, end event)``; ``connect`` is the handshake's round trip, as
    :attr:`Wire.connect_seconds` measured it."""

    def __init__(self, spans: Mapping[str, tuple[str, str]]) -> None:
        self._spans = spans
        self.marks: dict[str, float] = {}
        self.arrived: float | None = None
        self.connect: float | None = None

    def received(self, at: float) -> None:
        self.arrived = at

    def mark(self, event: str) -> None:
        """The agent acts now."""
        self.marks.setdefault(event, time.time())

    def mark_arrival(self, event: str) -> None:
        """What ``event`` waited for has arrived: when the kernel got its last bytes."""
        self.marks.setdefault(event, self.arrived if self.arrived is not None else time.time())

    def phases(self) -> dict[str, float]:
        """Seconds of each phase this exchange went through, connect first."""
        found = {} if self.connect is None else {"connect": self.connect}
        for phase, (start, end) in self._spans.items():
            if start in self.marks and end in self.marks:
                found[phase] = max(0.0, self.marks[end] - self.marks[start])
        return found


@contextlib.contextmanager
def listening(listener: WireListener) -> Iterator[None]:
    """Tell ``listener`` the receive times of the requests this task sends meanwhile."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


async def open_wire(address: str, port: int) -> Wire:
    """A connection to ``address`` (an IP address: names are resolved, and checked, by
    the caller). OSError when it cannot be made."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET  # no parse: ~1% of a step
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMP, 1)
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except BaseException:  # cancelled by a deadline too
        sock.close()
        raise
    return Wire(sock)


class Wire:
    """One TCP connection (and its TLS, once started) whose receives carry kernel times."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self._loop = asyncio.get_running_loop()
        self.tls: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        # the kernel's measure of the handshake's round trip: the connect, without the
        # time the loop took to see that the socket became writable
        self.connect_seconds = _TCP_INFO_RTT.unpack_from(info, _TCP_INFO_RTT_AT)[0] / 1e6

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        tls = context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            await self._flush()
            data = await self._receive(_READ_SIZE)
            if not data:
                raise ConnectionResetError("the server closed the connection in the handshake")
            self._incoming.write(data)
        await self._flush()
        self.tls = tls

    async def receive(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes of what the peer sent; b"" at its end."""
        tls = self.tls
        if tls is None:
            return await self._receive(max_bytes)
        while True:
            try:
                return tls.read(max_bytes)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:  # close_notify: the end
                return b""
            await self._flush()  # what reading made TLS say (a key update's answer)
            data = await self._receive(_READ_SIZE)
            if not data:  # an end without close_notify, taken as the end (as httpcore did)
                return b""
            self._incoming.write(data)

    async def send(self, data: bytes) -> None:
        if self.tls is None:
            await self._loop.sock_sendall(self.socket, data)
        else:
            self.tls.write(data)
            await self._flush()

    def close(self) -> None:
        """Close at once: TLS says close_notify if the socket takes it without waiting."""
        if self.tls is not None and self.socket.fileno() >= 0:
            with contextlib.suppress(ssl.SSLError, OSError):
                self.tls.unwrap()
            with contextlib.suppress(ssl.SSLError, OSError):
                self.socket.send(self._outgoing.read())
        self.socket.close()

    def readable(self) -> bool:
        """Bytes (or the end) are waiting: a pooled connection the server closed."""
        if self.socket.fileno() < 0:
            return True
        poller = select.poll()
        poller.register(self.socket, select.POLLIN)
        return bool(poller.poll(0))

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            await self._loop.sock_sendall(self.socket, data)

    async def _receive(self, size: int) -> bytes:
        """Bytes from the socket; their kernel arrival time goes to the listener."""
        while True:
            try:
                data, ancillary, _, _ = self.socket.recvmsg(size, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                await self._readable()
                continue
            listener = _LISTENER.get()
            if data and listener is not None:
                for level, kind, value in ancillary:
                    if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMP:
                        seconds, microseconds = _TIMEVAL.unpack_from(value)
                        listener.received(seconds + microseconds / 1e6)
            return data

    async def _readable(self) -> None:
        ready = self._loop.create_future()
        fd = self.socket.fileno()
        self._loop.add_reader(fd, _resolve, ready)
        try:
            await ready
        finally:
            self._loop.remove_reader(fd)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
