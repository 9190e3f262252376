"""The endpoint's HTTP/1.1 server on a real loopback socket: what clients, polite or
hostile, get back, and that the connection ends when it must."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator

import pytest
import trustme

from agent.serve import http11
from agent.serve.http11 import HttpServer, Request, Response, serve

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _echo(request: Request) -> Response:
    """Says what it was asked, so that a test sees what the parser made of a request."""
    if request.path == "/boom":
        raise RuntimeError("secret detail")
    if request.path == "/big":
        return Response(200, bytes(range(256)) * 16_384)  # 4 MiB
    if request.path == "/chunks":
        return Response(200, (b"one ", b"", b"two"))
    if request.path == "/parts":
        return Response(200, _PARTS)
    if request.path == "/split":
        return Response(200, b"", {"X-Evil": "a\r\nSet-Cookie: b"})
    query = ",".join(f"{key}={value}" for key, value in sorted(request.query.items()))
    return Response.text(f"{request.method} {request.path} {query} {request.headers.get('x-a')}")


# what /metrics sends: thousands of small parts, and some larger than a write's batch
_PARTS = (*(bytes([n % 251]) * (n % 700) for n in range(20_000)), b"\xff" * 3_000_000, b"end")
_clients: list[asyncio.StreamWriter] = []


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    running = await serve(_echo, "127.0.0.1", 0)
    yield running
    await running.close()
    while _clients:
        _clients.pop().close()


async def _connect(server: HttpServer) -> Connection:
    """A client connection, closed with the server at the test's end."""
    reader, writer = await asyncio.open_connection(*server.address)
    _clients.append(writer)
    return reader, writer


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One response off the connection: status, headers (lower-cased), body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split(" ")[1]), headers, body


async def _closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server ends the connection (an orderly close, or a reset)."""
    try:
        return await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:
        return True


async def _exchange(server: HttpServer, raw: bytes) -> tuple[int, dict[str, str], bytes, bool]:
    """Send ``raw``; the one response, and whether the server closed the connection."""
    reader, writer = await _connect(server)
    writer.write(raw)
    status, headers, body = await _response(reader)
    closed = await _closed(reader)
    writer.close()
    return status, headers, body, closed


async def test_keeps_a_connection_alive_and_answers_pipelined_requests_in_order(
    server: HttpServer,
) -> None:
    reader, writer = await _connect(server)
    writer.write(b"GET /a?x=1&y=&x=2 HTTP/1.1\r\nHost: h\r\nX-A: one\r\nx-a: two\r\n\r\n")
    writer.write(b"HEAD /b%20c HTTP/1.1\r\nHost: h\r\n\r\nGET /d HTTP/1.1\r\nHost: h\r\n\r\n")
    status, headers, body = await _response(reader)
    assert (status, body) == (200, b"GET /a x=1,y= one, two")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert "date" in headers
    assert "connection" not in headers
    assert "server" not in headers
    head = await reader.readuntil(b"\r\n\r\n")  # HEAD: the length of the body, and no body
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"Content-Length: {len('HEAD /b c  None')}\r\n".encode() in head
    assert (await _response(reader))[2] == b"GET /d  None"
    writer.close()


@pytest.mark.parametrize(
    ("raw", "closes"),
    [
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", False),
        (b"GET http://example.test/x?q=1 HTTP/1.1\r\n\r\n", False),
    ],
)
async def test_closes_when_the_client_asks_or_speaks_http_1_0(
    server: HttpServer, raw: bytes, closes: bool
) -> None:
    reader, writer = await _connect(server)
    writer.write(raw)
    status, headers, _ = await _response(reader)
    assert status == 200
    assert (headers.get("connection") == "close") is closes
    if closes:
        assert await _closed(reader)
    else:  # still open: a second request is answered
        writer.write(b"GET /again HTTP/1.1\r\n\r\n")
        assert (await _response(reader))[2] == b"GET /again  None"
    writer.close()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /\r\n\r\n", 400),  # HTTP/0.9
        (b"GET  / HTTP/1.1\r\n\r\n", 400),
        (b"G@T / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET / SMTP/1.1\r\n\r\n", 400),
        (b"GET relative HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),  # a space before the colon
        (b"GET / HTTP/1.1\r\nX-A: a\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 70000\r\n\r\n", 413),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\n" + b"X-A: a\r\n" * 101 + b"\r\n", 431),
        (b"GET / HTTP/1.1\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    ],
)
async def test_refuses_what_it_cannot_read_safely_and_closes(
    server: HttpServer, raw: bytes, status: int
) -> None:
    """A request it cannot frame for sure is answered and the connection closed, so that
    nothing after it is ever read as a request of its own (no smuggling)."""
    got, _, body, closed = await _exchange(server, raw)
    assert (got, closed) == (status, True)
    assert body.startswith(f"{status}: ".encode())


async def test_reads_and_drops_a_small_body_and_goes_on(server: HttpServer) -> None:
    reader, writer = await _connect(server)
    writer.write(b"GET /a HTTP/1.1\r\nContent-Length: 20\r\n\r\nGET /smuggled HTTP/1")
    writer.write(b"GET /b HTTP/1.1\r\n\r\n")
    assert [(await _response(reader))[2] for _ in range(2)] == [b"GET /a  None", b"GET /b  None"]
    writer.close()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_a_large_answer_arrives_whole_before_the_connection_closes(tls: bool) -> None:
    """A client that reads slowly still gets all of a response sent with ``close``."""
    server_tls = client_tls = None
    if tls:
        ca = trustme.CA()
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(server_tls)
        client_tls = ssl.create_default_context()
        ca.configure_trust(client_tls)
    running = await serve(_echo, "127.0.0.1", 0, tls=server_tls)
    reader, writer = await asyncio.open_connection(*running.address, ssl=client_tls)
    writer.write(b"GET /big HTTP/1.1\r\nConnection: close\r\n\r\n")
    await asyncio.sleep(0.3)  # the server has long written what the socket would take
    status, headers, body = await _response(reader)
    assert (status, headers["connection"]) == (200, "close")
    assert body == bytes(range(256)) * 16_384
    assert await _closed(reader)
    writer.close()
    await running.close()


async def test_a_body_in_chunks_is_sent_as_one(server: HttpServer) -> None:
    status, headers, body, _ = await _exchange(
        server, b"GET /chunks HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    assert (status, headers["content-length"], body) == (200, "7", b"one two")


async def test_a_body_of_thousands_of_parts_arrives_whole_and_in_order(
    server: HttpServer,
) -> None:
    status, headers, body, _ = await _exchange(
        server, b"GET /parts HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    assert (status, int(headers["content-length"])) == (200, len(b"".join(_PARTS)))
    assert body == b"".join(_PARTS)


async def test_the_loop_gets_turns_while_a_body_in_parts_is_written(
    server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that keeps up seldom makes drain() wait, so the writer lets the loop go
    between batches itself: other work on the loop runs during a 10 MB answer, not after
    it. The turns are counted from the first batch to the last."""
    turns, during = 0, -1
    written = http11.batches

    def counted(parts: Iterable[bytes], size: int) -> Iterator[bytes | memoryview]:
        nonlocal during
        start = turns
        yield from written(parts, size)
        during = turns - start

    async def tick() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    def fetch() -> int:
        with socket.create_connection(server.address, timeout=5) as client:
            client.sendall(b"GET /parts HTTP/1.1\r\nConnection: close\r\n\r\n")
            return sum(iter(lambda: len(client.recv(1 << 20)), 0))

    monkeypatch.setattr(http11, "batches", counted)
    ticker = asyncio.create_task(tick())
    received = await asyncio.to_thread(fetch)
    ticker.cancel()
    assert received > len(b"".join(_PARTS))
    batches = len(b"".join(_PARTS)) // http11.WRITE_BATCH
    assert during >= batches - 1, f"the loop ran {during} times during {batches} batches"


def test_batches_join_small_parts_and_slice_large_ones_without_a_copy() -> None:
    batches = list(http11.batches(_PARTS, 64 * 1024))
    assert b"".join(batches) == b"".join(_PARTS)
    assert max(map(len, batches)) < 2 * 64 * 1024  # a run stops at the part that fills it
    views = [batch for batch in batches if isinstance(batch, memoryview)]
    assert len(views) == 46  # 3 MB in 64 KiB slices
    assert all(view.obj is _PARTS[-2] for view in views)


async def test_other_methods_reach_the_handler_which_decides(server: HttpServer) -> None:
    """The server parses any method; which ones are served is the endpoint's call."""
    status, _, body, _ = await _exchange(server, b"DELETE /x HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert (status, body) == (200, b"DELETE /x  None")


async def test_a_failing_handler_is_a_500_without_detail_and_the_connection_lives_on(
    server: HttpServer,
) -> None:
    reader, writer = await _connect(server)
    for path in ("/boom", "/split"):
        writer.write(f"GET {path} HTTP/1.1\r\n\r\n".encode())
        status, headers, body = await _response(reader)
        assert (status, body) == (500, b"500: internal server error\n")
        assert "x-evil" not in headers
        assert "set-cookie" not in headers
    writer.write(b"GET /fine HTTP/1.1\r\n\r\n")
    assert (await _response(reader))[0] == 200
    writer.close()


async def test_a_client_that_stalls_is_dropped(
    server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half a head (slowloris) and a silent kept-alive connection both end at their timeouts."""
    monkeypatch.setattr(http11, "HEAD_TIMEOUT", 0.2)
    monkeypatch.setattr(http11, "IDLE_TIMEOUT", 0.2)
    reader, writer = await _connect(server)
    writer.write(b"GET / HTTP/1.1\r\nX-A:")
    assert await _closed(reader)
    reader, writer = await _connect(server)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    assert (await _response(reader))[0] == 200
    assert await _closed(reader)


async def test_a_client_that_stops_reading_a_large_body_is_dropped(
    server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write timeout covers a whole body in parts, batch after batch: a scraper that
    stops reading is cut off, with the rest of the body never sent, and others are served."""
    monkeypatch.setattr(http11, "WRITE_TIMEOUT", 0.3)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(server.address)
    reader, writer = await asyncio.open_connection(sock=stuck)
    _clients.append(writer)
    writer.write(b"GET /parts HTTP/1.1\r\n\r\n")
    await asyncio.sleep(1.0)  # reads nothing meanwhile
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(1 << 20), 5):
            received += chunk
    assert 0 < len(received) < len(b"".join(_PARTS))
    status, _, body, _ = await _exchange(
        server, b"GET /chunks HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    assert (status, body) == (200, b"one two")


async def test_connections_over_the_limit_are_closed_on_arrival(
    server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http11, "MAX_CONNECTIONS", 2)
    held = [await _connect(server) for _ in range(2)]
    for reader, writer in held:  # both are being served
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        assert (await _response(reader))[0] == 200
    reader, writer = await _connect(server)
    assert await _closed(reader)
    held[0][1].close()
    assert await _closed(held[0][0])
    for _ in range(50):  # the server notices the close on its next loop turns
        await asyncio.sleep(0.01)
        reader, writer = await _connect(server)
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        try:
            await _response(reader)
            break
        except (asyncio.IncompleteReadError, ConnectionResetError):
            continue
    else:
        pytest.fail("a freed slot was never given to a new connection")


async def test_close_ends_open_connections(server: HttpServer) -> None:
    address = server.address
    reader, writer = await _connect(server)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    assert (await _response(reader))[0] == 200
    await server.close()
    assert await _closed(reader)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*address)
