"""Reading a response body up to a cap, decompressing it without ever holding more.

httpx decodes each network chunk whole: one 64 KB chunk of a gzip bomb inflates to
~64 MB before any cap is checked. Here gzip and deflate are inflated with a bound
(``max_length``), so a hostile target costs at most the cap, whatever it sends.
"""

from __future__ import annotations

import zlib

import httpx

from agent.run.context import StepFailed
from agent.run.results import FailureReason

__all__ = ["read_capped", "too_large"]

_GZIP = zlib.MAX_WBITS | 16
_RAW_DEFLATE = -zlib.MAX_WBITS


async def read_capped(response: httpx.Response, max_body: int) -> bytes:
    """The decoded body, or StepFailed(too_large) as soon as it would pass ``max_body``."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        return await _read_decoded_by_httpx(response, max_body)  # br/zstd: httpx's decoders
    inflater = _Inflater(encoding)
    chunks: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        for piece in inflater.feed(raw, room=max_body - size):
            size += len(piece)
            if size > max_body:
                raise too_large(max_body, f"more (stopped reading at {size} bytes)")
            chunks.append(piece)
    return b"".join(chunks)


async def _read_decoded_by_httpx(response: httpx.Response, max_body: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_body:
            raise too_large(max_body, f"more (stopped reading at {size} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(max_body: int, got: str) -> StepFailed:
    return StepFailed(
        FailureReason.TOO_LARGE, f"expected a body of at most {max_body} bytes, got {got}"
    )


class _Inflater:
    """Identity, gzip or deflate (zlib-wrapped, or raw as some servers send it)."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._zlib: zlib._Decompress | None = None
        if encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(_GZIP)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj()
        self._first = True

    def feed(self, data: bytes, room: int) -> list[bytes]:
        """What ``data`` inflates to, stopping just past ``room`` bytes."""
        if self._zlib is None:
            return [data]
        try:
            return self._inflate(data, room)
        except zlib.error as error:
            if self._encoding == "deflate" and self._first:  # raw deflate, no zlib header
                self._zlib = zlib.decompressobj(_RAW_DEFLATE)
                self._first = False
                return self._inflate(data, room)
            raise StepFailed(
                FailureReason.PROTOCOL, f"expected a {self._encoding} body, got {error}"
            ) from None

    def _inflate(self, data: bytes, room: int) -> list[bytes]:
        assert self._zlib is not None
        pieces = []
        limit = max(room, 0) + 1  # one byte past the room is enough to know it is too large
        while data and limit > 0:
            piece = self._zlib.decompress(data, limit)
            self._first = False
            if not piece:
                break
            pieces.append(piece)
            limit -= len(piece)
            data = self._zlib.unconsumed_tail
        return pieces
