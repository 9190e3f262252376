"""The HTTP step's own HTTP/1.1 reader against h11 (httpcore's parser, which it replaced),
on the same bytes: normal and hostile responses, whole, split at every byte boundary and
fed a byte at a time, must give the same head, body and reuse, or both an error.
"""

from __future__ import annotations

from collections.abc import Iterator

import h11
import httpx
import pytest

from agent.steps.http.request_writer import request_bytes
from agent.steps.http.response_reader import ResponseReader

MAX_HEAD = 100 * 1024
HOST = [(b"Host", b"example.test")]
KEEP_ALIVE = [*HOST, (b"Connection", b"keep-alive")]
UPGRADE = [*HOST, (b"Connection", b"upgrade"), (b"Upgrade", b"websocket")]
CLOSE = [*HOST, (b"Connection", b"close")]

Outcome = tuple[int, bytes, bytes, list[tuple[bytes, bytes]], bytes, bool] | str
ERROR = "error"

OK = b"HTTP/1.1 200 OK\r\n"
CHUNKED = OK + b"Transfer-Encoding: chunked\r\n\r\n"

Case = tuple[bytes, list[tuple[bytes, bytes]], bytes]  # method, request headers, response


def get(raw: bytes) -> Case:
    return b"GET", KEEP_ALIVE, raw


CORPUS: dict[str, Case] = {
    "length": get(OK + b"Content-Length: 2\r\n\r\nok"),
    "length-zero": get(OK + b"Content-Length: 0\r\n\r\n"),
    "length-padded": get(OK + b"Content-Length:   3  \r\n\r\nabc"),
    "length-repeated-in-one": get(OK + b"Content-Length: 2, 2\r\n\r\nok"),
    "length-twice": get(OK + b"Content-Length: 2\r\ncontent-length: 2\r\n\r\nok"),
    "chunked": get(CHUNKED + b"2\r\nok\r\n0\r\n\r\n"),
    "chunked-many": get(CHUNKED + b"1\r\na\r\nA\r\n0123456789\r\n0\r\n\r\n"),
    "chunked-extension": get(CHUNKED + b"5;name=v\r\nhello\r\n0;x\r\n\r\n"),
    "chunked-blank-after-size": get(CHUNKED + b"2 \t\r\nok\r\n0\r\n\r\n"),
    "chunked-trailers": get(CHUNKED + b"2\r\nok\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\n"),
    "chunked-case": get(OK + b"Transfer-Encoding: ChunKed\r\n\r\n0\r\n\r\n"),
    "chunked-beats-length": get(
        OK + b"Content-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n",
    ),
    "until-close": get(OK + b"X-A: b\r\n\r\nthe rest, until the end"),
    "http-1.0": get(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "connection-close": get(OK + b"Connection: close\r\nContent-Length: 2\r\n\r\nok"),
    "connection-list": get(
        OK + b"Connection: keep-alive, CLOSE\r\nContent-Length: 0\r\n\r\n",
    ),
    "request-says-close": (b"GET", CLOSE, OK + b"Content-Length: 2\r\n\r\nok"),
    "head": (b"HEAD", KEEP_ALIVE, OK + b"Content-Length: 100\r\n\r\n"),
    "head-chunked": (b"HEAD", KEEP_ALIVE, CHUNKED),
    "no-content": get(b"HTTP/1.1 204 No Content\r\n\r\n"),
    "no-content-with-bytes": get(b"HTTP/1.1 204 X\r\nContent-Length: 2\r\n\r\nok"),
    "not-modified": get(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"),
    "continue-first": (
        b"POST", KEEP_ALIVE, b"HTTP/1.1 100 Continue\r\n\r\n" + OK + b"Content-Length: 2\r\n\r\nok",
    ),
    "early-hints": get(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        b"HTTP/1.1 102 P\r\n\r\n" + OK + b"Content-Length: 0\r\n\r\n",
    ),
    "switching-asked": (b"GET", UPGRADE, b"HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\n\r\nxx"),
    "switching-unasked": get(b"HTTP/1.1 101 Switching\r\n\r\n"),
    "no-reason": get(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"),
    "empty-reason": get(b"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"),
    "obs-text": get(b"HTTP/1.1 200 \xe9t\xe9\r\nX-A: caf\xe9\r\nContent-Length: 0\r\n\r\n"),
    "bare-lf": get(b"HTTP/1.1 200 OK\nX-A: 1\nContent-Length: 2\n\nok"),
    "lf-then-crlf": get(b"HTTP/1.1 200 OK\nContent-Length: 2\n\r\nok"),
    "obs-fold": get(OK + b"X-A: one\r\n  two\r\n\tthree\r\nContent-Length: 0\r\n\r\n"),
    "empty-value": get(OK + b"X-E:\r\nX-F:   \r\nContent-Length: 0\r\n\r\n"),
    "odd-controls-in-value": get(OK + b"X-A: a\x01b\x7f\r\nContent-Length: 0\r\n\r\n"),
    "version-9.9": get(b"HTTP/9.9 200 OK\r\nContent-Length: 0\r\n\r\n"),
    "status-999": get(b"HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n"),
    # hostile
    "fold-at-start": get(OK + b" X-A: 1\r\nContent-Length: 0\r\n\r\n"),
    "conflicting-lengths": get(OK + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nok!"),
    "conflicting-in-one": get(OK + b"Content-Length: 2, 3\r\n\r\nok!"),
    "length-not-a-number": get(OK + b"Content-Length: 2x\r\n\r\nok"),
    "length-negative": get(OK + b"Content-Length: -1\r\n\r\n"),
    "length-hex": get(OK + b"Content-Length: 0x2\r\n\r\nok"),
    "length-21-digits": get(OK + b"Content-Length: " + b"1" * 21 + b"\r\n\r\n"),
    "length-empty": get(OK + b"Content-Length:\r\n\r\n"),
    "coding-gzip": get(OK + b"Transfer-Encoding: gzip\r\n\r\nxx"),
    "coding-gzip-chunked": get(OK + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    "coding-twice": get(
        OK + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    ),
    "coding-head-gzip": (b"HEAD", KEEP_ALIVE, OK + b"Transfer-Encoding: gzip\r\n\r\n"),
    "chunk-size-not-hex": get(CHUNKED + b"zz\r\nok\r\n0\r\n\r\n"),
    "chunk-size-negative": get(CHUNKED + b"-2\r\nok\r\n0\r\n\r\n"),
    "chunk-size-21-digits": get(CHUNKED + b"0" * 20 + b"2\r\nok\r\n0\r\n\r\n"),
    "chunk-size-bare-lf": get(CHUNKED + b"2\nok\r\n0\r\n\r\n"),
    "chunk-size-empty": get(CHUNKED + b"\r\nok\r\n0\r\n\r\n"),
    "chunk-footer-wrong": get(CHUNKED + b"2\r\nokXY0\r\n\r\n"),
    "chunk-longer-than-said": get(CHUNKED + b"2\r\nokay\r\n0\r\n\r\n"),
    "trailer-not-a-header": get(CHUNKED + b"0\r\nnot a header\r\n\r\n"),
    "trailer-bad-length": get(CHUNKED + b"0\r\nContent-Length: x\r\n\r\n"),
    "trailer-folded-first": get(CHUNKED + b"0\r\n X: 1\r\n\r\n"),
    "cut-in-length-body": get(OK + b"Content-Length: 10\r\n\r\nonly"),
    "cut-in-chunk": get(CHUNKED + b"a\r\nonly"),
    "cut-in-chunk-size": get(CHUNKED + b"2\r\nok\r\n1"),
    "cut-in-trailers": get(CHUNKED + b"0\r\nX-A: 1\r\n"),
    "cut-in-head": get(OK + b"Content-Length: 2\r\n"),
    "cut-after-continue": get(b"HTTP/1.1 100 Continue\r\n\r\n"),
    "nothing": get(b""),
    "status-four-digits": get(b"HTTP/1.1 2000 OK\r\n\r\n"),
    "status-099": get(b"HTTP/1.1 099 Low\r\n\r\n"),
    "http-2": get(b"HTTP/2 200 OK\r\n\r\n"),
    "not-http": get(b"ICY 200 OK\r\n\r\n"),
    "lowercase-http": get(b"http/1.1 200 OK\r\n\r\n"),
    "two-spaces": get(b"HTTP/1.1  200 OK\r\n\r\n"),
    "nul-in-reason": get(b"HTTP/1.1 200 O\x00K\r\n\r\n"),
    "no-colon": get(OK + b"no colon here\r\n\r\n"),
    "space-in-name": get(OK + b"Bad Name: x\r\n\r\n"),
    "space-before-colon": get(OK + b"X-A : b\r\n\r\n"),
    "empty-name": get(OK + b": b\r\n\r\n"),
    "nul-in-value": get(OK + b"X-A: a\x00b\r\n\r\n"),
    "cr-in-value": get(OK + b"X-A: a\rb\r\n\r\n"),
    "blank-line-first": get(b"\r\n" + OK + b"Content-Length: 0\r\n\r\n"),
    "space-first": get(b" " + OK + b"Content-Length: 0\r\n\r\n"),
    "bytes-after": get(OK + b"Content-Length: 2\r\n\r\nokJUNK"),
    "response-after": get(
        (OK + b"Content-Length: 2\r\n\r\nok") * 2,
    ),
    "bytes-after-chunked": get(CHUNKED + b"0\r\n\r\nHTTP/1.1 200 OK\r\n"),
}  # fmt: skip


def with_h11(
    method: bytes, headers: list[tuple[bytes, bytes]], pieces: list[bytes], max_head: int = MAX_HEAD
) -> Outcome:
    """What the connection made of ``pieces`` with h11, as it drove h11 before."""
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head)
    connection.send(h11.Request(method=method, target=b"/", headers=headers))
    connection.send(h11.EndOfMessage())
    arriving = iter([*pieces, b""])

    def next_event() -> object:
        while (event := connection.next_event()) is h11.NEED_DATA:
            data = next(arriving)
            if not data and connection.their_state is h11.SEND_RESPONSE:
                raise h11.RemoteProtocolError("Server disconnected without sending a response.")
            connection.receive_data(data)
        return event

    try:
        while True:
            head = next_event()
            if isinstance(head, h11.Response):
                break
            if isinstance(head, h11.InformationalResponse) and head.status_code == 101:
                break
        body = b""
        while isinstance(event := next_event(), h11.Data):
            body += event.data
    except h11.RemoteProtocolError:
        return ERROR
    assert isinstance(head, h11.Response | h11.InformationalResponse)
    done = connection.our_state is connection.their_state is h11.DONE
    # bytes after the response: ours never reuses the connection; its end: stale() said so
    reusable = done and connection.trailing_data == (b"", False)
    headers_seen = list(head.headers.raw_items())
    return (head.status_code, head.http_version, head.reason, headers_seen, body, reusable)


def with_ours(
    method: bytes, headers: list[tuple[bytes, bytes]], pieces: list[bytes], max_head: int = MAX_HEAD
) -> Outcome:
    """What the connection makes of ``pieces`` with the agent's reader."""
    written = request_bytes(method, b"/", headers, [])
    reader = ResponseReader(
        method, upgrade=written.upgrade, keep_alive=written.keep_alive, max_head=max_head
    )
    arriving = iter([*pieces, b""])
    try:
        while (head := reader.head()) is None:
            reader.feed(next(arriving))
        body = b""
        while (data := reader.data()) != b"":
            if data is None:
                reader.feed(next(arriving))
            else:
                body += data
    except httpx.RemoteProtocolError:
        return ERROR
    return (head.status_code, head.http_version, head.reason, list(head.headers), body,
            reader.reusable)  # fmt: skip


def h11_request(
    method: bytes, headers: list[tuple[bytes, bytes]], body: list[bytes], target: bytes = b"/"
) -> bytes:
    """The bytes h11 writes for a request, or its LocalProtocolError."""
    connection = h11.Connection(h11.CLIENT)
    written = [connection.send(h11.Request(method=method, target=target, headers=headers))]
    written += [connection.send(h11.Data(data=chunk)) for chunk in body]
    written.append(connection.send(h11.EndOfMessage()))
    return b"".join(data or b"" for data in written)


def splits(raw: bytes) -> Iterator[list[bytes]]:
    """``raw`` whole, in two pieces at every byte boundary, and a byte at a time."""
    yield [raw]
    for at in range(1, len(raw)):
        yield [raw[:at], raw[at:]]
    yield [raw[i : i + 1] for i in range(len(raw))]


def test_the_corpus_is_large_and_has_both_kinds() -> None:
    """At least 40 responses, among them ones each reader accepts and ones both refuse."""
    outcomes = [with_h11(method, headers, [raw]) for method, headers, raw in CORPUS.values()]
    assert len(CORPUS) >= 40
    assert 15 <= outcomes.count(ERROR) <= len(CORPUS) - 15


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_reader_agrees_with_h11_however_the_bytes_arrive(name: str) -> None:
    """The same head, body and reuse as h11, or an error where h11 raises one, whole, split
    at every byte boundary, and a byte at a time."""
    method, headers, raw = CORPUS[name]
    for pieces in splits(raw):
        assert with_ours(method, headers, pieces) == with_h11(method, headers, pieces), pieces


@pytest.mark.parametrize(
    ("raw", "pieces"),
    [
        (OK + b"Content-Length: 200000\r\n\r\n" + b"x" * 200_000, 65536),
        (CHUNKED + b"30d40\r\n" + b"x" * 200_000 + b"\r\n0\r\n\r\n", 65536),
        (OK + b"X-Big: " + b"a" * 200_000 + b"\r\n\r\n", 65536),
        (CHUNKED + b"1" * 200_000 + b"\r\n", 65536),
        (CHUNKED + b"0\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n", 65536),
    ],
    ids=["long-body", "long-chunk", "head-too-long", "chunk-size-too-long", "trailer-too-long"],
)
def test_long_messages_read_as_h11_reads_them(raw: bytes, pieces: int) -> None:
    """Bodies past the head's limit pass; a head, chunk size or trailers that never end
    within it fail, as with h11, read in 64 KB pieces as the connection reads."""
    split = [raw[i : i + pieces] for i in range(0, len(raw), pieces)]
    assert with_ours(b"GET", KEEP_ALIVE, split) == with_h11(b"GET", KEEP_ALIVE, split)


def test_a_head_past_the_limit_fails_even_when_it_arrived_whole() -> None:
    """Stricter than h11, which takes a long head that came in one read: the limit holds."""
    raw = OK + b"X-Big: " + b"a" * 200 + b"\r\nContent-Length: 0\r\n\r\n"
    assert with_h11(b"GET", KEEP_ALIVE, [raw], max_head=100) != ERROR
    assert with_ours(b"GET", KEEP_ALIVE, [raw], max_head=100) == ERROR


@pytest.mark.parametrize(
    ("method", "headers", "body", "message"),
    [
        (b"GET", [(b"X-A", b"1")], [], "Missing mandatory Host: header"),
        (b"GET", [*HOST, *HOST], [], "Found multiple Host: headers"),
        (b"GET", [*HOST, (b"X-A", b"a\r\nX-B: b")], [], "Illegal header value"),
        (b"GET", [*HOST, (b"X A", b"a")], [], "Illegal header name"),
        (b"GET", [*HOST, (b"X: a\r\nY", b"b")], [], "Illegal header name"),
        (b"G T", HOST, [], "Illegal method"),
        (b"POST", [*HOST, (b"Content-Length", b"1")], [b"ab"], "Too much data"),
        (b"POST", [*HOST, (b"Content-Length", b"3")], [b"ab"], "Too little data"),
        (b"POST", HOST, [b"ab"], "Too much data"),
        (b"POST", [*HOST, (b"Transfer-Encoding", b"gzip")], [b"ab"], "Only Transfer-Encoding"),
    ],
)
def test_a_request_h11_would_refuse_to_send_is_refused(
    method: bytes, headers: list[tuple[bytes, bytes]], body: list[bytes], message: str
) -> None:
    """What h11 refuses to send (a header that would split, a body its length belies) is
    httpx.LocalProtocolError before a byte is written, as h11's was."""
    with pytest.raises(h11.LocalProtocolError):
        h11_request(method, headers, body)
    with pytest.raises(httpx.LocalProtocolError, match=message):
        request_bytes(method, b"/", headers, body)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ([(b"Host", b"h"), (b"Accept", b"*/*"), (b"Connection", b"keep-alive")], []),
        ([(b"Accept", b"*/*"), (b"host", b"h:8080"), (b"Content-Length", b"2")], [b"ok"]),
        ([(b"Host", b"h"), (b"Transfer-Encoding", b"chunked")], [b"a", b"", b"bcd"]),
        ([(b"Host", b"h"), (b"Content-Length", b"3, 3"), (b"X-E", b"")], [b"a", b"bc"]),
    ],
)
def test_requests_are_the_bytes_h11_writes(
    headers: list[tuple[bytes, bytes]], body: list[bytes]
) -> None:
    """The request line, headers (Host first) and body framing are byte for byte h11's."""
    expected = h11_request(b"POST", headers, body, target=b"/a?b=c")
    assert request_bytes(b"POST", b"/a?b=c", headers, body).data == expected
