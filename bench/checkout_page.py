"""The loopback checkout-like page both browser benches drive, and the journey that drives
it: goto, fill the e-mail, click Pay, expect "Thank you". ``/held`` is the same page with
an image that keeps loading until ``Shop.release`` is set, so that N pages stay open
together for as long as the memory bench needs."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

__all__ = ["Shop", "checkout_steps"]

PAGE = """<!doctype html><html lang=en><head><meta charset=utf-8><title>Checkout</title>
<style>body{font:16px sans-serif;margin:2em}form{display:grid;gap:.5em;max-width:20em}
.line{display:flex;justify-content:space-between}</style></head><body>
<h1>Your basket</h1><div class=line><span>Mug</span><span>12.00</span></div>
<div class=line><span>Tea, 250 g</span><span>7.50</span></div>
<form onsubmit="event.preventDefault();
document.getElementById('done').textContent='Thank you, order 42 for '+email.value">
<label>E-mail <input id=email type=email required></label>
<button id=pay>Pay 19.50</button></form><p id=done role=status></p>%s</body></html>"""


def checkout_steps(url: str) -> list[dict[str, Any]]:
    """The browser actions of the checkout journey, as a journey file writes them."""
    return [
        {"goto": url},
        {"fill": {"#email": "alice@example.com"}},
        {"click": "#pay"},
        {"expect_text": {"selector": "#done", "text": "Thank you"}},
    ]


class Shop:
    """The page on 127.0.0.1, port 0; ``held`` counts the /held pages still loading."""

    def __init__(self) -> None:
        self.url = ""
        self.held = 0
        self.release = asyncio.Event()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Shop:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/held", self._held_page)
        app.router.add_get("/slow.png", self._slow)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE % "", content_type="text/html")

    async def _held_page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE % '<img src="/slow.png" alt="">', content_type="text/html")

    async def wait_held(self, count: int) -> None:
        """Until ``count`` /held pages are loading together."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.held >= count)

    async def _slow(self, request: web.Request) -> web.Response:
        async with self._changed:
            self.held += 1
            self._changed.notify_all()
        try:
            await self.release.wait()
        finally:
            self.held -= 1
        return web.Response(body=b"", content_type="image/png")
