"""The planted secrets, a loopback server that echoes them back, and a scanner that looks
for every form a secret can take in the bytes the agent wrote.

The echo answers ``/echo/<format>/<anything>`` for any method with what the request
carried: its raw target, that target percent-decoded, its query decoded as a form, its
``X-*`` and ``Authorization`` headers (a Basic pair decoded too), its raw body and the
fields decoded from it (form or JSON). Formats: ``json`` (escaped once, non-ASCII as ``\\u00e9``),
``nested`` (a JSON string holding that JSON: escaped twice) and ``html`` (a page with
each value HTML-escaped, as ``&#NN;`` entities, in an input's ``value`` and logged to
the console from a script). ``/form`` is a login form, a text and a password field,
posting to the HTML echo. Everything the echo saw is kept in ``app[RECEIVED]``.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import html
import io
import json
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, unquote_plus

from aiohttp import web

__all__ = [
    "HEADER_SECRET",
    "RECEIVED",
    "SECRET",
    "USER",
    "artifact_files",
    "echo_app",
    "forms",
    "leaks",
    "masked_pixels",
    "unpacked",
]

# Characters that change under URL, JSON, HTML and repr escaping, and a distinctive
# alphanumeric start that survives them all (the "fragment" scanned for).
SECRET = "Zk4Qv8 p&+/\"<é>'w"
# Header values are ASCII on the wire: the same characters but the é, for headers and
# bearer tokens.
HEADER_SECRET = "Yx3Wm7 q&+/\"<>'v"
USER = "alice"
RECEIVED = web.AppKey("received", list[dict[str, Any]])


def forms(secret: str, user: str = USER) -> dict[str, bytes]:
    """Every form of ``secret`` to scan for, by name, as UTF-8 bytes."""
    once = json.dumps(secret)[1:-1]
    raw_once = json.dumps(secret, ensure_ascii=False)[1:-1]
    text = {
        "verbatim": secret,
        "fragment": secret[:6],
        "quote": quote(secret, safe=""),
        "quote (path)": quote(secret),
        "quote_plus": quote_plus(secret),
        "lower-case hex": re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(secret)),
        "json": once,
        "json (utf-8)": raw_once,
        "json twice": json.dumps(once)[1:-1],
        "json twice (utf-8)": json.dumps(raw_once, ensure_ascii=False)[1:-1],
        "html.escape": html.escape(secret),
        "&#NN; entities": "".join(f"&#{ord(c)};" for c in secret),
        "repr": repr(secret)[1:-1],
        "base64 user:secret": base64.b64encode(f"{user}:{secret}".encode()).decode(),
        "base64 secret": base64.b64encode(secret.encode()).decode(),
    }
    return {name: value.encode() for name, value in text.items()}


def leaks(where: str, data: bytes, secrets: dict[str, str]) -> list[str]:
    """``where: secret: form`` for every form of every secret found in ``data``."""
    found = []
    for label, secret in secrets.items():
        for name, form in forms(secret).items():
            if form in data:
                at = data.index(form)
                context = data[max(0, at - 40) : at + len(form) + 40]
                found.append(f"{where}: {label}: {name}: ...{context!r}...")
    return found


def unpacked(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """``data`` and, recursively, every member of it that is a zip or a gzip stream."""
    yield name, data
    if data[:2] == b"\x1f\x8b":
        try:
            inflated = gzip.decompress(data)
        except (OSError, EOFError):
            return
        yield from unpacked(f"{name}|gunzip", inflated)
    elif data[:4] == b"PK\x03\x04":
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            return
        with archive:
            for member in archive.infolist():
                yield from unpacked(f"{name}|{member.filename}", archive.read(member))


def artifact_files(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under ``root``, unpacked."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield from unpacked(str(path.relative_to(root)), path.read_bytes())


def masked_pixels(png: bytes) -> int:
    """How many pixels of an 8-bit RGB(A) PNG have Playwright's mask colour (#FF00FF)."""
    chunks: dict[bytes, bytes] = {}
    at = 8
    while at < len(png):
        (size,) = struct.unpack(">I", png[at : at + 4])
        kind = png[at + 4 : at + 8]
        chunks[kind] = chunks.get(kind, b"") + png[at + 8 : at + 8 + size]
        at += 12 + size
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8, depth
    assert color in (2, 6), color
    step = 3 if color == 2 else 4
    stride = width * step
    raw = zlib.decompress(chunks[b"IDAT"])
    previous, count = bytearray(stride), 0
    for row in range(height):
        start = row * (stride + 1)
        line = _unfiltered(
            raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, step
        )
        count += sum(1 for i in range(0, stride, step) if line[i : i + 3] == b"\xff\x00\xff")
        previous = line
    return count


def _unfiltered(kind: int, line: bytearray, previous: bytearray, step: int) -> bytearray:
    """One PNG scanline with its filter (none, sub, up, average, Paeth) undone."""
    for i in range(len(line)):
        left = line[i - step] if i >= step else 0
        up, corner = previous[i], (previous[i - step] if i >= step else 0)
        if kind == 4:
            guess = left + up - corner
            distances = (abs(guess - left), abs(guess - up), abs(guess - corner))
            predicted = (left, up, corner)[distances.index(min(distances))]
        else:
            predicted = (0, left, up, (left + up) // 2)[kind]
        line[i] = (line[i] + predicted) & 0xFF
    return line


_LOGIN_FORM = (
    '<form method="post" action="/echo/html/form">'
    '<input id="user" name="user" type="text">'
    '<input id="password" name="password" type="password">'
    '<button id="go" type="submit">Log in</button></form>'
)


def echo_app() -> web.Application:
    """The echo server's app (see the module docstring)."""
    app = web.Application()
    app[RECEIVED] = []

    async def echo(request: web.Request) -> web.Response:
        seen = await _seen(request)
        app[RECEIVED].append(seen)
        kind = request.match_info["format"]
        if kind == "json":
            return web.json_response(seen)
        if kind == "nested":
            return web.json_response({"echo": json.dumps(seen)})
        return _page("Echo", _echo_html(seen))

    async def login_form(request: web.Request) -> web.Response:
        return _page("Log in", _LOGIN_FORM)

    app.router.add_route("*", "/echo/{format:json|nested|html}/{tail:.*}", echo)
    app.router.add_get("/form", login_form)
    return app


async def _seen(request: web.Request) -> dict[str, Any]:
    """What the request carried, in the order a failure message shows it first."""
    headers = {
        name.lower(): value
        for name, value in request.headers.items()
        if name.lower().startswith("x-") or name.lower() == "authorization"
    }
    seen: dict[str, Any] = {"target": request.raw_path, "decoded": unquote(request.raw_path)}
    if request.query_string:
        seen["query"] = unquote_plus(request.query_string)
    if headers:
        seen["headers"] = headers
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme == "Basic":
        try:
            seen["basic"] = base64.b64decode(credentials).decode()
        except (binascii.Error, UnicodeDecodeError):
            seen["basic"] = "undecodable"
    body = await request.text()
    if body:
        seen["body"] = body
        if request.content_type == "application/x-www-form-urlencoded":
            seen["fields"] = dict(parse_qsl(body, keep_blank_values=True))
        elif request.content_type == "application/json":
            seen["fields"] = json.loads(body)
    return seen


def _values(seen: Any) -> Iterator[str]:
    if isinstance(seen, dict):
        for value in seen.values():
            yield from _values(value)
    elif isinstance(seen, list):
        for value in seen:
            yield from _values(value)
    else:
        yield str(seen)


def _echo_html(seen: dict[str, Any]) -> str:
    values = list(_values(seen))
    shown = "".join(f"<p>{html.escape(value)}</p>" for value in values)
    entities = "".join(f"&#{ord(c)};" for c in values[-1])
    script = json.dumps(values).replace("<", "\\u003c")
    return (
        f'{shown}<p id="entities">{entities}</p>'
        f'<input id="echoed" value="{html.escape(values[-1])}">'
        f"<script>console.log({script})</script>"
    )


def _page(title: str, body: str) -> web.Response:
    page = f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
    return web.Response(text=page, content_type="text/html")
