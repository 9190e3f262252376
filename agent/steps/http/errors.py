"""httpx's exceptions mapped to failure reasons, at this one boundary.

httpx raises ``ConnectError`` for an unresolvable name, a refused port and a failed
TLS handshake alike; the underlying cause (``socket.gaierror``, ``ConnectionRefusedError``,
``ssl.SSLError``) found in the exception chain tells them apart::

    httpx.TimeoutException                      -> timeout
    httpx.ConnectError  (socket.gaierror)       -> dns
                        (ssl.SSLError)          -> tls
                        (anything else)         -> connect
    httpx.ReadError / WriteError (ssl.SSLError) -> tls, else connect
    httpx.RemoteProtocolError, DecodingError    -> protocol
    httpx.UnsupportedProtocol, InvalidURL       -> config; protocol for a redirect's URL
"""

from __future__ import annotations

import socket
import ssl
from typing import TypeVar

import httpx

from agent.run.context import StepFailed
from agent.run.results import FailureReason

__all__ = ["invalid_url", "transport_failure"]

E = TypeVar("E", bound=BaseException)


def transport_failure(
    error: httpx.HTTPError | httpx.InvalidURL, url: httpx.URL, *, redirected: bool = False
) -> StepFailed:
    """The StepFailed that ``error``, raised while requesting ``url``, stands for;
    ``redirected``: the target gave that URL (a redirect), the journey did not."""
    where = f"{url.host}:{url.port or _default_port(url)}"
    if isinstance(error, httpx.TimeoutException):
        what = type(error).__name__.removesuffix("Timeout").lower() or "request"
        return StepFailed(
            FailureReason.TIMEOUT, f"expected an answer from {where}, got a {what} timeout"
        )
    if isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return invalid_url(str(error), url, redirected=redirected)
    if isinstance(error, httpx.RemoteProtocolError | httpx.DecodingError):
        return StepFailed(
            FailureReason.PROTOCOL, f"expected a valid HTTP response from {where}, got: {error}"
        )
    tls_error = _cause(error, ssl.SSLError)
    if tls_error is not None:
        detail = getattr(tls_error, "verify_message", None) or tls_error.reason or tls_error
        return StepFailed(FailureReason.TLS, f"TLS with {where} failed: {detail}")
    if isinstance(error, httpx.ConnectError) and _cause(error, socket.gaierror) is not None:
        return StepFailed(
            FailureReason.DNS, f"expected {url.host!r} to resolve, got: {_innermost(error)}"
        )
    if isinstance(error, httpx.TransportError):
        return StepFailed(
            FailureReason.CONNECT, f"expected a connection to {where}, got: {_innermost(error)}"
        )
    return StepFailed(FailureReason.PROTOCOL, f"HTTP exchange with {where} failed: {error}")


def invalid_url(detail: str, url: httpx.URL, *, redirected: bool) -> StepFailed:
    """A URL that cannot be requested: the journey's mistake (config), or the target's
    when a redirect led there (protocol)."""
    if redirected:
        return StepFailed(
            FailureReason.PROTOCOL, f"expected a redirect to a URL to request, got {url}: {detail}"
        )
    return StepFailed(FailureReason.CONFIG, f"invalid URL: {detail}")


def _cause(error: BaseException, kind: type[E]) -> E | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _innermost(error: BaseException) -> str:
    seen = error
    while (inner := seen.__cause__ or seen.__context__) is not None:
        seen = inner
    return str(seen) or type(seen).__name__


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80
