"""The status page's routes: the overview, a journey's page, their JSON, and evidence.

- ``/``: every business process, worst first (:mod:`exporters.status_page`).
- ``/journeys/<id>`` (``?run=<run id>`` picks the run shown step by step).
- ``/api/status``: the overview's figures and a ``version`` that changes whenever a run
  finishes or starts; the page's script polls it.
- ``/evidence/<path>``: a file of the artifacts folder (``--artifacts-dir``) and only
  of it: a path that is absolute, climbs with ``..``, or resolves (symlinks followed)
  outside the folder is 404, as is anything that is not a regular file. Screenshots are
  ``image/png``, traces ``application/zip`` (as a download), console logs
  ``text/plain``, a page's HTML ``text/html``; anything else a download of
  ``application/octet-stream``. All with ``nosniff`` and under a ``sandbox`` policy (an
  origin of its own, no script, no request but its own images).

Pages carry a Content-Security-Policy that allows their own inline style and script by
hash and requests to their own origin, nothing else (:func:`page_csp`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from pathlib import Path, PurePosixPath

from agent.serve.http11 import Handler, Request, Response
from exporters.status import StatusBoard
from exporters.status_journey import render_journey
from exporters.status_page import render_missing, render_overview, status_json

__all__ = ["EVIDENCE_TYPES", "Routes", "evidence_file", "page_csp", "status_routes"]

Routes = dict[str, Handler]  # an exact path, or a prefix ending in "/" for what follows it
BASE_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
_INLINE = {
    "style-src": re.compile(r"<style>(.*?)</style>", re.DOTALL),
    "script-src": re.compile(r"<script type=\"module\">(.*?)</script>", re.DOTALL),
}
EVIDENCE_TYPES = {  # suffix: (content type, shown in the browser)
    ".png": ("image/png", True),
    ".jpg": ("image/jpeg", True),
    ".jpeg": ("image/jpeg", True),
    ".log": ("text/plain; charset=utf-8", True),
    ".txt": ("text/plain; charset=utf-8", True),
    ".html": ("text/html; charset=utf-8", True),
    ".zip": ("application/zip", False),
}
# Evidence is shown in a sandbox (an origin of its own, no script, no form, no request);
# the browser's own viewers (images, text) and a page's inline styles may style it.
_EVIDENCE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
_MAX_EVIDENCE = 200 * 1024 * 1024  # bytes: larger files are not served


def status_routes(
    board: StatusBoard, *, location: str = "", evidence: Path | None = None
) -> Routes:
    """The routes of the status page over ``board``; evidence from ``evidence`` (the
    artifacts folder) when given."""
    if location and not board.location:
        board.location = location
    return {
        "/": _overview(board),
        "/journeys/": _journey(board, evidence),
        "/api/status": _api(board),
        "/evidence/": _evidence(evidence),
    }


def page_csp(page: str) -> str:
    """The Content-Security-Policy of an HTML page: nothing but its own inline styles and
    scripts (by their sha256), and for a page with a script, requests to its own origin."""
    policy = BASE_CSP
    for directive, pattern in _INLINE.items():
        hashes = [_sha256(text) for text in pattern.findall(page)]
        if hashes:
            policy += f"; {directive} {' '.join(hashes)}"
    if _INLINE["script-src"].search(page):
        policy += "; connect-src 'self'"
    return policy


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _html(page: str, status: int = 200) -> Response:
    response = Response.text(page, status, content_type="text/html")
    response.headers["Content-Security-Policy"] = page_csp(page)
    response.headers["Cache-Control"] = "no-cache"
    return response


def _overview(board: StatusBoard) -> Handler:
    async def handle(request: Request) -> Response:
        version = board.version
        return _html(render_overview(board.overview(), version))

    return handle


def _journey(board: StatusBoard, evidence: Path | None) -> Handler:
    async def handle(request: Request) -> Response:
        journey = request.path.removeprefix("/journeys/")
        version = board.version
        page = None
        if "/" not in journey:
            page = await board.journey_page(journey, request.query.get("run") or None)
        if page is None:
            return _html(render_missing(board.overview(), version, journey), status=404)
        return _html(render_journey(page, version, evidence))

    return handle


def _api(board: StatusBoard) -> Handler:
    async def handle(request: Request) -> Response:
        body = json.dumps(status_json(board.overview(), board.version)).encode()
        return Response(
            200,
            body,
            {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"},
        )

    return handle


def _evidence(root: Path | None) -> Handler:
    async def handle(request: Request) -> Response:
        path = evidence_file(root, request.path.removeprefix("/evidence/"))
        if path is None:
            return Response.text("no such evidence\n", 404)
        content_type, inline = EVIDENCE_TYPES.get(
            path.suffix.lower(), ("application/octet-stream", False)
        )
        body = await asyncio.to_thread(path.read_bytes)
        response = Response(200, body, {"Content-Type": content_type})
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "private, max-age=300"
        response.headers["Content-Security-Policy"] = _EVIDENCE_CSP
        if not inline:
            response.headers["Content-Disposition"] = f'attachment; filename="{_safe_name(path)}"'
        return response

    return handle


def evidence_file(root: Path | None, tail: str) -> Path | None:
    """The file ``tail`` names inside ``root``, or None when it is not one (absolute,
    ``..``, outside once resolved, not a regular file, too large)."""
    if root is None or not tail or "\x00" in tail or "\\" in tail:
        return None
    relative = PurePosixPath(tail)
    if relative.is_absolute() or any(part in ("..", ".") for part in relative.parts):
        return None
    try:
        base = root.resolve(strict=True)
        target = (base / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    if target.stat().st_size > _MAX_EVIDENCE:
        return None
    return target


def _safe_name(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", path.name)
