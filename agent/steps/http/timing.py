"""Timing one HTTP exchange from httpcore's trace events, not from wall time around an await.

Under concurrency, wall time around ``await client.send()`` includes waiting for the
event loop; the trace events are stamped as httpcore does the work, so they stay close
to what the network did. Events come in ``.started``/``.complete`` pairs; the phases:

- ``connect``: TCP connect, name resolution included (there is no DNS event)
- ``tls``: the TLS handshake (https, new connections only)
- ``send``: request headers and body written
- ``wait``: time to first byte, from request sent to response headers received
- ``receive``: the body read (up to the size cap)

A reused connection has no connect or TLS phase. Redirect hops each get a timer; the
step adds them up.
"""

from __future__ import annotations

import time
from typing import Any

from agent.run.tls import certificate_expiry

__all__ = ["PHASES", "HopTimer"]

PHASES = ("connect", "tls", "send", "wait", "receive")

# phase -> (event that starts it, event that ends it)
_SPANS = {
    "connect": ("connection.connect_tcp.started", "connection.connect_tcp.complete"),
    "tls": ("connection.start_tls.started", "connection.start_tls.complete"),
    "send": ("http11.send_request_headers.started", "http11.send_request_body.complete"),
    "wait": ("http11.send_request_body.complete", "http11.receive_response_headers.complete"),
    "receive": ("http11.receive_response_body.started", "body.end"),
}
_HEADERS_RECEIVED = "http11.receive_response_headers.complete"


class HopTimer:
    """Collects the trace events of one request (one hop of a redirect chain)."""

    def __init__(self) -> None:
        self._marks: dict[str, float] = {}
        self.cert_expiry: float | None = None  # when this hop made a TLS handshake

    async def trace(self, event_name: str, info: dict[str, Any]) -> None:
        """The callback for httpx's ``trace`` request extension."""
        self._marks.setdefault(event_name, time.perf_counter())
        if event_name == "connection.start_tls.complete":
            ssl_object = info["return_value"].get_extra_info("ssl_object")
            if ssl_object is not None:
                self.cert_expiry = certificate_expiry(ssl_object)

    def body_done(self) -> None:
        """Mark the end of the body: read in full, or cut off at the size cap."""
        complete = self._marks.get("http11.receive_response_body.complete")
        self._marks.setdefault("body.end", complete or time.perf_counter())

    def phases(self) -> dict[str, float]:
        """Seconds per phase, for the phases this hop went through."""
        found = {}
        for phase, (start, end) in _SPANS.items():
            if start in self._marks and end in self._marks:
                found[phase] = max(0.0, self._marks[end] - self._marks[start])
        return found

    def total(self) -> float | None:
        """First event to end of body; None when no response arrived."""
        if _HEADERS_RECEIVED not in self._marks or "body.end" not in self._marks:
            return None
        return self._marks["body.end"] - min(self._marks.values())
