"""An httpx request as the bytes of an HTTP/1.1 request, checked as h11 checks it.

The method, target, header names and values must be what HTTP allows (a line break in
a value would start another header); one Host, sent first; a Content-Length that
agrees with the body, or ``Transfer-Encoding: chunked`` and the body in chunks. A
fault is :class:`httpx.LocalProtocolError`, with h11's words, before any byte is sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import httpx

from agent.steps.http.fields import (
    FIELD_VALUE,
    FIELD_VALUE_PATTERN,
    TOKEN,
    TOKEN_PATTERN,
    normalize,
)

__all__ = ["Written", "request_bytes"]

_TARGET = re.compile(rb"[\x21-\x7e]+")
_FIELD_LINES = re.compile(rb"(?:" + TOKEN_PATTERN + rb": " + FIELD_VALUE_PATTERN + rb"\r\n)*")


class Written(NamedTuple):
    data: bytes
    upgrade: bool  # the request asks to switch protocols: a 101 may answer
    keep_alive: bool  # the request does not say Connection: close


def request_bytes(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: Sequence[bytes]
) -> Written:
    """``method target HTTP/1.1``, ``headers`` (Host first) and the ``body`` chunks framed."""
    if TOKEN.fullmatch(method) is None:
        raise httpx.LocalProtocolError(f"Illegal method characters {method!r}")
    if _TARGET.fullmatch(target) is None:
        raise httpx.LocalProtocolError(f"Illegal target characters {target!r}")
    try:
        fields = normalize(headers)
    except httpx.RemoteProtocolError as error:
        raise httpx.LocalProtocolError(str(error)) from None
    hosts = fields.names.count(b"host")
    if hosts != 1:
        raise httpx.LocalProtocolError(
            "Missing mandatory Host: header" if hosts == 0 else "Found multiple Host: headers"
        )
    host = fields.names.index(b"host")
    lines = [b"%s: %s\r\n" % fields[host]]
    lines += (b"%s: %s\r\n" % field for i, field in enumerate(fields) if i != host)
    block = b"".join(lines)
    # one match for all (the usual case), each line one header: none smuggled in a name
    if _FIELD_LINES.fullmatch(block) is None or block.count(b"\n") != len(lines):
        _refuse_fields(headers)
    lines.insert(0, b"%s %s HTTP/1.1\r\n" % (method, target))
    lines.append(b"\r\n")
    if fields.chunked:
        for chunk in body:
            if chunk:
                lines += (b"%x\r\n" % len(chunk), chunk, b"\r\n")
        lines.append(b"0\r\n\r\n")
    else:
        size = sum(map(len, body))
        expected = fields.length or 0
        if size != expected:
            raise httpx.LocalProtocolError(
                f"Too {'much' if size > expected else 'little'} data for declared Content-Length"
            )
        lines += body
    return Written(
        b"".join(lines),
        upgrade=bool(fields.values_of(b"upgrade")),
        keep_alive=b"close" not in fields.values_of(b"connection"),
    )


def _refuse_fields(headers: list[tuple[bytes, bytes]]) -> None:
    """The error for the first header that cannot be sent."""
    for name, value in headers:
        if TOKEN.fullmatch(name) is None:
            raise httpx.LocalProtocolError(f"Illegal header name {name!r}")
        if FIELD_VALUE.fullmatch(value) is None:
            raise httpx.LocalProtocolError(f"Illegal header value {value!r}")
    raise AssertionError("a header line that did not match has a bad name or value")
