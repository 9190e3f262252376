"""The HTTP step's own transport (HTTP/1.1 on the wire), provoked on loopback: connections
kept alive within a run and never across runs, a connection the server closed while idle
replaced, protocol errors reported as ``protocol``, and httpx's client rules kept
(Basic credentials from a URL, Authorization dropped when a redirect leaves the origin).
"""

from __future__ import annotations

import asyncio
import base64

from aiohttp import web
from conftest import ContextFactory
from http_servers import fails, http_step, serve_app, serve_raw

from agent.run.results import FailureReason
from agent.steps.http.run import run

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Connections:
    """A raw server handler answering ``answer`` to each request of a connection, counting
    connections; after ``per_connection`` answers it closes the connection."""

    def __init__(self, answer: bytes = OK, per_connection: int = 100) -> None:
        self.count = 0
        self._answer = answer
        self._per_connection = per_connection

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.count += 1
        for _ in range(self._per_connection):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(self._answer)
            await writer.drain()


async def test_a_runs_steps_share_a_connection_and_the_next_run_opens_its_own(
    make_context: ContextFactory,
) -> None:
    """Steps of one run to one origin reuse its connection; another run never does."""
    server = Connections()
    async with serve_raw(server) as base:
        ctx = make_context()
        for _ in range(3):
            await run(http_step(http={"get": f"{base}/a"}), ctx)
        assert server.count == 1
        await run(http_step(http={"get": f"{base}/b"}), make_context())
    assert server.count == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    make_context: ContextFactory,
) -> None:
    """A kept connection the server has closed since is not used: the step opens another."""
    server = Connections(per_connection=1)
    async with serve_raw(server) as base:
        ctx = make_context()
        await run(http_step(http={"get": base}), ctx)
        await asyncio.sleep(0.05)  # the server's close arrives
        await run(http_step(http={"get": base}), ctx)
    assert server.count == 2


async def test_connection_close_is_honoured(make_context: ContextFactory) -> None:
    """A response saying ``Connection: close`` ends its connection; the next step opens one."""
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    server = Connections(answer, per_connection=100)
    async with serve_raw(server) as base:
        ctx = make_context()
        await run(http_step(http={"get": base}), ctx)
        await run(http_step(http={"get": base}), ctx)
    assert server.count == 2


async def test_a_close_before_any_answer_is_protocol(make_context: ContextFactory) -> None:
    """A server that reads the request and closes without answering fails as protocol."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")

    async with serve_raw(hang_up) as base:
        failure = await fails(http_step(http={"get": base}), make_context())
    assert failure.reason is FailureReason.PROTOCOL
    assert "Server disconnected without sending a response." in failure.message


async def test_a_malformed_header_line_is_protocol(make_context: ContextFactory) -> None:
    """A header line that is not one is a protocol failure, with h11's words."""

    async def malformed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")
        await writer.drain()

    async with serve_raw(malformed) as base:
        failure = await fails(http_step(http={"get": base}), make_context())
    assert failure.reason is FailureReason.PROTOCOL
    assert failure.message.startswith("expected a valid HTTP response from 127.0.0.1:")


async def test_a_head_past_its_limit_is_protocol(make_context: ContextFactory) -> None:
    """Response headers past 100 KB fail as protocol, as with httpcore."""

    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        await writer.drain()

    async with serve_raw(huge) as base:
        failure = await fails(http_step(http={"get": base}), make_context())
    assert failure.reason is FailureReason.PROTOCOL


def _authorization_echo() -> web.Application:
    """``/echo`` answers the Authorization it got; ``/go?to=URL`` redirects there."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"authorization": request.headers.get("Authorization", "")})

    async def go(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    app = web.Application()
    app.router.add_get("/echo", echo)
    app.router.add_get("/go", go)
    return app


async def test_url_user_info_is_sent_as_basic_credentials(make_context: ContextFactory) -> None:
    """``http://user:pw@host/`` sends Basic credentials, as httpx's client did."""
    async with serve_app(_authorization_echo()) as base:
        url = base.replace("http://", "http://u:p@") + "/echo"
        expected = "Basic " + base64.b64encode(b"u:p").decode()
        step = http_step(http={"get": url}, expect={"json": {"$.authorization": expected}})
        await run(step, make_context())


async def test_a_redirect_leaving_the_origin_drops_authorization(
    make_context: ContextFactory,
) -> None:
    """Authorization follows a redirect within the origin and is dropped when it leaves it
    (127.0.0.1 to localhost, the same server), as httpx drops it."""
    async with serve_app(_authorization_echo()) as base:
        elsewhere = base.replace("127.0.0.1", "localhost")
        for to, expected in ((f"{base}/echo", "Bearer t"), (f"{elsewhere}/echo", "")):
            step = http_step(
                http={"get": f"{base}/go", "query": {"to": to}, "auth": {"bearer": "t"}},
                expect={"json": {"$.authorization": expected}},
            )
            await run(step, make_context())
