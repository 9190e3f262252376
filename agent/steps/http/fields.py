"""Header fields of an HTTP/1.1 message, checked and normalised as h11 does it.

The grammar is h11's (RFC 9110's token and field value, obs-text allowed); the checks
are those that decide how a message is framed: every ``Content-Length`` a number (20
digits at most) and all of them the same, kept once; at most one ``Transfer-Encoding``,
and it exactly ``chunked``. A fault is :class:`httpx.RemoteProtocolError` with h11's
words (the request writer makes it a local one).
"""

from __future__ import annotations

import re

import httpx

__all__ = ["FIELD_VALUE", "FIELD_VALUE_PATTERN", "TOKEN", "TOKEN_PATTERN", "Fields", "normalize"]

TOKEN_PATTERN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
FIELD_VALUE_PATTERN = rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?"
TOKEN = re.compile(TOKEN_PATTERN)
FIELD_VALUE = re.compile(FIELD_VALUE_PATTERN)
_DIGITS = re.compile(rb"[0-9]{1,20}")


class Fields(list[tuple[bytes, bytes]]):
    """(name, value) pairs, names in their case, with what framing needs read off them."""

    names: list[bytes]  # lowercase, in order
    length: int | None  # the Content-Length
    chunked: bool  # Transfer-Encoding: chunked

    def values_of(self, name: bytes) -> list[bytes]:
        """The comma-separated values of every ``name`` field, lowercase (h11's reading)."""
        if name not in self.names:
            return []
        return [
            part.strip()
            for found, (_, value) in zip(self.names, self, strict=True)
            if found == name
            for part in value.lower().split(b",")
            if part.strip()
        ]


def normalize(pairs: list[tuple[bytes, bytes]]) -> Fields:
    """``pairs`` checked as h11 checks them, the Content-Length kept once and stripped, the
    Transfer-Encoding lowercase (names and values are the caller's to check)."""
    fields = Fields()
    fields.names = names = []
    length: bytes | None = None
    chunked = False
    for raw_name, value in pairs:
        name = raw_name.lower()
        if name == b"content-length":
            lengths = {part.strip() for part in value.split(b",")}
            if len(lengths) != 1:
                raise httpx.RemoteProtocolError("conflicting Content-Length headers")
            value = lengths.pop()
            if _DIGITS.fullmatch(value) is None:
                raise httpx.RemoteProtocolError("bad Content-Length")
            if length is not None:
                if length != value:
                    raise httpx.RemoteProtocolError("conflicting Content-Length headers")
                continue
            length = value
        elif name == b"transfer-encoding":
            if chunked:
                raise httpx.RemoteProtocolError("multiple Transfer-Encoding headers")
            value = value.lower()
            if value != b"chunked":
                raise httpx.RemoteProtocolError("Only Transfer-Encoding: chunked is supported")
            chunked = True
        names.append(name)
        fields.append((raw_name, value))
    fields.length = None if length is None else int(length)
    fields.chunked = chunked
    return fields
