"""Loopback servers for HTTP tests: a small shop (aiohttp), TLS variants, raw TCP misbehaviour;
and two helpers to write HTTP steps and catch their failures.

Every server binds 127.0.0.1 on port 0 and is closed by its context manager. The shop
has what real journeys meet: a login form with a CSRF token and a session cookie, a JSON
API behind a bearer token, redirects, slow and failing pages. It records the
``traceparent`` of every request it sees in ``app[SEEN_TRACEPARENTS]``.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from agent.run.context import StepContext, StepFailed
from agent.steps.http.model import HttpStep
from agent.steps.http.run import run

__all__ = [
    "PASSWORD",
    "SEEN_TRACEPARENTS",
    "USER",
    "RawHandler",
    "TlsServerFiles",
    "fails",
    "http_step",
    "serve_app",
    "serve_raw",
    "shop_app",
    "tls_server_context",
]

USER, PASSWORD = "alice", "s3cret-pw"
SEEN_TRACEPARENTS = web.AppKey("seen_traceparents", list[str])
_SESSIONS = web.AppKey("sessions", dict[str, str])  # session id -> its CSRF token
_LOGGED_IN = web.AppKey("logged_in", set[str])  # auth cookie values
_TOKENS = web.AppKey("tokens", set[str])  # API bearer tokens

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serve_app(
    app: web.Application, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1; yields its base URL (http or https)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serve_raw(handler: RawHandler) -> AsyncIterator[str]:
    """A TCP server whose every connection runs ``handler``; yields ``http://127.0.0.1:PORT``."""
    tasks: set[asyncio.Task[None]] = set()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the test is over
        finally:
            writer.close()

    server = await asyncio.start_server(connected, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


class TlsServerFiles:
    """A CA (written as a PEM file clients may trust) and what it issues for 127.0.0.1."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.ca_path = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self._directory = directory

    def issued(self, not_before: datetime, not_after: datetime) -> ssl.SSLContext:
        """A server context presenting a certificate valid from ``not_before`` to ``not_after``."""
        cert = self.ca.issue_cert("127.0.0.1", not_before=not_before, not_after=not_after)
        context = tls_server_context()
        cert.configure_cert(context)
        return context

    def self_signed(self) -> ssl.SSLContext:
        """A server context presenting a self-signed certificate (the CA's own)."""
        cert_path, key_path = self._directory / "self.pem", self._directory / "self.key"
        self.ca.cert_pem.write_to_path(str(cert_path))
        self.ca.private_key_pem.write_to_path(str(key_path))
        context = tls_server_context()
        context.load_cert_chain(cert_path, key_path)
        return context


def http_step(**fields: Any) -> HttpStep:
    """An HttpStep named "step" from the fields a journey file would give."""
    return HttpStep.model_validate({"name": "step", **fields})


async def fails(step: HttpStep, ctx: StepContext) -> StepFailed:
    """Run ``step``, which must fail; its StepFailed."""
    with pytest.raises(StepFailed) as caught:
        await run(step, ctx)
    return caught.value


def tls_server_context() -> ssl.SSLContext:
    return ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)


def shop_app() -> web.Application:
    """The test shop: see the module docstring."""
    app = web.Application(middlewares=[_record_traceparent])
    app[SEEN_TRACEPARENTS] = []
    app[_SESSIONS] = {}
    app[_LOGGED_IN] = set()
    app[_TOKENS] = set()
    app.add_routes(
        [
            web.get("/login", _login_form),
            web.post("/login", _login),
            web.get("/account", _account),
            web.post("/api/token", _api_token),
            web.get("/api/orders", _api_orders),
            web.get("/redirect/{hops}", _redirect),
            web.get("/loop", _loop),
            web.get("/slow", _slow),
            web.get("/slow-redirect/{hops}", _slow_redirect),
            web.get("/status/{code}", _status),
            web.get("/html", _html),
            web.route("*", "/echo", _echo),
        ]
    )
    return app


@web.middleware
async def _record_traceparent(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    request.app[SEEN_TRACEPARENTS].append(request.headers.get("traceparent", ""))
    return await handler(request)


async def _login_form(request: web.Request) -> web.Response:
    session = request.cookies.get("sid") or secrets.token_hex(8)
    csrf = secrets.token_hex(12)
    request.app[_SESSIONS][session] = csrf
    page = (
        "<html><body><h1>Sign in</h1><form method=post action=/login>"
        f'<input type="hidden" name="csrf_token" value="{csrf}">'
        '<input name="user"><input name="password" type="password"></form></body></html>'
    )
    response = web.Response(text=page, content_type="text/html")
    response.set_cookie("sid", session, httponly=True)
    return response


async def _login(request: web.Request) -> web.Response:
    form = await request.post()
    expected_csrf = request.app[_SESSIONS].get(request.cookies.get("sid", ""))
    if expected_csrf is None or form.get("csrf_token") != expected_csrf:
        return web.Response(status=403, text="invalid CSRF token")
    if (form.get("user"), form.get("password")) != (USER, PASSWORD):
        return web.Response(status=401, text="wrong password")
    auth = secrets.token_hex(8)
    request.app[_LOGGED_IN].add(auth)
    response = web.Response(status=303, headers={"Location": "/account"})
    response.set_cookie("auth", auth, httponly=True)
    return response


async def _account(request: web.Request) -> web.Response:
    if request.cookies.get("auth") not in request.app[_LOGGED_IN]:
        return web.Response(status=401, text="please sign in")
    return web.Response(text=f"<h1>Welcome {USER}</h1>", content_type="text/html")


async def _api_token(request: web.Request) -> web.Response:
    body = await request.json()
    if (body.get("user"), body.get("password")) != (USER, PASSWORD):
        return web.json_response({"ok": False}, status=401)
    token = secrets.token_hex(16)
    request.app[_TOKENS].add(token)
    return web.json_response({"ok": True, "token": token, "expires_in": 3600})


async def _api_orders(request: web.Request) -> web.Response:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or token not in request.app[_TOKENS]:
        return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
    orders = [{"id": 7, "total": 12.5, "state": "shipped"}]
    return web.json_response({"ok": True, "count": 1, "orders": orders})


async def _redirect(request: web.Request) -> web.Response:
    hops = int(request.match_info["hops"])
    if hops == 0:
        return web.Response(text="arrived")
    raise web.HTTPFound(f"/redirect/{hops - 1}")


async def _loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("seconds", "0.2")))
    return web.Response(text="slept")


async def _slow_redirect(request: web.Request) -> web.Response:
    """Sleeps ``seconds`` on every hop, then redirects until ``hops`` reaches 0."""
    seconds = request.query.get("seconds", "0.1")
    await asyncio.sleep(float(seconds))
    hops = int(request.match_info["hops"])
    if hops == 0:
        return web.Response(text="arrived slowly")
    raise web.HTTPFound(f"/slow-redirect/{hops - 1}?seconds={seconds}")


async def _status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.Response(status=code, text=f"this is a {code} page")


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html><p>not JSON at all</p></html>", content_type="text/html")


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "method": request.method,
            "query": dict(request.query),
            "headers": dict(request.headers),
            "body": await request.text(),
        }
    )
