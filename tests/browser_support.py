"""Helpers of the browser tests: Chromium or a loud failure in CI, a small loopback site,
and journeys built from YAML text.

The site is a purpose-built aiohttp app on 127.0.0.1 port 0 with the pages the failure
tests need (a page that hangs, one that answers 500, one with a console error, a slow
image for web vitals, a third-party script on ``localhost`` to block).
"""

from __future__ import annotations

import asyncio
import os
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp import web

from agent.language.model import Journey
from agent.run.artifacts import ArtifactStore
from agent.run.browser_pool import BrowserPool, BrowserUnavailable, find_browser
from agent.run.context import RunEnvironment

__all__ = [
    "PASSWORD",
    "TOKEN",
    "Site",
    "environment",
    "journey",
    "pool",
    "require_chromium",
    "site",
    "start_site",
]

PASSWORD = "s3cr3t-Pa55word-planted"
TOKEN = "tok-4f1d2c"
SESSION = "sid-77"


def require_chromium() -> None:
    """Skip when no Chromium is installed, except under CI=true where that is a failure."""
    try:
        find_browser(None, os.environ, None)
    except BrowserUnavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no browser: {error}")
        pytest.skip(str(error))


def journey(
    steps_yaml: str, *, timeout: str = "20s", step_timeout: str = "10s", **fields: Any
) -> Journey:
    """A journey around ``steps_yaml`` (the YAML list under ``steps:``), plus ``fields``."""
    data = fields | {
        "journey": "browser-test",
        "business_process": "testing",
        "schedule": {"every": "1m", "timeout": timeout, "step_timeout": step_timeout},
        "variables": {"base": "${env.BASE}"},
        "secrets": {"password": "${env.PASSWORD}"},
        "steps": yaml.safe_load(steps_yaml),
    }
    return Journey.model_validate(data)


def _png(width: int, height: int) -> bytes:
    """A plain grey PNG, big enough to be the largest contentful paint."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


_IMAGE = _png(400, 300)


def _page(title: str, body: str) -> web.Response:
    html = f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
    return web.Response(text=html, content_type="text/html")


@dataclass
class Site:
    url: str
    port: int
    tracker_hits: int = 0
    uploads: list[str] = field(default_factory=list)


async def start_site() -> tuple[Site, web.AppRunner]:
    """Serve the test site on 127.0.0.1 port 0."""
    site = Site(url="", port=0)
    app = web.Application()

    async def home(request: web.Request) -> web.Response:
        return _page(
            "Test shop", '<h1 id="welcome">Welcome</h1><a id="login" href="/login">Log in</a>'
        )

    async def login_form(request: web.Request) -> web.Response:
        return _page(
            "Log in",
            '<form method="post" action="/login"><input id="user" name="user">'
            '<input id="password" name="password" type="password">'
            '<button id="go" type="submit">Log in</button></form>',
        )

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("password") != PASSWORD:
            return _page("Log in", '<p id="error">Wrong password</p>')
        response = web.HTTPFound("/account")
        response.set_cookie("sid", SESSION, httponly=True)
        raise response

    async def api_login(request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("password") != PASSWORD:
            return web.json_response({"ok": False}, status=401)
        response = web.json_response({"ok": True, "token": TOKEN})
        response.set_cookie("sid", SESSION)
        return response

    async def account(request: web.Request) -> web.Response:
        signed_in = request.cookies.get("sid") == SESSION
        token_ok = request.query.get("token") == TOKEN
        body = '<p id="hello">Hello alice</p>' if signed_in else '<p id="hello">Please log in</p>'
        body += f'<p id="token">{"token ok" if token_ok else "no token"}</p>'
        body += f'<p id="seen">seen={request.cookies.get("seen", "")}</p>'
        body += '<button id="note" onclick="document.cookie=\'seen=1; path=/\'">Note</button>'
        return _page("Account", body)

    async def slow_image_page(request: web.Request) -> web.Response:
        delay = request.query.get("ms", "800")
        return _page(
            "Slow",
            f'<p id="text">Loading a picture</p><img id="pic" src="/img?ms={delay}" '
            'width="400" height="300">',
        )

    async def image(request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.query.get("ms", "0")) / 1000)
        return web.Response(body=_IMAGE, content_type="image/png")

    async def console_error(request: web.Request) -> web.Response:
        return _page("Console", '<p id="p">ok</p><script>console.error("boom happened")</script>')

    async def missing_asset(request: web.Request) -> web.Response:
        return _page("Missing", '<p id="p">ok</p><img src="/nope.png">')

    async def error(request: web.Request) -> web.Response:
        return web.Response(status=500, text="<p>Internal error</p>", content_type="text/html")

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def tracker_page(request: web.Request) -> web.Response:
        script = f"http://localhost:{site.port}/track.js"
        return _page("Tracked", f'<p id="p">ok</p><script src="{script}"></script>')

    async def track(request: web.Request) -> web.Response:
        site.tracker_hits += 1
        return web.Response(text="window.tracked = true;", content_type="text/javascript")

    async def tiny(request: web.Request) -> web.Response:
        return _page("Tiny", '<p id="p">ok</p>')

    async def upload_form(request: web.Request) -> web.Response:
        return _page(
            "Upload",
            '<form method="post" action="/upload" enctype="multipart/form-data">'
            '<input id="file" type="file" name="file"><button id="send">Send</button></form>',
        )

    async def upload(request: web.Request) -> web.Response:
        form = await request.post()
        sent = form["file"]
        assert isinstance(sent, web.FileField)
        site.uploads.append(sent.file.read().decode())
        return _page("Uploaded", f'<p id="done">Got {sent.filename}</p>')

    async def form_page(request: web.Request) -> web.Response:
        return _page(
            "Form",
            '<select id="size"><option value="s">Small</option><option value="l">Large</option>'
            '</select><input id="terms" type="checkbox"><input id="q">'
            '<span id="hover-me" onmouseover="this.textContent=\'hovered\'">hover</span>'
            '<p id="out"></p><ul><li class="item">a</li><li class="item">b</li></ul>'
            '<a id="doc" href="/docs/v2?x=1" data-id="A-17">docs</a>'
            '<div id="ghost" style="display:none">ghost</div>'
            "<script>document.getElementById('q').addEventListener('keydown', e => {"
            "if (e.key === 'Enter') document.getElementById('out').textContent = "
            "'searched ' + e.target.value + ' ' + document.getElementById('size').value + ' ' +"
            " document.getElementById('terms').checked; });</script>",
        )

    async def whoami(request: web.Request) -> web.Response:
        return _page(
            "Who am I",
            '<p id="me"></p><script>document.getElementById("me").textContent = ['
            "navigator.language, Intl.DateTimeFormat().resolvedOptions().timeZone, "
            "screen.width, navigator.userAgent.includes('Android')].join(' ');</script>",
        )

    app.router.add_get("/whoami", whoami)
    app.router.add_get("/", home)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/api/login", api_login)
    app.router.add_get("/account", account)
    app.router.add_get("/slow-image", slow_image_page)
    app.router.add_get("/img", image)
    app.router.add_get("/console-error", console_error)
    app.router.add_get("/missing-asset", missing_asset)
    app.router.add_get("/error", error)
    app.router.add_get("/hang", hang)
    app.router.add_get("/tracker", tracker_page)
    app.router.add_get("/track.js", track)
    app.router.add_get("/tiny", tiny)
    app.router.add_get("/upload", upload_form)
    app.router.add_post("/upload", upload)
    app.router.add_get("/form", form_page)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    site.port = runner.addresses[0][1]
    site.url = f"http://127.0.0.1:{site.port}"
    return site, runner


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool() -> AsyncIterator[BrowserPool]:
    """One warm Chromium for the test module, as the agent keeps one."""
    require_chromium()
    async with BrowserPool(max_contexts=2) as browsers:
        yield browsers


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site() -> AsyncIterator[Site]:
    """The loopback test site, for the test module."""
    served, runner = await start_site()
    yield served
    await runner.cleanup()


def environment(
    site: Site, pool: BrowserPool | None, artifacts: ArtifactStore | None = None
) -> RunEnvironment:
    """What the agent would pass to runs: the site's address and password, the browser."""
    return RunEnvironment(
        environ={"BASE": site.url, "PASSWORD": PASSWORD}, browser=pool, artifacts=artifacts
    )
