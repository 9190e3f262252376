"""The agent's HTTP endpoint (aiohttp, one port): /metrics, /healthz, /readyz, status page.

- ``/metrics``: the Prometheus text format, or OpenMetrics when the scraper's Accept
  header asks for ``application/openmetrics-text``.
- ``/healthz``: 200 while the event loop answers (a liveness probe).
- ``/readyz``: 200 while ``ready()`` says so, else 503 and why (the agent passes a
  :class:`Readiness`: ``starting`` until journeys are loaded and scheduled and the
  exporters started, ``shutting down`` from the moment a stop begins).
- ``/``: the status page of :mod:`exporters.status`.

The entry point builds the exporter and the board and passes them in;
:func:`start_server` returns a :class:`RunningServer` with its bound URL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from aiohttp import web

from exporters.prometheus import CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_TEXT
from exporters.status import StatusBoard, render_page

__all__ = [
    "DEFAULT_PORT",
    "MetricsSource",
    "Readiness",
    "RunningServer",
    "parse_listen",
    "start_server",
]

DEFAULT_PORT = 9464
_Handler = Callable[[web.Request], Awaitable[web.Response]]


class MetricsSource(Protocol):
    def render(self, openmetrics: bool = False) -> bytes:
        """The exposition text of every metric the agent serves."""


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
    _runner: web.AppRunner

    async def close(self) -> None:
        await self._runner.cleanup()


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
) -> RunningServer:
    """Serve the endpoints on ``listen`` (port 0 picks a free port) until ``close()``.

    ``ready()`` is True when the agent is ready, else False or the reason it is not.
    """
    host, port = parse_listen(listen)
    app = web.Application()
    app.router.add_get("/metrics", _metrics_handler(metrics))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz_handler(ready))
    app.router.add_get("/", _status_handler(board, location))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return RunningServer(f"http://{shown}:{bound_port}", runner)


def _metrics_handler(metrics: MetricsSource) -> _Handler:
    async def handle(request: web.Request) -> web.Response:
        openmetrics = "application/openmetrics-text" in request.headers.get("Accept", "")
        response = web.Response(body=metrics.render(openmetrics))
        response.headers["Content-Type"] = (
            CONTENT_TYPE_OPENMETRICS if openmetrics else CONTENT_TYPE_TEXT
        )
        return response

    return handle


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def _readyz_handler(ready: Callable[[], bool | str]) -> _Handler:
    async def handle(request: web.Request) -> web.Response:
        state = ready()
        if state is True:
            return web.Response(text="ready\n")
        return web.Response(status=503, text=f"not ready{f': {state}' if state else ''}\n")

    return handle


def _status_handler(board: StatusBoard, location: str) -> _Handler:
    async def handle(request: web.Request) -> web.Response:
        page = render_page(board.processes(), location)
        return web.Response(text=page, content_type="text/html")

    return handle
