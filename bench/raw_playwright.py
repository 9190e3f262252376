"""The raw Playwright anchor of the browser benches: the same Chromium with the same
launch flags as the agent's ``BrowserPool``, driven by Playwright alone.

``launch_options()`` asks a ``BrowserPool`` for the flags it launches with (its lean
arguments, merged ``--disable-features``, the sandbox setting) and its executable; the
anchor launches with exactly those. ``checkout()`` is the run both browser benches time:
a fresh context and page, goto, fill, click, expect, close.

Run as a process of its own (so that no agent module is in its memory), until killed:

- ``python -m bench.raw_playwright hold OPTIONS_JSON URL N`` (``bench/browser_memory.py``)
  opens N contexts, each with a page loading URL, and prints ``open`` once every ``goto``
  was sent;
- ``python -m bench.raw_playwright pace OPTIONS_JSON URL N EVERY`` (``bench/browser_throughput.py``)
  runs the checkout of URL as N journeys would, each every EVERY seconds (their starts
  spread over the interval), at most 2 at once as the agent's ``--max-browsers``, and
  prints ``run`` after each.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from playwright.async_api import Browser, async_playwright

__all__ = ["checkout", "launch_options"]


async def launch_options() -> dict[str, Any]:
    """``chromium.launch`` keyword arguments equal to the agent's own launch."""
    from agent.run.browser_pool import BrowserPool, find_browser

    async with BrowserPool() as pool, pool.context():  # launched: the features flag learned
        options = pool.launch_options()
        driver = await pool._driver()
        path = find_browser(None, os.environ, driver.chromium.executable_path)
    return {"executable_path": path, "headless": True, **options}


async def checkout(browser: Browser, url: str) -> None:
    """goto, fill, click, expect the confirmation: the steps of ``bench/checkout_page``."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(url)
        await page.locator("#email").fill("alice@example.com")
        await page.locator("#pay").click()
        await page.locator("#done").filter(has_text="Thank you").wait_for()
    finally:
        await context.close()


async def hold(options: dict[str, Any], url: str, count: int) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**options)
        contexts = [await browser.new_context() for _ in range(count)]
        pages = [await context.new_page() for context in contexts]
        loads = [asyncio.ensure_future(page.goto(url, timeout=0)) for page in pages]
        print("open", flush=True)
        await asyncio.gather(*loads)
        await asyncio.Event().wait()


async def pace(options: dict[str, Any], url: str, count: int, every: float) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**options)
        slots = asyncio.Semaphore(2)
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def journey(n: int) -> None:
            due = start + n * every / count
            while True:
                await asyncio.sleep(max(due - loop.time(), 0))
                async with slots:
                    await checkout(browser, url)
                print("run", flush=True)
                due += every

        await asyncio.gather(*(journey(n) for n in range(count)))


if __name__ == "__main__":
    mode, options, url, count, *rest = sys.argv[1:]
    if mode == "hold":
        asyncio.run(hold(json.loads(options), url, int(count)))
    else:
        asyncio.run(pace(json.loads(options), url, int(count), float(rest[0])))
