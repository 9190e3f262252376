"""Timing one HTTP exchange on the wire, not by when the event loop got around to it.

Each phase starts when the agent acts (stamped as the transport does it: a send is made
right then) and ends when the bytes that finish it arrived, as the kernel stamped them
(:mod:`agent.run.wire`). So the time a busy loop takes to resume a run after its bytes
arrived is never counted, nor is the gap between phases (a connection made, then the
loop's turn to send). The phases:

- ``connect``: the TCP handshake's round trip, as the kernel measured it (name
  resolution is not part of it: it is the agent asking its own resolver)
- ``tls``: the TLS handshake (https, new connections only), to its last server flight
- ``send``: request headers and body written
- ``wait``: time to first byte, from request sent to the response headers' arrival
- ``receive``: the body, from the headers' arrival to its last bytes' (up to the cap)

The hop's duration is their sum. A reused connection has no connect or TLS phase.
Redirect hops each get a timer; the step adds them up. Times are unix time, the
kernel's stamps' clock. The transport (:mod:`agent.steps.http.transport`) marks them.
"""

from __future__ import annotations

from agent.run.wire import WireClock

__all__ = ["PHASES", "HopTimer"]

PHASES = ("connect", "tls", "send", "wait", "receive")

# phase -> (the mark that starts it, the mark that ends it); connect is the kernel's
_SPANS = {
    "tls": ("tls.start", "tls.end"),
    "send": ("request.start", "request.sent"),
    "wait": ("request.sent", "response.head"),
    "receive": ("response.head", "body.end"),
}


class HopTimer(WireClock):
    """The marks and wire times of one request (one hop of a redirect chain); the wire's
    listener while it is sent."""

    def __init__(self) -> None:
        super().__init__(_SPANS)
        self.cert_expiry: float | None = None  # when this hop made a TLS handshake

    def body_done(self) -> None:
        """Mark the end of the body: read in full, or cut off at the size cap."""
        self.mark_arrival("body.end")

    def total(self) -> float | None:
        """The sum of the phases; None when no response arrived."""
        if "response.head" not in self.marks or "body.end" not in self.marks:
            return None
        return sum(self.phases().values())
