"""The agent's HTTP endpoint (one port, :mod:`agent.serve.http11`): /metrics, /healthz,
/readyz, the status page.

- ``/metrics``: the Prometheus text format, or OpenMetrics when the scraper's Accept
  header asks for ``application/openmetrics-text``.
- ``/healthz``: 200 while the event loop answers (a liveness probe).
- ``/readyz``: 200 while ``ready()`` says so, else 503 and why (the agent passes a
  :class:`Readiness`: ``starting`` until journeys are loaded and scheduled and the
  exporters started, ``shutting down`` from the moment a stop begins). A line
  ``history: ...`` follows when the run history is unavailable (still 200: history is
  not readiness), and always with ``?verbose``.
- ``/``, ``/journeys/<id>``, ``/api/status``, ``/evidence/<path>``: the status page
  (:mod:`agent.serve.status_routes`).

Every request, on every path (future ones too), passes one gate, and every response gets
one set of headers:

- With a :class:`~agent.serve.web_config.WebAccess` (``--web.config.file``), TLS as it
  says, and basic auth on everything but the probes (open unless ``protect_probes``:
  kubelets send no credentials). A missing or wrong credential is 401 with
  ``WWW-Authenticate: Basic realm="journeyman"``; unknown paths too, so that they
  reveal nothing.
- Methods other than GET and HEAD are 405; unknown paths 404.
- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``, a
  Content-Security-Policy (``default-src 'none'``; the status page adds the hashes of its
  inline style and script, and requests to its own origin), the web config's
  ``http_server_config.headers``, and no ``Server`` banner.

``/metrics`` is gzipped when the scraper accepts it (:mod:`agent.serve.gzipped`: ISA-L's
deflate at level 1, a 14 MB exposition in ~6 ms of CPU, 30x smaller), in a thread when
large. A source that gives its exposition in two parts (:class:`SplitMetricsSource`:
the large journey part, already rendered and changing only with a new result, and the
rest, written in a worker thread) has the journey part deflated once per generation and
kept; each scrape then deflates only the rest into the same gzip stream. Uncompressed,
the journey part goes out as its parts, in batches (:func:`agent.serve.http11.batches`).
The entry point builds the exporter, the board and the access and passes them in;
:func:`start_server` returns a :class:`RunningServer` with its bound URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar, runtime_checkable

from agent.serve.gzipped import Deflated, deflate, gzip
from agent.serve.http11 import METHODS, Handler, HttpServer, Request, Response, serve
from agent.serve.status_routes import Routes, page_csp, status_routes
from exporters.prometheus import CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_TEXT
from exporters.status import StatusBoard

if TYPE_CHECKING:
    from agent.serve.web_config import WebAccess  # only with --web.config.file

__all__ = [
    "DEFAULT_PORT",
    "PROBES",
    "MetricsSource",
    "Readiness",
    "RunningServer",
    "SplitMetricsSource",
    "accepts_gzip",
    "page_csp",
    "parse_listen",
    "start_server",
]

DEFAULT_PORT = 9464
PROBES = frozenset({"/healthz", "/readyz"})
_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
_GZIP_INLINE = 256 * 1024  # gzip smaller bodies on the loop (~0.1 ms at most); larger in a thread
_T = TypeVar("_T")


class MetricsSource(Protocol):
    def render(self, openmetrics: bool = False) -> bytes:
        """The exposition text of every metric the agent serves."""


@runtime_checkable
class SplitMetricsSource(MetricsSource, Protocol):
    """The same text in two parts: the journey part, itself in parts, then the rest."""

    def journey_parts(self, openmetrics: bool = False) -> tuple[int, Sequence[bytes]]:
        """The large part's generation and pieces (same generation, same bytes); on the
        loop, and quick."""

    def other_text(self, openmetrics: bool = False) -> bytes:
        """The rest, written when called; safe to call in a worker thread."""


class Readiness:
    """Where the agent is in its life, for ``/readyz``: starting, ready, shutting down.

    Calling it answers True when ready, else why not. Once shutting down it never becomes
    ready again, so a load balancer stops sending before the agent goes.
    """

    def __init__(self) -> None:
        self._state: Literal["starting", "ready", "shutting down"] = "starting"

    def set_ready(self) -> None:
        """The first load is scheduled and the exporters started (no effect once stopping)."""
        if self._state == "starting":
            self._state = "ready"

    def set_shutting_down(self) -> None:
        self._state = "shutting down"

    def __call__(self) -> bool | str:
        return True if self._state == "ready" else self._state


@dataclass
class RunningServer:
    """A started server: where it listens, and how to stop it."""

    url: str  # e.g. http://127.0.0.1:9464
    _server: HttpServer

    async def close(self) -> None:
        await self._server.close()


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464`` for IPv6; ``:9464`` means every address) -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address must be host:port such as 0.0.0.0:9464, got {listen!r}")
    return host.removeprefix("[").removesuffix("]") or "0.0.0.0", int(port)


async def start_server(
    listen: str,
    *,
    metrics: MetricsSource,
    board: StatusBoard,
    ready: Callable[[], bool | str],
    location: str = "",
    access: WebAccess | None = None,
    evidence: Path | None = None,
) -> RunningServer:
    """Serve the endpoints on ``listen`` (port 0 picks a free port) until ``close()``.

    ``ready()`` is True when the agent is ready, else False or the reason it is not.
    ``access`` (from ``--web.config.file``) brings TLS, basic auth and extra headers.
    ``evidence`` is the artifacts folder the status page links run evidence from.
    """
    host, port = parse_listen(listen)
    routes: Routes = {
        "/metrics": _metrics_handler(metrics),
        "/healthz": _healthz,
        "/readyz": _readyz_handler(ready, board),
        **status_routes(board, location=location, evidence=evidence),
    }
    tls = access.ssl_context if access else None
    finish = partial(_with_headers, access=access)
    server = await serve(_endpoint(routes, access), host, port, tls=tls, finish=finish)
    bound_host, bound_port = server.address
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    scheme = "https" if tls else "http"
    return RunningServer(f"{scheme}://{shown}:{bound_port}", server)


def _endpoint(routes: Routes, access: WebAccess | None) -> Handler:
    """Every request: the gate, then the route."""

    async def handle(request: Request) -> Response:
        refused = await _refused(access, request) if access is not None else None
        if refused is not None:
            return refused
        if request.method not in METHODS:
            response = Response.text("405: Method Not Allowed\n", 405)
            response.headers["Allow"] = ", ".join(METHODS)
            return response
        route = _route(routes, request.path)
        return await route(request) if route else Response.text("404: Not Found\n", 404)

    return handle


def _route(routes: Routes, path: str) -> Handler | None:
    """The handler of an exact path, else of its first segment's prefix (``/journeys/``)."""
    if path in routes:
        return routes[path]
    prefix = path[: path.find("/", 1) + 1]
    return routes.get(prefix) if prefix and path != prefix else None


async def _refused(access: WebAccess, request: Request) -> Response | None:
    """The answer to a request the web config does not let through, else None."""
    access.refresh()
    if request.path in PROBES and not access.protect_probes:
        return None
    if not access.client_certificate_ok(request.peercert):
        return Response.text("a verified client certificate is required\n", 403)
    if not await access.authorized(request.headers.get("authorization")):
        response = Response.text("unauthorized\n", 401)
        response.headers["WWW-Authenticate"] = 'Basic realm="journeyman"'
        return response
    return None


def _with_headers(response: Response, *, access: WebAccess | None) -> Response:
    """The headers of every response, refusals too: safe defaults, then the web config's."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Content-Security-Policy", _CSP)
    if access is not None:
        headers.update(access.config.headers)
    return response


def _metrics_handler(metrics: MetricsSource) -> Handler:
    heads = _GzipHeads()

    async def handle(request: Request) -> Response:
        openmetrics = "application/openmetrics-text" in request.headers.get("accept", "")
        response_type = CONTENT_TYPE_OPENMETRICS if openmetrics else CONTENT_TYPE_TEXT
        headers = {"Content-Type": response_type, "Vary": "Accept-Encoding"}
        gzipped = accepts_gzip(request.headers.get("accept-encoding", ""))
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        body: bytes | tuple[bytes, ...]
        if isinstance(metrics, SplitMetricsSource):
            generation, journeys = metrics.journey_parts(openmetrics)
            rest = await asyncio.to_thread(metrics.other_text, openmetrics)
            if gzipped:
                body = await heads.gzip(generation, journeys, rest, openmetrics)
            else:
                body = (*journeys, rest)
        else:
            text = metrics.render(openmetrics)
            compress = partial(_gzip_whole, text)
            body = await _off_loop_if_large(len(text), compress) if gzipped else text
        return Response(200, body, headers)

    return handle


class _GzipHeads:
    """The deflated journey part of each format, kept per generation of the exposition;
    a scrape deflates only the rest after it (see :mod:`agent.serve.gzipped`)."""

    def __init__(self) -> None:
        self._kept: dict[bool, tuple[int, Deflated]] = {}

    async def gzip(
        self, generation: int, journeys: Sequence[bytes], rest: bytes, key: bool
    ) -> tuple[bytes, ...]:
        kept = self._kept.get(key)
        if kept is None or kept[0] != generation:
            head = await _off_loop_if_large(sum(map(len, journeys)), partial(deflate, journeys))
            kept = self._kept[key] = (generation, head)
        return await _off_loop_if_large(len(rest), partial(gzip, kept[1], rest))


def _gzip_whole(text: bytes) -> tuple[bytes, ...]:
    return gzip(deflate((text,)), b"")


async def _off_loop_if_large(size: int, compress: Callable[[], _T]) -> _T:
    """Small inputs on the loop (~0.1 ms at most), larger in a thread (ISA-L releases the
    GIL while it deflates)."""
    return compress() if size <= _GZIP_INLINE else await asyncio.to_thread(compress)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header takes gzip (``gzip``, ``x-gzip`` or ``*``,
    unless at ``q=0``)."""
    for item in accept_encoding.lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if coding not in ("gzip", "x-gzip", "*"):
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


async def _healthz(request: Request) -> Response:
    return Response.text("ok\n")


def _readyz_handler(ready: Callable[[], bool | str], board: StatusBoard) -> Handler:
    """Readiness, then a line per part that does not decide it: the history's, when it is
    unavailable, or always with ``?verbose`` (a history problem never makes it 503)."""

    async def handle(request: Request) -> Response:
        state = ready()
        details = ""
        history = board.history.status if board.history is not None else None
        if history is not None and (not history.available or "verbose" in request.query):
            details = f"history: {history.detail}\n"
        if state is True:
            return Response.text(f"ready\n{details}")
        reason = f": {state}" if state else ""
        return Response.text(f"not ready{reason}\n{details}", 503)

    return handle
