"""Hostile targets, provoked for real on loopback: the HTTP step stays bounded in memory
and time, and reports each fault as the target's (or the journey's), never ``internal``.

Bombs are 50 MB of zeros under every content coding the client accepts, alone and in
layers; memory is the tracemalloc peak while the step reads one at a 1 MB cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import pytest
from aiohttp import web
from conftest import ContextFactory
from http_servers import (
    SEEN_TRACEPARENTS,
    RawHandler,
    fails,
    http_step,
    serve_app,
    serve_raw,
)
from pydantic import ValidationError

from agent.language.model import Journey
from agent.run.context import RunEnvironment, StepFailed
from agent.run.results import FailureReason
from agent.run.runner import run_journey
from agent.steps.http.body import ACCEPT_ENCODING
from agent.steps.http.reply import json_text
from agent.steps.http.run import run

ZEROS = 50_000_000
CAP = "1MB"
PEAK = 8_000_000  # bytes a 1 MB-capped step may hold while reading a bomb
DEEP_JSON = b"[" * 200_000


def raw_deflate(data: bytes) -> bytes:
    """Deflate without the zlib header, as some servers send it."""
    deflater = zlib.compressobj(9, wbits=-zlib.MAX_WBITS)
    return deflater.compress(data) + deflater.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "zlib": zlib.compress,
    "raw": raw_deflate,
}


@cache
def encoded(*encoders: str) -> bytes:
    """50 MB of zeros through each encoder in turn (the order Content-Encoding lists)."""
    inner = b"\0" * ZEROS if len(encoders) == 1 else encoded(*encoders[:-1])
    return ENCODERS[encoders[-1]](inner)


@asynccontextmanager
async def replying(
    body: bytes, *headers: str, status: str = "200 OK", length: int | None = None
) -> AsyncIterator[str]:
    """A server answering every request with ``status``, ``headers`` and ``body`` written
    as raw bytes (a HEAD gets the head only), declaring ``length`` (by default the body's
    own); yields its base URL."""
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{line}\r\n" for line in headers)
    head += f"Content-Length: {len(body) if length is None else length}\r\n\r\n"

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):
            while request := await reader.readuntil(b"\r\n\r\n"):
                writer.write(head.encode() + (b"" if request.startswith(b"HEAD") else body))
                await writer.drain()

    async with serve_raw(answer) as base:
        yield base


@contextlib.contextmanager
def peak_memory() -> Iterator[list[int]]:
    """The tracemalloc peak of the block, in bytes, as the only item of the yielded list."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
        peak.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("content_encoding", "encoders"),
    [
        ("gzip, gzip", ("gzip", "gzip")),
        ("deflate, gzip", ("zlib", "gzip")),
        ("gzip, deflate", ("gzip", "raw")),
        ("GZIP ,Deflate, gzip", ("gzip", "zlib", "gzip")),
        ("identity, x-gzip, identity", ("gzip",)),
        ("deflate", ("zlib",)),
        ("deflate", ("raw",)),
    ],
    ids=["gzip-in-gzip", "deflate-in-gzip", "gzip-in-raw-deflate", "three-layers", "identity",
         "deflate", "raw-deflate"],
)  # fmt: skip
async def test_every_layer_of_a_bomb_is_inflated_within_the_cap(
    make_context: ContextFactory, content_encoding: str, encoders: tuple[str, ...]
) -> None:
    """A bomb under any number of codings fails as too_large at the cap, and the step
    holds about the cap, not the 50 MB it inflates to."""
    body = encoded(*encoders)
    async with replying(body, f"Content-Encoding: {content_encoding}") as base:
        with peak_memory() as peak:
            failure = await fails(http_step(http={"get": base, "max_body": CAP}), make_context())
    assert failure.reason is FailureReason.TOO_LARGE, failure.message
    assert failure.message.startswith("expected a body of at most 1000000 bytes, got more")
    assert peak[0] < PEAK, f"peak {peak[0]} bytes reading {len(body)} bytes of {encoders}"


async def test_layered_bodies_within_the_cap_are_read_whole(make_context: ContextFactory) -> None:
    """A JSON document under three codings is decoded and checked like a plain one, also
    when the outer stream's trailer comes after the inner stream has ended."""
    document = b'{"ok": true, "items": [' + b",".join(b"%d" % n for n in range(5000)) + b"]}"
    body = raw_deflate(gzip.compress(zlib.compress(document)))
    trailer_late = gzip.compress(gzip.compress(document))

    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip, gzip\r\n")
        writer.write(b"Content-Length: %d\r\n\r\n" % len(trailer_late) + trailer_late[:-8])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(trailer_late[-8:])  # the outer gzip's CRC and size
        await writer.drain()

    expect = {"json": {"$.ok": True, "$.items[-1]": 4999}}
    async with replying(body, "Content-Encoding: deflate, gzip, deflate") as base:
        await run(http_step(http={"get": base}, expect=expect), make_context())
    async with serve_raw(late) as base:
        await run(http_step(http={"get": base}, expect=expect), make_context())


@pytest.mark.parametrize(
    ("content_encoding", "body", "message"),
    [
        ("gzip", b"not gzip at all", "expected a gzip body, got Error -3"),
        ("gzip, gzip", gzip.compress(b"not gzip inside"), "expected a gzip body, got Error -3"),
        ("gzip", gzip.compress(b"x" * 1000)[:-9], "a stream that ends before its end marker"),
        ("br", b"\x1b\x03\x00", "got Content-Encoding br"),
        ("gzip, zstd", b"(\xb5/\xfd", "got Content-Encoding zstd"),
        ("compress", b"\x1f\x9d", "got Content-Encoding compress"),
        ("gzip, gzip, gzip, gzip", b"\x1f\x8b", "expected at most 3 content codings, got 4"),
    ],
    ids=["corrupt", "inner-corrupt", "truncated", "br", "zstd", "compress", "four-layers"],
)
async def test_bodies_the_agent_cannot_decode_are_protocol(
    make_context: ContextFactory, content_encoding: str, body: bytes, message: str
) -> None:
    """A corrupt, truncated, unknown or too deeply layered coding fails as protocol; the
    same coding on an empty body (a HEAD) needs no decoding and passes."""
    async with replying(body, f"Content-Encoding: {content_encoding}") as base:
        failure = await fails(http_step(http={"get": base}), make_context())
        await run(http_step(http={"head": base}), make_context())
    assert failure.reason is FailureReason.PROTOCOL
    assert message in failure.message


async def test_only_bounded_codings_are_advertised(
    shop: str, make_context: ContextFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accept-Encoding offers exactly what the agent inflates within its cap, even where
    httpx would offer br and zstd (it does once brotli or zstandard is installed)."""
    monkeypatch.setattr("httpx._client.ACCEPT_ENCODING", "br, zstd, gzip, deflate")
    ctx = make_context()
    step = http_step(
        http={"get": f"{shop}/echo"}, extract={"sent": {"json": '$.headers["Accept-Encoding"]'}}
    )
    await run(step, ctx)
    assert ctx.variables["sent"] == ACCEPT_ENCODING == "gzip, deflate"


async def test_endless_streams_stop_at_the_cap(make_context: ContextFactory) -> None:
    """An endless chunked body, an endless gzip stream, and trailing bytes after a gzip
    stream's end all fail as too_large once the cap is read, holding about the cap."""
    zeros = b"\0" * 65536

    async def endless(request: web.Request) -> web.StreamResponse:
        coding = request.query.get("coding", "identity")
        response = web.StreamResponse(headers={"Content-Encoding": coding})
        await response.prepare(request)
        deflater = zlib.compressobj(wbits=zlib.MAX_WBITS | 16)
        if "after_end" in request.query:
            await response.write(gzip.compress(b"the end"))
        while True:
            if "after_end" in request.query or coding == "identity":
                await response.write(zeros)
            else:  # a gzip stream that never ends: 64 KB of zeros per ~100 bytes
                await response.write(deflater.compress(zeros) + deflater.flush(zlib.Z_SYNC_FLUSH))
            await asyncio.sleep(0)  # small writes do not wait: let the client read

    app = web.Application()
    app.router.add_get("/", endless)
    async with serve_app(app) as base:
        for query in ("", "?coding=gzip", "?coding=gzip&after_end=1"):
            with peak_memory() as peak:
                step = http_step(http={"get": f"{base}/{query}", "max_body": CAP})
                async with asyncio.timeout(20):
                    failure = await fails(step, make_context())
            assert failure.reason is FailureReason.TOO_LARGE, (query, failure.message)
            assert peak[0] < PEAK, f"peak {peak[0]} bytes for {query}"


def hostile_journey(name: str, url: str, **step: Any) -> Journey:
    """A one-step journey named ``name`` against ``url`` with a 1 MB cap and a 1 s step."""
    fields = {"name": name, "timeout": "1s", "http": {"get": url, "max_body": CAP}, **step}
    return Journey.model_validate({"journey": name, "business_process": "bench", "steps": [fields]})


def dripping(head: bytes) -> RawHandler:
    """A raw server handler writing ``head``, then one more byte every 50 ms, forever."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head)
        while True:
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"x")

    return handler


async def test_every_hostile_target_at_once_through_the_runner(run_env: RunEnvironment) -> None:
    """Journeys against every hostile target run concurrently: each fails with the target's
    reason, none as internal, and all of them together hold a few times the cap."""
    json_type = "Content-Type: application/json"
    async with contextlib.AsyncExitStack() as stack:

        async def raw(body: bytes, *headers: str, length: int | None = None) -> str:
            return await stack.enter_async_context(replying(body, *headers, length=length))

        async def serve(handler: RawHandler) -> str:
            return await stack.enter_async_context(serve_raw(handler))

        bomb = encoded("gzip", "gzip")
        targets: dict[str, tuple[str, dict[str, Any]]] = {
            "gzip-in-gzip": (await raw(bomb, "Content-Encoding: gzip, gzip"), {}),
            "deflate-bomb": (await raw(encoded("zlib"), "Content-Encoding: deflate"), {}),
            "length-lie": (await raw(b"", length=1_000_000_000), {}),
            "deep-json": (await raw(DEEP_JSON, json_type), {"expect": {"json": {"$[0]": 1}}}),
            "unknown-charset": (
                await raw(b"Welcome", "Content-Type: text/html; charset=x-no-such"),
                {"expect": {"body_contains": "Welcome"}},
            ),
            "header-drip": (await serve(dripping(b"HTTP/1.1 200 OK\r\nX-Drip: ")), {}),
            "trickle": (await serve(dripping(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")),
                        {}),
        }  # fmt: skip
        journeys = [hostile_journey(name, url, **step) for name, (url, step) in targets.items()]
        with peak_memory() as peak:
            results = await asyncio.gather(*(run_journey(j, run_env) for j in journeys))
    reasons = {result.journey: result.reason for result in results}
    assert reasons == {
        "gzip-in-gzip": FailureReason.TOO_LARGE,
        "deflate-bomb": FailureReason.TOO_LARGE,
        "length-lie": FailureReason.TOO_LARGE,
        "deep-json": FailureReason.PROTOCOL,
        "unknown-charset": FailureReason.PROTOCOL,
        "header-drip": FailureReason.TIMEOUT,
        "trickle": FailureReason.TIMEOUT,
    }, [r.message for r in results]
    assert peak[0] < 4 * PEAK, f"peak {peak[0]} bytes with every hostile target at once"


async def test_deep_json_is_protocol_and_only_when_read(run_env: RunEnvironment) -> None:
    """JSON nested 200,000 deep passes a step that does not read it, and fails the one
    that does as protocol (it raised RecursionError: internal)."""
    async with replying(DEEP_JSON, "Content-Type: application/json") as base:
        journey = Journey.model_validate(
            {
                "journey": "deep",
                "business_process": "bench",
                "steps": [
                    {"name": "status only", "http": {"get": base}, "expect": {"status": 200}},
                    {"name": "reads it", "http": {"get": base}, "expect": {"json": {"$[0]": 1}}},
                ],
            }
        )
        result = await run_journey(journey, run_env)
    assert [step.ok for step in result.steps] == [True, False]
    assert result.reason is FailureReason.PROTOCOL
    assert result.message == "expected a JSON body for $[0], got JSON nested too deeply to read"


UNPARSABLE_JSON = {
    "deep": DEEP_JSON,
    "not UTF-8": b'{"ok": "\xff\xfe"}',
    "a number past the digit limit": b"1" * 5000,
}
UNREADABLE_CHARSETS = {
    "unknown": "x-no-such",
    "not a text codec": "base64",
    "a codec refusing replacements": "idna",
    "a pure-Python codec, quadratic": "punycode",
}
JSON_READERS: dict[str, dict[str, Any]] = {
    "json": {"expect": {"json": {"$.ok": 1}}},
    "json_exists": {"expect": {"json_exists": ["$.ok"]}},
    "json_matches": {"expect": {"json_matches": {"$.ok": "1"}}},
    "extract json": {"extract": {"ok": {"json": "$.ok"}}},
}
TEXT_READERS: dict[str, dict[str, Any]] = {
    "body_contains": {"expect": {"body_contains": "ok"}},
    "body_not_contains": {"expect": {"body_not_contains": "Welcome"}},
    "body_matches": {"expect": {"body_matches": "o+k"}},
    "extract regex": {"extract": {"word": {"regex": "(ok)"}}},
}


@pytest.mark.parametrize("reader", sorted(JSON_READERS))
@pytest.mark.parametrize("body", sorted(UNPARSABLE_JSON))
async def test_json_the_parser_cannot_read_is_protocol(
    make_context: ContextFactory, body: str, reader: str
) -> None:
    """Every JSON expectation and extraction of a body that cannot be parsed (nested too
    deep, not UTF-8, a number past Python's digit limit) fails as protocol."""
    async with replying(UNPARSABLE_JSON[body], "Content-Type: application/json") as base:
        failure = await fails(http_step(http={"get": base}, **JSON_READERS[reader]), make_context())
    assert failure.reason is FailureReason.PROTOCOL, failure.message
    assert failure.message.startswith("expected a JSON body for $.ok, got ")


@pytest.mark.parametrize("charset", sorted(UNREADABLE_CHARSETS))
async def test_text_in_a_charset_the_agent_cannot_read_is_protocol(
    make_context: ContextFactory, charset: str
) -> None:
    """Every text expectation and extraction of a body in a charset that is not one of the
    web's fails as protocol (it was LookupError or UnicodeError: internal, or minutes of
    CPU); JSON readers are unaffected, JSON being UTF-8 whatever the charset says."""
    content_type = f"Content-Type: application/json; charset={UNREADABLE_CHARSETS[charset]}"
    async with replying(b'{"ok": 1}', content_type) as base:
        failures = [
            await fails(http_step(http={"get": base}, **TEXT_READERS[reader]), make_context())
            for reader in sorted(TEXT_READERS)
        ]
        for reader in JSON_READERS.values():
            await run(http_step(http={"get": base}, **reader), make_context())
    assert {f.reason for f in failures} == {FailureReason.PROTOCOL}
    assert all("expected a body in a charset of the web" in f.message for f in failures)


@pytest.mark.parametrize(
    ("label", "text"),
    [
        ("Shift_JIS", "ようこそ"),
        ("sjis", "ようこそ"),
        ("windows-1251", "Добро"),
        ("UTF8", "Wîllkommen"),
    ],
)
async def test_text_in_a_charset_of_the_web_is_read_by_any_of_its_names(
    make_context: ContextFactory, label: str, text: str
) -> None:
    """A body in a charset of the web, named by any of its aliases, is decoded for the text
    expectations (the charset is recognised from Python's alias table, not by loading
    every codec up front)."""
    content_type = f"Content-Type: text/plain; charset={label}"
    async with replying(text.encode(label), content_type) as base:
        await run(http_step(http={"get": base}, expect={"body_contains": text}), make_context())


async def test_an_unreadable_charset_on_a_failing_status_is_http_status(
    make_context: ContextFactory,
) -> None:
    """A 500 in an unknown charset fails as http_status, showing the body read as UTF-8."""
    async with replying(
        b"Oops", "Content-Type: text/plain; charset=x-no-such", status="500 X"
    ) as base:
        failure = await fails(http_step(http={"get": base}), make_context())
    assert failure.reason is FailureReason.HTTP_STATUS
    assert failure.message == "expected status 2xx or 3xx, got 500 X: 'Oops'"


def test_a_value_too_deep_to_write_back_is_protocol() -> None:
    """A JSON value nested deeper than the encoder recurses fails as protocol when shown."""
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(StepFailed) as caught:
        json_text(deep)
    assert caught.value.reason is FailureReason.PROTOCOL


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "page",
    [
        "<html>" + "<a " * 100_000,
        "<html>" + "<![" * 1000,
        "<!doctype html><title>t</title>" + "<!--" * 100_000,
        "<html><title>" + "<script>" * 100_000,
    ],
    ids=["unclosed-tags", "marked-sections", "unclosed-comments", "unclosed-scripts"],
)
async def test_a_hostile_page_costs_its_failure_message_little(
    make_context: ContextFactory, page: str
) -> None:
    """A failing status on a page that html.parser takes minutes on (or raises on) is
    http_status, its message made in well under a second."""
    async with replying(page.encode(), "Content-Type: text/html", status="500 X") as base:
        started = time.perf_counter()
        failure = await fails(http_step(http={"get": base}), make_context())
        took = time.perf_counter() - started
    assert failure.reason is FailureReason.HTTP_STATUS
    assert failure.message.startswith("expected status 2xx or 3xx, got 500 X: a page")
    assert took < 1.0, f"{took:.2f}s to fail a step on a {len(page)}-character page"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a\r\nX-Injected: yes", "a line break (CR or LF)"),
        ("Zoë", "a non-ASCII character (U+00EB)"),
        ("a\x00b", "a control character (U+0000)"),
    ],
    ids=["crlf", "non-ascii", "nul"],
)
async def test_a_templated_header_that_cannot_be_sent_is_config(
    shop_server: tuple[str, web.Application], make_context: ContextFactory, value: str, problem: str
) -> None:
    """A header value that templating made unsendable fails as config before anything is
    sent, naming the header and never the value (it may be a secret)."""
    shop, app = shop_server
    ctx = make_context(variables={"note": value}, secrets={"token": value})
    plain = http_step(http={"get": f"{shop}/echo", "headers": {"X-Note": "${note}"}})
    bearer = http_step(http={"get": f"{shop}/echo", "auth": {"bearer": "${secret.token}"}})
    failures = [await fails(plain, ctx), await fails(bearer, ctx)]
    assert [f.reason for f in failures] == [FailureReason.CONFIG] * 2
    assert [f.message for f in failures] == [
        f"expected header {name} to be printable ASCII on one line after templating, "
        f"got {problem} in its value"
        for name in ("X-Note", "Authorization")
    ]
    assert app[SEEN_TRACEPARENTS] == []  # nothing reached the server


async def test_templated_header_values_are_trimmed(shop: str, make_context: ContextFactory) -> None:
    """Blanks around a templated header value are not part of it (RFC 9110): trimmed."""
    ctx = make_context(variables={"note": "  a note\t"})
    step = http_step(
        http={"get": f"{shop}/echo", "headers": {"X-Note": "${note}"}},
        extract={"sent": {"json": '$.headers["X-Note"]'}},
    )
    await run(step, ctx)
    assert ctx.variables["sent"] == "a note"


def test_validate_rejects_literal_unsendable_headers_and_defers_templates() -> None:
    """A literal header with CR/LF or non-ASCII is a validation error naming the header;
    ${...} in a name or value is left for the run to check once rendered."""
    http_step(http={"get": "http://127.0.0.1/", "headers": {"X-${kind}": "${value}"}})
    for headers, message in [
        ({"X-Note": "a\nb"}, "must be printable ASCII on one line, got a line break (CR or LF)"),
        ({"X-Note": "Zoë"}, "must be printable ASCII on one line, got a non-ASCII character"),
        ({"X Note": "a"}, "must be a header name"),
    ]:
        with pytest.raises(ValidationError) as caught:
            http_step(http={"get": "http://127.0.0.1/", "headers": headers})
        assert message in caught.value.errors()[0]["msg"]


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("ftp://127.0.0.1/file", "unsupported protocol"),
        ("http://127.0.0.1:99999999/", "port must be at most 65535, got 99999999"),
    ],
    ids=["ftp", "port-out-of-range"],
)
async def test_a_redirect_to_an_unrequestable_url_is_protocol(
    make_context: ContextFactory, location: str, message: str
) -> None:
    """A redirect the agent cannot follow is the target's fault: protocol, not config or
    internal (the port raised OverflowError inside an ExceptionGroup)."""
    async with replying(b"", f"Location: {location}", status="302 Found") as base:
        failure = await fails(http_step(http={"get": base}), make_context())
    assert failure.reason is FailureReason.PROTOCOL
    assert failure.message.startswith(f"expected a redirect to a URL to request, got {location}")
    assert message in failure.message
