"""Timing one HTTP exchange on the wire, not by when the event loop got around to it.

Each phase starts when the agent acts (a trace event, stamped as httpcore's coroutine
runs: a send is made right then) and ends when the bytes that finish it arrived, as the
kernel stamped them (:mod:`agent.run.wire`). So the time a busy loop takes to
resume a run after its bytes arrived is never counted, nor is the gap between phases
(a connection made, then the loop's turn to send). The phases:

- ``connect``: the TCP handshake's round trip, as the kernel measured it (name
  resolution is not part of it: it is the agent asking its own resolver)
- ``tls``: the TLS handshake (https, new connections only), to its last server flight
- ``send``: request headers and body written
- ``wait``: time to first byte, from request sent to the response headers' arrival
- ``receive``: the body, from the headers' arrival to its last bytes' (up to the cap)

The hop's duration is their sum. A reused connection has no connect or TLS phase.
Redirect hops each get a timer; the step adds them up. Times are unix time, the
kernel's stamps' clock.
"""

from __future__ import annotations

from typing import Any

from agent.run.tls import certificate_expiry
from agent.run.wire import WireClock

__all__ = ["PHASES", "HopTimer"]

PHASES = ("connect", "tls", "send", "wait", "receive")

# phase -> (the event that starts it, the event that ends it); connect is the kernel's
_SPANS = {
    "tls": ("connection.start_tls.started", "connection.start_tls.complete"),
    "send": ("http11.send_request_headers.started", "http11.send_request_body.complete"),
    "wait": ("http11.send_request_body.complete", "http11.receive_response_headers.complete"),
    "receive": ("http11.receive_response_headers.complete", "body.end"),
}
# events that mean bytes arrived: stamped with the arrival, not with the loop's turn
_ARRIVALS = frozenset(("connection.start_tls.complete", "http11.receive_response_headers.complete"))


class HopTimer(WireClock):
    """The trace events and wire times of one request (one hop of a redirect chain); the
    wire's listener while it is sent."""

    def __init__(self) -> None:
        super().__init__(_SPANS)
        self.cert_expiry: float | None = None  # when this hop made a TLS handshake

    async def trace(self, event_name: str, info: dict[str, Any]) -> None:
        """The callback for httpx's ``trace`` request extension."""
        if event_name in _ARRIVALS:
            self.mark_arrival(event_name)
        else:
            self.mark(event_name)
        if event_name == "connection.connect_tcp.complete":
            self.connect = info["return_value"].connect_seconds
        elif event_name == "connection.start_tls.complete":
            ssl_object = info["return_value"].get_extra_info("ssl_object")
            if ssl_object is not None:
                self.cert_expiry = certificate_expiry(ssl_object)

    def body_done(self) -> None:
        """Mark the end of the body: read in full, or cut off at the size cap."""
        self.mark_arrival("body.end")

    def total(self) -> float | None:
        """The sum of the phases; None when no response arrived."""
        if "http11.receive_response_headers.complete" not in self.marks:
            return None
        if "body.end" not in self.marks:
            return None
        return sum(self.phases().values())
