"""The request a redirect asks for, made as httpx's client makes it.

The step follows redirects hop by hop, to time and egress-check each one, so it builds
each next request itself, with httpx's rules (``AsyncClient._build_redirect_request``,
httpx 0.28): 303, and 302 but for HEAD, become GET, and so does a POST answered 301;
a relative or host-less ``Location`` is resolved against the request's URL, whose
fragment it keeps; leaving the origin drops ``Authorization`` (but for a plain upgrade
of the same host from http:80 to https:443) and sets ``Host``; a switch to GET drops
the body and its headers. ``Cookie`` is taken from the run's jar, never carried over.
"""

from __future__ import annotations

import httpx

__all__ = ["redirect_request"]

_REDIRECTS = frozenset((301, 302, 303, 307, 308))
_DEFAULT_PORTS = {"http": 80, "https": 443}


def redirect_request(request: httpx.Request, response: httpx.Response) -> httpx.Request | None:
    """The request ``response`` redirects ``request`` to; None when it is no redirect
    (not a 3xx that says where to). An unreadable ``Location`` is a RemoteProtocolError."""
    if response.status_code not in _REDIRECTS or "location" not in response.headers:
        return None
    method = _method(request.method, response.status_code)
    url = _url(request, response.headers["location"])
    headers = httpx.Headers(request.headers)
    if not _same_origin(url, request.url):
        if not _is_https_upgrade(request.url, url):
            headers.pop("Authorization", None)
        headers["Host"] = url.netloc.decode("ascii")
    to_get = method != request.method and method == "GET"
    if to_get:
        headers.pop("Content-Length", None)
        headers.pop("Transfer-Encoding", None)
    headers.pop("Cookie", None)
    return httpx.Request(
        method,
        url,
        headers=headers,
        stream=None if to_get else request.stream,
        extensions=request.extensions,
    )


def _method(method: str, status: int) -> str:
    if status in (302, 303) and method != "HEAD":
        return "GET"
    if status == 301 and method == "POST":
        return "GET"
    return method


def _url(request: httpx.Request, location: str) -> httpx.URL:
    try:
        url = httpx.URL(location)
    except httpx.InvalidURL as error:
        raise httpx.RemoteProtocolError(
            f"Invalid URL in location header: {error}.", request=request
        ) from None
    if url.scheme and not url.host:  # "absolute" without a host (httpx issue 771)
        url = url.copy_with(host=request.url.host)
    if url.is_relative_url:
        url = request.url.join(url)
    if request.url.fragment and not url.fragment:
        url = url.copy_with(fragment=request.url.fragment)
    return url


def _port(url: httpx.URL) -> int | None:
    return url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme)


def _same_origin(url: httpx.URL, other: httpx.URL) -> bool:
    return url.scheme == other.scheme and url.host == other.host and _port(url) == _port(other)


def _is_https_upgrade(url: httpx.URL, location: httpx.URL) -> bool:
    return (
        url.host == location.host
        and url.scheme == "http"
        and _port(url) == 80
        and location.scheme == "https"
        and _port(location) == 443
    )
