"""Reading a response body up to a cap, decoding it without ever holding more.

httpx decodes each network chunk whole: one 64 KB chunk of a gzip bomb inflates to
~64 MB before any cap is checked, and a body encoded twice (``Content-Encoding: gzip,
gzip``, a bomb inside a bomb) goes through its decoders unbounded. Here every layer of
``Content-Encoding`` is inflated with a bound (``max_length``) and asked for only as
much as the layer inside it needs, so a hostile target costs at most the cap, plus a
window and one chunk per layer, whatever it sends:

- the cap (the step's ``max_body``) holds for the bytes read off the wire and for what
  each layer inflates to, the body included; past it the step fails as ``too_large``;
- codings: ``gzip`` (``x-gzip``), ``deflate`` (zlib-wrapped, or raw as some servers send
  it), ``identity``; in any order and number. Another coding (``br``, ``zstd``,
  ``compress``...) on a non-empty body, a corrupt or a truncated stream: ``protocol``.

The client advertises exactly these (:data:`ACCEPT_ENCODING`), never httpx's default:
httpx offers ``br`` and ``zstd`` as soon as brotli or zstandard is installed, and
decodes them unbounded.
"""

from __future__ import annotations

import zlib

import httpx

from agent.run.context import StepFailed
from agent.run.results import FailureReason

__all__ = ["ACCEPT_ENCODING", "read_capped", "too_large"]

ACCEPT_ENCODING = "gzip, deflate"
_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}
_RAW_DEFLATE = -zlib.MAX_WBITS
_LAYER_CHUNK = 64 * 1024  # the most one layer hands the layer inside it at a time
_MAX_CODINGS = 3  # one is usual, two a misconfiguration; 20,000 fit in a header


async def read_capped(response: httpx.Response, max_body: int) -> bytes:
    """The decoded body, or StepFailed(too_large) as soon as it would pass ``max_body``."""
    decoder = _Decoder(response.headers.get("content-encoding", ""), max_body)
    chunks: list[bytes] = []
    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    async for raw in stream:  # as the transport hands it over: no re-chunking
        chunks += decoder.feed(raw)
    decoder.finish()
    return b"".join(chunks)


def too_large(max_body: int, got: str) -> StepFailed:
    return StepFailed(
        FailureReason.TOO_LARGE, f"expected a body of at most {max_body} bytes, got {got}"
    )


class _Decoder:
    """Every coding of one body, undone in the reverse of the order they were applied."""

    def __init__(self, content_encoding: str, max_body: int) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c not in ("", "identity")]
        self._refused = _refused(codings)
        self._layers = [] if self._refused else [_Layer(c, max_body) for c in reversed(codings)]
        self._max_body = max_body
        self._wire = 0

    def feed(self, data: bytes) -> list[bytes]:
        """What ``data``, the next bytes off the wire, decodes to."""
        self._wire += len(data)
        if self._wire > self._max_body:
            raise too_large(self._max_body, f"more (stopped reading at {self._wire} bytes)")
        if data and self._refused:  # an empty body has nothing to decode
            raise StepFailed(FailureReason.PROTOCOL, self._refused)
        if not self._layers:
            return [data]
        self._layers[0].push(data)
        pieces = []
        while piece := self._pull(len(self._layers) - 1):
            pieces.append(piece)
        return pieces

    def _pull(self, index: int) -> bytes:
        """The next piece out of layer ``index``, fed from the one outside it as needed."""
        layer = self._layers[index]
        while True:
            piece = layer.take()
            if piece or index == 0 or layer.ended:
                return piece
            upstream = self._pull(index - 1)
            if not upstream:
                return b""
            layer.push(upstream)

    def finish(self) -> None:
        """At the end of the body: a stream cut short is a protocol failure. Once a layer
        has ended, what is left of the layers outside it (a trailer) no longer matters."""
        for layer in reversed(self._layers):
            if layer.ended:
                return
            layer.finish()


def _refused(codings: list[str]) -> str:
    """Why a body with these codings cannot be decoded, or "" when it can."""
    unknown = [c for c in codings if c not in _WBITS]
    if unknown:
        return (
            f"expected a body encoded with {ACCEPT_ENCODING} or identity, "
            f"got Content-Encoding {', '.join(unknown)}"
        )
    if len(codings) > _MAX_CODINGS:
        return f"expected at most {_MAX_CODINGS} content codings, got {len(codings)}"
    return ""


class _Layer:
    """One gzip or deflate coding, inflated a bounded piece at a time."""

    def __init__(self, coding: str, max_body: int) -> None:
        self._coding = coding
        self._zlib = zlib.decompressobj(_WBITS[coding])
        self._pending = b""  # input not inflated yet: held back by the bound
        self._started = False
        self._max_body = max_body
        self._produced = 0

    @property
    def ended(self) -> bool:
        return self._zlib.eof

    def push(self, data: bytes) -> None:
        self._pending = data  # pushed only once the previous input is used up

    def take(self) -> bytes:
        """The next inflated piece, b"" when the input is used up; data after the end of
        the stream is ignored. Inflating one byte past the cap fails as too_large."""
        data, self._pending = self._pending, b""
        if not data or self._zlib.eof:
            return b""
        limit = min(_LAYER_CHUNK, self._max_body + 1 - self._produced)
        try:
            piece = self._inflate(data, limit)
        except zlib.error as error:
            raise self._corrupt(str(error)) from None
        self._started = True
        self._pending = self._zlib.unconsumed_tail
        self._produced += len(piece)
        if self._produced > self._max_body:
            raise too_large(self._max_body, f"more (stopped reading at {self._produced} bytes)")
        return piece

    def _inflate(self, data: bytes, limit: int) -> bytes:
        try:
            return self._zlib.decompress(data, limit)
        except zlib.error:
            if self._coding != "deflate" or self._started:
                raise
            self._zlib = zlib.decompressobj(_RAW_DEFLATE)  # raw deflate, no zlib header
            return self._zlib.decompress(data, limit)

    def finish(self) -> None:
        if self._started and not self._zlib.eof:
            raise self._corrupt("a stream that ends before its end marker")

    def _corrupt(self, detail: str) -> StepFailed:
        return StepFailed(FailureReason.PROTOCOL, f"expected a {self._coding} body, got {detail}")
