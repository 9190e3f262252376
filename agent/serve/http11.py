"""A small HTTP/1.1 server for the agent's own endpoint: GET and HEAD, keep-alive, bounds.

Why our own: the endpoint answers a handful of GETs, and aiohttp's server brings its
whole client with it (two TLS contexts built at import): 12 MB of the idle agent's PSS
and ~115 ms of its start-up.

What a client can do, and what it gets:

- Requests are parsed strictly: a request line of ``METHOD target HTTP/1.x``, header
  lines of ``name: value`` (no space before the colon, no folded lines, no control
  characters); anything else is 400 and the connection closes. A request line over
  8 KiB is 414; a head over 64 KiB or over 100 header lines is 431.
- Only GET and HEAD are served; other methods are 405 (``Allow: GET, HEAD``). A body of
  up to 64 KiB (``Content-Length``) is read and dropped; a larger one is 413, a chunked
  one 400, and both close the connection (what follows is never read as a request).
- Keep-alive as HTTP/1.1 says (``Connection: close`` ends it; HTTP/1.0 keeps it only when
  asked). A connection waits 75 s for its next request, 10 s for the rest of a head once
  its first byte came, 60 s for the client to take a response; at most 1,024 are open at
  once (more are closed on arrival).
- A body given in parts (``/metrics``: thousands of small ones) is written in batches of
  about 256 KiB: small parts joined, large ones sliced without a copy. The loop is let go
  between batches, so a 14 MB body never holds it for more than one batch, and the
  transport never copies more than one batch into its buffer.
- A handler that raises is a 500 with no detail (the error goes to the log).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import lru_cache
from http import HTTPStatus
from itertools import chain
from typing import Any
from urllib.parse import parse_qsl, unquote

import structlog

__all__ = ["Handler", "HttpServer", "Request", "Response", "batches", "serve"]

IDLE_TIMEOUT = 75.0  # s: for the next request on a kept-alive connection (aiohttp's default)
HEAD_TIMEOUT = 10.0  # s: for the rest of a request, once its first byte came
WRITE_TIMEOUT = 60.0  # s: for the client to take a response
LINGER_TIMEOUT = 2.0  # s: for the client to close, once the server ended a connection
TLS_HANDSHAKE_TIMEOUT = 10.0  # s
MAX_CONNECTIONS = 1024
MAX_REQUEST_LINE = 8 * 1024  # bytes
MAX_HEAD = 64 * 1024  # bytes: request line and headers
MAX_HEADERS = 100
MAX_BODY = 64 * 1024  # bytes: a GET's body is read and dropped up to this
METHODS = ("GET", "HEAD")
WRITE_BATCH = 256 * 1024  # bytes: what one write of a body in parts takes at most

_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_CONTROL = frozenset(range(32)) - {9} | {127}  # tab is allowed inside a value
_log = structlog.get_logger("journeyman")


@dataclass(frozen=True)
class Request:
    """One parsed request. ``path`` is percent-decoded, without the query."""

    method: str
    path: str
    query: Mapping[str, str]  # the first value of each key; ``?verbose`` gives ``verbose: ""``
    headers: Mapping[str, str]  # lower-cased names; a repeated header's values joined by ", "
    peercert: Any = None  # the verified TLS client certificate, when there is one


@dataclass
class Response:
    """What a handler answers; ``headers`` by their usual spelling (``Content-Type``)."""

    status: int = 200
    body: bytes | tuple[bytes, ...] = b""  # or its parts, written in batches (never joined whole)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode(), {"Content-Type": f"{content_type}; charset=utf-8"})


Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    """A request that cannot be served; the connection closes after the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpServer:
    """A listening server: where it is bound, and how to stop it (open connections too)."""

    def __init__(self, server: asyncio.Server, connections: set[asyncio.Task[None]]) -> None:
        self._server = server
        self._connections = connections

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def close(self) -> None:
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()


async def serve(
    handler: Handler,
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None = None,
    finish: Callable[[Response], Response] = lambda response: response,
) -> HttpServer:
    """Listen on ``host:port`` (0: a free port) and answer every request with ``handler``;
    every response, the server's own refusals too, passes ``finish`` (common headers)."""
    connections: set[asyncio.Task[None]] = set()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(connections) >= MAX_CONNECTIONS:
            writer.transport.abort()
            return
        connections.add(task)
        try:
            await _converse(handler, finish, reader, writer)
            await _linger(reader, writer)
            writer.close()  # after what is still buffered is sent (and TLS's close_notify)
            await asyncio.wait_for(writer.wait_closed(), LINGER_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away or went quiet: nothing to answer
        except asyncio.CancelledError:
            pass  # the server closes; asyncio would log a connection task cancelled as an error
        finally:
            connections.discard(task)
            writer.transport.abort()  # at once, whatever is left (nothing, after a close)

    server = await asyncio.start_server(
        connected,
        host,
        port,
        ssl=tls,
        ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if tls else None,
        limit=MAX_HEAD,
    )
    return HttpServer(server, connections)


async def _converse(
    handler: Handler,
    finish: Callable[[Response], Response],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """Answer requests on one connection until either side ends it."""
    peercert = writer.get_extra_info("peercert")
    while True:
        first = await asyncio.wait_for(reader.read(1), IDLE_TIMEOUT)
        if not first:
            return
        try:
            head = first + await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            request, keep_alive = _parse(head, peercert)
            await _skip_body(reader, request.headers)
        except asyncio.LimitOverrunError:
            await _answer(writer, "GET", finish(_error(431, "request head too large")), close=True)
            return
        except _BadRequest as bad:
            await _answer(writer, "GET", finish(_error(bad.status, str(bad))), close=True)
            return
        response = finish(await _respond(handler, request))
        await _answer(writer, request.method, response, close=not keep_alive)
        if not keep_alive:
            return


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """End the sending side, then read what the client still sends for a moment: closing
    with bytes unread would reset the connection, and a reset can lose the last answer."""
    if writer.can_write_eof():  # not under TLS: there the close_notify ends it
        writer.write_eof()
        async with asyncio.timeout(LINGER_TIMEOUT):
            while await reader.read(MAX_HEAD):
                pass


async def _respond(handler: Handler, request: Request) -> Response:
    try:
        response = await handler(request)
        if any("\r" in value or "\n" in value for value in response.headers.values()):
            raise ValueError("a header value holds a line break")  # never split a response
        return response
    except Exception:
        _log.exception("endpoint_request_failed", method=request.method, path=request.path)
        return _error(500, "internal server error")


def _parse(head: bytes, peercert: Any) -> tuple[Request, bool]:
    """The request in ``head`` (through its blank line), and whether to keep the connection."""
    lines = head[:-4].split(b"\r\n")
    line = lines[0]
    if len(line) > MAX_REQUEST_LINE:
        raise _BadRequest(414, "request line too long")
    if len(lines) - 1 > MAX_HEADERS:
        raise _BadRequest(431, "too many header lines")
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[0] or not _TOKEN.issuperset(parts[0]):
        raise _BadRequest(400, "malformed request line")
    method, target, version = (part.decode("latin-1") for part in parts)
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(505 if version.startswith("HTTP/") else 400, "HTTP/1.1 only")
    headers = _headers(lines[1:])
    path, query = _target(target)
    connection = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    keep_alive = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    return Request(method, path, query, headers, peercert), keep_alive


def _headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or not _TOKEN.issuperset(name):
            raise _BadRequest(400, "malformed header line")
        value = value.strip(b" \t")
        if _CONTROL.intersection(value):
            raise _BadRequest(400, "control character in a header")
        key, text = name.decode("ascii").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _target(target: str) -> tuple[str, dict[str, str]]:
    """A request target's path and query; absolute-form (``http://host/path``) is accepted."""
    if target.startswith(("http://", "https://")):
        target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    if not target.startswith("/"):
        raise _BadRequest(400, "malformed request target")
    path, _, query = target.partition("?")
    pairs = parse_qsl(query.partition("#")[0], keep_blank_values=True)
    return unquote(path.partition("#")[0]), {key: value for key, value in reversed(pairs)}


async def _skip_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> None:
    """Read and drop a small body; refuse one that is large or of unknown length."""
    if "transfer-encoding" in headers:
        raise _BadRequest(400, "request bodies are not accepted")
    length = headers.get("content-length")
    if length is None:
        return
    if not length.isdigit() or not length.isascii():
        raise _BadRequest(400, "malformed Content-Length")
    if int(length) > MAX_BODY:
        raise _BadRequest(413, "request body too large")
    await asyncio.wait_for(reader.readexactly(int(length)), HEAD_TIMEOUT)


def _error(status: int, message: str) -> Response:
    return Response.text(f"{status}: {message}\n", status)


async def _answer(
    writer: asyncio.StreamWriter, method: str, response: Response, *, close: bool
) -> None:
    head = [f"HTTP/1.1 {response.status} {_reason(response.status)}"]
    head.extend(f"{name}: {value}" for name, value in response.headers.items())
    chunks = (response.body,) if isinstance(response.body, bytes) else response.body
    head.append(f"Content-Length: {sum(map(len, chunks))}")
    head.append(f"Date: {_date()}")
    if close:
        head.append("Connection: close")
    head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
    body = chunks if method != "HEAD" else ()
    async with asyncio.timeout(WRITE_TIMEOUT):  # the head goes in the first batch: one send
        for n, batch in enumerate(batches(chain((head_bytes,), body), WRITE_BATCH)):
            if n:  # let the loop go between batches: drain() only waits when the client is behind
                await asyncio.sleep(0)
            writer.write(batch)
            await writer.drain()


def batches(parts: Iterable[bytes], size: int) -> Iterator[bytes | memoryview]:
    """``parts`` in order, in pieces of about ``size`` bytes: runs of small parts joined,
    a part of ``size`` or more sliced (views, no copy)."""
    pending: list[bytes] = []
    held = 0
    for part in parts:
        if len(part) >= size:
            if pending:
                yield b"".join(pending)
                pending, held = [], 0
            view = memoryview(part)
            yield from (view[start : start + size] for start in range(0, len(part), size))
            continue
        pending.append(part)
        held += len(part)
        if held >= size:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _date() -> str:
    return _date_of(int(time.time()))


@lru_cache(maxsize=1)
def _date_of(second: int) -> str:
    """The ``Date`` header, formatted once a second."""
    return formatdate(second, usegmt=True)
