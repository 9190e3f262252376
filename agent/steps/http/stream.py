"""A :class:`~agent.run.wire.Wire` as httpcore's network stream: the connection HTTP
steps talk over, so that their receives carry the kernel's arrival times.

Errors are httpcore's (``ConnectError``, ``ReadError``, ``WriteError``, their
timeouts), raised from the ``OSError`` or ``ssl.SSLError`` underneath:
:mod:`agent.steps.http.errors` reads the chain to tell tls from connect.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpcore

from agent.run.wire import Wire

__all__ = ["WireStream"]


class WireStream(httpcore.AsyncNetworkStream):
    """A :class:`Wire` as httpcore's network stream, with its timeouts and errors."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.connect_seconds = wire.connect_seconds

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                return await self.wire.receive(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("no bytes arrived in time") from None
        except (OSError, ssl.SSLError) as error:
            raise httpcore.ReadError(str(error) or type(error).__name__) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                await self.wire.send(buffer)
        except TimeoutError:
            raise httpcore.WriteTimeout("the bytes could not be sent in time") from None
        except (OSError, ssl.SSLError) as error:
            raise httpcore.WriteError(str(error) or type(error).__name__) from error

    async def aclose(self) -> None:
        self.wire.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self.wire.start_tls(ssl_context, server_hostname)
        except TimeoutError:
            self.wire.close()
            raise httpcore.ConnectTimeout("the TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as error:
            self.wire.close()
            raise httpcore.ConnectError(str(error) or type(error).__name__) from error
        return self

    def get_extra_info(self, info: str) -> Any:
        match info:
            case "ssl_object":
                return self.wire.tls
            case "socket":
                return self.wire.socket
            case "client_addr":
                return self.wire.socket.getsockname()
            case "server_addr":
                return self.wire.socket.getpeername()
            case "is_readable":  # asked of a pooled connection before each reuse
                return self.wire.readable()
        return None
