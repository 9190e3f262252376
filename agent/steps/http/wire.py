"""httpcore's network stream, timed by the kernel: when bytes arrived, not when the loop saw them.

Trace events are stamped when httpcore's coroutine runs again, and with 20 runs in
flight on a busy event loop that can be milliseconds after the response arrived: the
agent's own queue would be reported as the target's time. Here every receive is a
``recvmsg`` with ``SO_TIMESTAMP``, so the kernel says when the last packet it returns
came in, and the connect is timed by the kernel's own round-trip measurement of the
handshake (``TCP_INFO``). The exchange listening (a :class:`WireListener`, set for the
duration of one request by :func:`listening`) is told each receive time.

TLS runs over memory buffers (:meth:`ssl.SSLContext.wrap_bio`), so the encrypted bytes
are read here too and keep their kernel times. Errors are httpcore's: ``ConnectError``,
``ReadError``, ``WriteError`` and their timeouts, each from the ``OSError`` or
``ssl.SSLError`` underneath (:mod:`agent.steps.http.errors` reads the chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import select
import socket
import ssl
import struct
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any, Protocol

import httpcore

__all__ = ["WireListener", "WireStream", "connect", "listening"]

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


@contextlib.contextmanager
def listening(listener: WireListener) -> Iterator[None]:
    """Tell ``listener`` the receive times of the requests this task sends meanwhile."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


async def connect(
    address: str,
    port: int,
    timeout: float | None,  # noqa: ASYNC109 (httpcore's interface)
    local_address: str | None = None,
    socket_options: Iterable[httpcore.SOCKET_OPTION] = (),
) -> WireStream:
    """A connection to ``address`` (an IP address), as httpcore's backend would open it."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMP, 1)
        for option in socket_options:
            sock.setsockopt(*option)
        if local_address is not None:
            sock.bind((local_address, 0))
        async with asyncio.timeout(timeout):
            await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except TimeoutError:
        sock.close()
        raise httpcore.ConnectTimeout(f"connecting to {address}:{port} timed out") from None
    except OSError as error:
        sock.close()
        raise httpcore.ConnectError(str(error)) from error
    return WireStream(sock)


class WireStream(httpcore.AsyncNetworkStream):
    """One TCP connection (and its TLS, once started) whose receives carry kernel times."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._tls: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        # the kernel's measure of the handshake's round trip: the connect, without the
        # time the loop took to see that the socket became writable
        self.connect_seconds = _TCP_INFO_RTT.unpack_from(info, _TCP_INFO_RTT_AT)[0] / 1e6

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                return await self._read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("no bytes arrived in time") from None
        except (OSError, ssl.SSLError) as error:
            raise httpcore.ReadError(str(error) or type(error).__name__) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                if self._tls is None:
                    await self._loop.sock_sendall(self._sock, buffer)
                else:
                    self._tls.write(buffer)
                    await self._flush()
        except TimeoutError:
            raise httpcore.WriteTimeout("the bytes could not be sent in time") from None
        except (OSError, ssl.SSLError) as error:
            raise httpcore.WriteError(str(error) or type(error).__name__) from error

    async def aclose(self) -> None:
        self._sock.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
    ) -> httpcore.AsyncNetworkStream:
        tls = ssl_context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        try:
            async with asyncio.timeout(timeout):
                await self._handshake(tls)
        except TimeoutError:
            self._sock.close()
            raise httpcore.ConnectTimeout("the TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as error:
            self._sock.close()
            raise httpcore.ConnectError(str(error) or type(error).__name__) from error
        self._tls = tls
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._tls
        if info == "socket":
            return self._sock
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "is_readable":  # a pooled connection the server closed meanwhile
            if self._sock.fileno() < 0:
                return True
            poller = select.poll()
            poller.register(self._sock, select.POLLIN)
            return bool(poller.poll(0))
        return None

    async def _handshake(self, tls: ssl.SSLObject) -> None:
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

    async def _read(self, max_bytes: int) -> bytes:
        tls = self._tls
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
            if not data:  # an end without close_notify, taken as the end (as httpcore does)
                return b""
            self._incoming.write(data)

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            await self._loop.sock_sendall(self._sock, data)

    async def _receive(self, size: int) -> bytes:
        """Bytes from the socket; their kernel arrival time goes to the listener."""
        while True:
            try:
                data, ancillary, _, _ = self._sock.recvmsg(size, _ANCILLARY)
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
        fd = self._sock.fileno()
        self._loop.add_reader(fd, _resolve, ready)
        try:
            await ready
        finally:
            self._loop.remove_reader(fd)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
