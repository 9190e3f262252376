"""An HTTP/1.1 response read from bytes as they arrive, no I/O: its head, then its body.

It reads what h11 (httpcore's parser) reads, as strictly, with h11's grammar and
messages, without h11's event objects and state machine around each piece (~13% of the
agent's CPU at 100 steps/s): a status line and headers (obs-fold joined, as h11 does),
1xx answers skipped (a 101 ends the exchange, and only when the request asked to
upgrade), a body framed by ``Transfer-Encoding: chunked`` (trailers checked), by
``Content-Length``, or by the connection's end; none for HEAD, 204 and 304. Every
fault is :class:`httpx.RemoteProtocolError`. Stricter than h11 in two places: a head
past its limit fails even when it arrived whole, and bytes after a response make its
connection unfit for another request (h11 would read them as the next response).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import httpx

from agent.steps.http.fields import (
    FIELD_VALUE_PATTERN,
    TOKEN_PATTERN,
    Fields,
    normalize,
)

__all__ = ["Head", "ResponseReader"]

_VCHAR_OR_OBS = rb"[^\x00\s]"  # h11's grammar (its _abnf module)
_HEADER = rb"(" + TOKEN_PATTERN + rb"):[ \t]*(" + FIELD_VALUE_PATTERN + rb")[ \t]*"
_HEADER_LINE = re.compile(_HEADER)
_HEADER_FIELD = re.compile(_HEADER + rb"\r?\n")
_HEADER_LINES = re.compile(rb"(?:" + _HEADER + rb"\r?\n)*")
_STATUS_LINE = re.compile(
    rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: ((?:[ \t]|" + _VCHAR_OR_OBS + rb")*))?"
)
_CHUNK_HEADER = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*\r\n")
_LINE_END = re.compile(rb"\r?\n")
_BLANK_LINE = re.compile(rb"\n\r?\n")
_FOLD = re.compile(rb"[ \t]+")

_NO_BODY = frozenset((204, 304))
_UNTIL_CLOSE = -1  # a body framed by the connection's end


class Head(NamedTuple):
    status_code: int
    http_version: bytes  # b"1.1"
    reason: bytes
    headers: Fields  # names in their case; Content-Length and Transfer-Encoding as h11 keeps them


class ResponseReader:
    """The response to one request with ``method``; :meth:`feed` it bytes (``b""`` at the
    connection's end), then ask :meth:`head` and :meth:`data` until they answer."""

    def __init__(self, method: bytes, *, upgrade: bool, keep_alive: bool, max_head: int) -> None:
        self._method = method
        self._upgrade = upgrade  # the request carried Upgrade: a 101 may answer it
        self._request_keep_alive = keep_alive  # the request did not say Connection: close
        self._max = max_head
        self._buffer = b""
        self._ended_input = False
        self._searched = 0  # where the search for the head's end resumes
        self._length = 0  # the declared Content-Length
        self._left = 0  # body bytes (Content-Length) or bytes of the current chunk
        self._chunked = False
        self._footer = b""  # what must follow a chunk's data: the rest of b"\r\n"
        self._trailer = False
        self._done = False
        self._keep_alive = False

    @property
    def reusable(self) -> bool:
        """The response ended cleanly, both sides keep the connection, nothing came after."""
        return self._done and self._keep_alive and not self._buffer

    def feed(self, data: bytes) -> None:
        if data:
            self._buffer += data
        else:
            self._ended_input = True

    def head(self) -> Head | None:
        """The final head (or a 101's), or None until more bytes arrive."""
        while True:
            block = self._section()
            if block is None:
                if self._buffer[:1] and self._buffer[0] < 0x21:  # no status line starts so
                    raise httpx.RemoteProtocolError("illegal request line")  # h11's words
                if self._ended_input:
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    )
                return None
            head = _parse_head(block)
            if head.status_code == 101:
                if not self._upgrade:
                    raise httpx.RemoteProtocolError(
                        "Received server _SWITCH_UPGRADE event without a pending proposal"
                    )
                self._done = True  # another protocol now: not ours to read, nor to reuse
                return head
            if head.status_code >= 200:
                self._frame(head)
                return head

    def data(self) -> bytes | None:
        """The body's next bytes, b"" at its end, None until more bytes arrive."""
        if self._done:
            return b""
        if self._chunked:
            return self._chunk_data()
        if self._left == _UNTIL_CLOSE:
            data, self._buffer = self._buffer, b""
            if data:
                return data
            if self._ended_input:
                self._done = True
                return b""
            return None
        if self._left == 0:
            self._done = True
            return b""
        data = self._take(self._left)
        if data:
            self._left -= len(data)
            return data
        if self._ended_input:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body "
                f"(received {self._length - self._left} bytes, expected {self._length})"
            )
        return None

    def _frame(self, head: Head) -> None:
        """How the body ends, and whether the connection outlives it (as h11 decides)."""
        self._keep_alive = (
            self._request_keep_alive
            and head.http_version >= b"1.1"
            and b"close" not in head.headers.values_of(b"connection")
        )
        if head.status_code in _NO_BODY or self._method == b"HEAD":
            self._length = 0
        elif head.headers.chunked:
            self._chunked = True
        elif head.headers.length is not None:
            self._length = self._left = head.headers.length
        else:
            self._left = _UNTIL_CLOSE
            self._keep_alive = False

    def _chunk_data(self) -> bytes | None:
        if self._footer:
            got = self._take(len(self._footer))
            if got != self._footer[: len(got)]:
                raise httpx.RemoteProtocolError(
                    f"malformed chunk footer: {got!r} (expected {self._footer!r})"
                )
            self._footer = self._footer[len(got) :]
            if self._footer:
                self._wait()
                return None
        if self._trailer:
            block = self._section()
            if block is None:
                self._wait()
                return None
            _header_fields(block)  # checked, then dropped: trailers mean nothing here
            self._done = True
            return b""
        if self._left == 0:
            line = self._chunk_header()
            if line is None:
                self._wait()
                return None
            self._left = int(line, 16)
            if self._left == 0:
                self._trailer = True
                return self._chunk_data()
        data = self._take(self._left)
        if not data:
            self._wait()
            return None
        self._left -= len(data)
        if self._left == 0:
            self._footer = b"\r\n"
        return data

    def _chunk_header(self) -> bytes | None:
        """The next chunk's size (hex digits), None until its line arrived."""
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > self._max:
                raise httpx.RemoteProtocolError("Receive buffer too long")
            return None
        line, self._buffer = self._buffer[: end + 2], self._buffer[end + 2 :]
        match = _CHUNK_HEADER.fullmatch(line)
        if match is None:
            raise httpx.RemoteProtocolError(f"illegal chunk header: {line!r}")
        return match[1]

    def _wait(self) -> None:
        """More bytes of a chunked body are needed: the error if none will come."""
        if not self._ended_input:
            return
        if self._buffer:
            raise httpx.RemoteProtocolError("peer unexpectedly closed connection")
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body (incomplete chunked read)"
        )

    def _take(self, at_most: int) -> bytes:
        data, self._buffer = self._buffer[:at_most], self._buffer[at_most:]
        return data

    def _section(self) -> bytes | None:
        """The lines up to the next blank one, each with its line end (taken from the
        buffer), or None until it arrived; past the head's limit, RemoteProtocolError."""
        buffer = self._buffer
        if buffer[:1] == b"\n" or buffer[:2] == b"\r\n":
            self._buffer = buffer[1 if buffer[:1] == b"\n" else 2 :]
            return b""
        match = _BLANK_LINE.search(buffer, self._searched)
        if match is None or match.end() > self._max:
            if len(buffer) > self._max:
                raise httpx.RemoteProtocolError("Receive buffer too long")
            self._searched = max(0, len(buffer) - 2)
            return None
        self._searched = 0
        self._buffer = buffer[match.end() :]
        return buffer[: match.start() + 1]


def _parse_head(block: bytes) -> Head:
    if not block:
        raise httpx.RemoteProtocolError("no response line received")
    end = block.find(b"\n")
    line = block[: end - 1 if block[end - 1 : end] == b"\r" else end]
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise httpx.RemoteProtocolError(f"illegal status line: {line!r}")
    status = int(match[2])
    if status < 100:
        raise httpx.RemoteProtocolError(
            f"InformationalResponse status_code should be in range [100, 200), not {status}"
        )
    return Head(status, match[1], match[3] or b"", _header_fields(block[end + 1 :]))


def _header_fields(block: bytes) -> Fields:
    """Header lines, each ending in LF or CRLF, as (name, value); one regex checks them
    all, another takes them apart. A line starting with a blank continues the last."""
    if block[:1] in (b" ", b"\t") or b"\n " in block or b"\n\t" in block:
        block = _unfold(block)
    if _HEADER_LINES.fullmatch(block) is None:
        lines = _LINE_END.split(block)[:-1]
        bad = next((line for line in lines if _HEADER_LINE.fullmatch(line) is None), block)
        raise httpx.RemoteProtocolError(f"illegal header line: {bad!r}")
    return normalize(_HEADER_FIELD.findall(block))


def _unfold(block: bytes) -> bytes:
    joined: list[bytes] = []
    for line in _LINE_END.split(block)[:-1]:
        fold = _FOLD.match(line)
        if fold is None:
            joined.append(line)
        elif not joined:
            raise httpx.RemoteProtocolError("continuation line at start of headers")
        else:
            joined[-1] += b" " + line[fold.end() :]
    return b"".join(line + b"\r\n" for line in joined)
