"""Each failure reason of the HTTP step, provoked for real on loopback and asserted."""

from __future__ import annotations

import asyncio
import gzip
import socket
import tracemalloc
import zlib
from typing import Any

import pytest
from conftest import ContextFactory
from http_servers import fails, http_step, serve_raw

from agent.run.results import FailureReason
from agent.steps.http.run import run


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_refused_port_is_connect(make_context: ContextFactory) -> None:
    """Nothing listening on the port: reason connect, naming host and port."""
    port = free_port()
    failure = await fails(http_step(http={"get": f"http://127.0.0.1:{port}/"}), make_context())
    assert failure.reason is FailureReason.CONNECT
    assert f"127.0.0.1:{port}" in failure.message


async def test_unresolvable_name_is_dns(make_context: ContextFactory) -> None:
    """A name under the reserved .invalid TLD does not resolve: reason dns."""
    failure = await fails(http_step(http={"get": "http://nonexistent.invalid/"}), make_context())
    assert failure.reason is FailureReason.DNS
    assert "'nonexistent.invalid'" in failure.message


async def test_hanging_server_is_timeout(make_context: ContextFactory) -> None:
    """A server that accepts and never answers fails the step with reason timeout."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    async with serve_raw(hang) as base:
        failure = await fails(http_step(http={"get": base}), make_context(step_timeout=0.2))
    assert failure.reason is FailureReason.TIMEOUT
    assert "read timeout" in failure.message


async def test_server_error_fails_by_default_with_status_and_body(
    shop: str, make_context: ContextFactory
) -> None:
    """A 500 fails even with no status expectation; the message shows code and body."""
    failure = await fails(http_step(http={"get": f"{shop}/status/500"}), make_context())
    assert failure.reason is FailureReason.HTTP_STATUS
    assert failure.message == (
        "expected status 2xx or 3xx, got 500 Internal Server Error: 'this is a 500 page'"
    )


async def test_status_list_and_class_are_accepted(shop: str, make_context: ContextFactory) -> None:
    """An expected 404 (in a list) passes; a class that does not match fails."""
    ctx = make_context()
    await run(http_step(http={"get": f"{shop}/status/404"}, expect={"status": [200, 404]}), ctx)
    assert ctx.record.get("status_code") == 404
    failure = await fails(
        http_step(http={"get": f"{shop}/status/204"}, expect={"status": "3xx"}), ctx
    )
    assert failure.reason is FailureReason.HTTP_STATUS
    assert "expected status 3xx, got 204" in failure.message


async def test_endless_body_stops_at_the_cap(make_context: ContextFactory) -> None:
    """A body without end fails as too_large once the cap is passed; reading stops there."""
    sent = 0

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        chunk = b"x" * 65536
        while True:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)

    async with serve_raw(endless) as base:
        step = http_step(http={"get": base, "max_body": "1MB"})
        ctx = make_context()
        failure = await fails(step, ctx)
    assert failure.reason is FailureReason.TOO_LARGE
    assert "at most 1000000 bytes" in failure.message
    assert ctx.record.duration is not None  # timed up to the cut
    # what the kernel's socket buffers absorbed, not what a full read would take (forever)
    assert sent < 64_000_000


async def test_declared_length_over_the_cap_is_not_read(make_context: ContextFactory) -> None:
    """A Content-Length above the cap fails GET as too_large unread; HEAD (no body) passes."""

    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 50000000\r\n\r\n")
            if not request.startswith(b"HEAD"):
                writer.write(b"xx")
                await writer.drain()
                await asyncio.Event().wait()

    ctx = make_context()
    async with serve_raw(huge) as base:
        await run(http_step(http={"head": base, "max_body": 1000}), ctx)
        failure = await fails(http_step(http={"get": base, "max_body": 1000}), ctx)
    assert failure.reason is FailureReason.TOO_LARGE
    assert "got Content-Length 50000000" in failure.message


async def test_json_path_on_html_is_protocol(shop: str, make_context: ContextFactory) -> None:
    """Asking a JSON path of an HTML body fails as protocol, showing what came back."""
    step = http_step(http={"get": f"{shop}/html"}, expect={"json": {"$.ok": True}})
    failure = await fails(step, make_context())
    assert failure.reason is FailureReason.PROTOCOL
    assert "expected a JSON body for $.ok, got text/html" in failure.message
    assert "not JSON at all" in failure.message


async def test_unmet_expectation_on_a_page_shows_its_title_and_text_not_markup(
    make_context: ContextFactory,
) -> None:
    """A body_contains failure on an HTML page says what a person saw: title and text."""
    page = (
        "<!doctype html><html><head><title>Order pending</title><style>p {}</style></head>"
        "<body><script>var cart = 1;</script><h1>Order pending</h1><p>We&amp;ll email you</p>"
    )

    async def pending(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = page.encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        writer.close()

    async with serve_raw(pending) as base:
        step = http_step(http={"get": base}, expect={"body_contains": "Thank you"})
        failure = await fails(step, make_context())
    assert failure.reason is FailureReason.ASSERTION
    assert failure.message == (
        "expected the body to contain 'Thank you', got a page titled 'Order pending' "
        "showing 'Order pending We&ll email you'"
    )


async def test_garbage_instead_of_http_is_protocol(make_context: ContextFactory) -> None:
    """A server answering with something that is not HTTP fails as protocol."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\x00\x01\x02 definitely not http\r\n\r\n")
        await writer.drain()

    async with serve_raw(garbage) as base:
        failure = await fails(http_step(http={"get": base}), make_context())
    assert failure.reason is FailureReason.PROTOCOL


async def test_unreadable_ca_bundle_is_config(make_context: ContextFactory) -> None:
    """verify naming a CA file that does not exist fails as config, naming the path."""
    step = http_step(http={"get": "https://127.0.0.1:1/", "verify": "/nonexistent/ca.pem"})
    failure = await fails(step, make_context())
    assert failure.reason is FailureReason.CONFIG
    assert "'/nonexistent/ca.pem'" in failure.message


async def test_unsupported_scheme_is_config(make_context: ContextFactory) -> None:
    """A URL httpx cannot request (ftp://) fails as config, not as a crash."""
    failure = await fails(http_step(http={"get": "ftp://127.0.0.1/file"}), make_context())
    assert failure.reason is FailureReason.CONFIG


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ({"body_contains": "Goodbye"}, "expected the body to contain 'Goodbye', got '{\"method\""),
        ({"body_not_contains": "GET"}, "expected the body not to contain 'GET', found it in"),
        ({"body_matches": "^<html"}, "expected the body to match '^<html', got"),
        ({"json": {"$.method": "POST"}}, 'expected $.method to be "POST", got "GET"'),
        ({"json": {"$.missing": 1}}, "expected $.missing to be 1, got no such value"),
        ({"json_exists": ["$.nope[0]"]}, "expected $.nope[0] to exist, got"),
        ({"json_matches": {"$.method": "^P"}}, "expected $.method to match '^P', got \"GET\""),
        ({"headers": {"X-Missing": "1"}}, "expected header X-Missing: '1', got no such header"),
        (
            {"header_matches": {"Content-Type": "xml"}},
            "expected header Content-Type to match 'xml', got 'application/json",
        ),
    ],
)
async def test_unmet_expectation_is_assertion_with_expected_and_actual(
    shop: str, make_context: ContextFactory, expect: dict[str, Any], message: str
) -> None:
    """Each kind of unmet expectation fails as assertion, saying expected and got."""
    failure = await fails(http_step(http={"get": f"{shop}/echo"}, expect=expect), make_context())
    assert failure.reason is FailureReason.ASSERTION
    assert message in failure.message


async def test_json_true_is_not_one(shop: str, make_context: ContextFactory) -> None:
    """JSON equality is strict about types: 1 does not equal true."""
    step = http_step(http={"post": f"{shop}/echo", "json": {}}, expect={"json": {"$.body": True}})
    failure = await fails(step, make_context())
    assert failure.message == 'expected $.body to be true, got "{}"'


async def test_long_bodies_are_truncated_in_messages(
    shop: str, make_context: ContextFactory
) -> None:
    """A failure message shows at most ~200 characters of the body."""
    step = http_step(http={"post": f"{shop}/echo", "body": "x" * 5000}, expect={"status": 201})
    failure = await fails(step, make_context())
    assert failure.reason is FailureReason.HTTP_STATUS
    assert len(failure.message) < 300
    assert failure.message.endswith("...'")


async def test_missing_extraction_is_extraction(shop: str, make_context: ContextFactory) -> None:
    """A value to extract that is not in the reply fails as extraction, naming it."""
    step = http_step(http={"get": f"{shop}/echo"}, extract={"token": {"json": "$.token"}})
    failure = await fails(step, make_context())
    assert failure.reason is FailureReason.EXTRACTION
    assert failure.message == "expected to extract 'token' from JSON path $.token, found none"


async def test_max_duration_exceeded_is_assertion(shop: str, make_context: ContextFactory) -> None:
    """A reply slower than max_duration fails as assertion with the measured time."""
    ctx = make_context()
    step = http_step(http={"get": f"{shop}/slow?seconds=0.1"}, expect={"max_duration": "50ms"})
    failure = await fails(step, ctx)
    assert failure.reason is FailureReason.ASSERTION
    assert failure.message.startswith("expected a duration of at most 0.05s, took ")
    assert ctx.record.duration is not None
    assert ctx.record.duration >= 0.1


def _raw_deflate(data: bytes) -> bytes:
    """Deflate without the zlib header, as some servers send it."""
    deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return deflater.compress(data) + deflater.flush()


def _raw_reply(body: bytes, encoding: str) -> bytes:
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: {encoding}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def test_gzip_bomb_stops_at_the_cap_without_inflating_it(
    make_context: ContextFactory,
) -> None:
    """50 MB of zeros gzipped to ~50 KB: too_large at a 1 MB cap, and the step's memory
    peak stays near the cap instead of the inflated size."""
    bomb = gzip.compress(b"\0" * 50_000_000, compresslevel=9)

    async def serve_bomb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_raw_reply(bomb, "gzip"))
        await writer.drain()
        writer.close()

    async with serve_raw(serve_bomb) as base:
        tracemalloc.start()
        try:
            failure = await fails(http_step(http={"get": base, "max_body": "1MB"}), make_context())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert failure.reason is FailureReason.TOO_LARGE
    assert "at most 1000000 bytes" in failure.message
    assert peak < 8_000_000, f"peak {peak} bytes while reading a capped gzip body"


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", _raw_deflate),
    ],
    ids=["gzip", "deflate", "raw-deflate"],
)
async def test_compressed_bodies_are_read_whole_within_the_cap(
    make_context: ContextFactory, encoding: str, compress: Any
) -> None:
    """gzip, zlib-wrapped and raw deflate bodies are decoded and checked like plain ones."""
    document = b'{"ok": true, "items": [' + b",".join(b"%d" % n for n in range(5000)) + b"]}"
    payload = compress(document)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_raw_reply(payload, encoding))
        await writer.drain()
        writer.close()

    async with serve_raw(serve) as base:
        step = http_step(http={"get": base}, expect={"json": {"$.ok": True, "$.items[-1]": 4999}})
        await run(step, make_context())
