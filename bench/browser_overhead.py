"""Per-run cost of a browser journey against the same steps written directly in Playwright.

Both drive one warm Chromium on a tiny loopback page: open a context and page, goto,
fill, click, expect text, close. Prints wall time per run (median of N) for: raw
Playwright, Journeyman with artifacts off, Journeyman with trace-on-failure armed, and
the ratios to raw measured in the same process. Run: .venv/bin/python -m bench.browser_overhead
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web
from playwright.async_api import BrowserContext

from agent.language.model import Journey
from agent.run.artifacts import ArtifactStore
from agent.run.browser_pool import BrowserPool
from agent.run.context import RunEnvironment
from agent.run.runner import run_journey

RUNS = 40
PAGE = (
    "<!doctype html><title>t</title><input id=q><button id=go "
    "onclick=\"document.getElementById('out').textContent='done '+q.value\">Go</button>"
    "<p id=out></p>"
)


async def serve() -> tuple[str, web.AppRunner]:
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return f"http://127.0.0.1:{runner.addresses[0][1]}/", runner


async def raw(pool: BrowserPool, url: str) -> None:
    context: BrowserContext
    async with pool.context() as context:
        page = await context.new_page()
        await page.goto(url)
        await page.locator("#q").fill("tea")
        await page.locator("#go").click()
        await page.locator("#out").filter(has_text="done tea").wait_for()


def journey(url: str, artifacts: str) -> Journey:
    return Journey.model_validate(
        {
            "journey": "bench",
            "business_process": "bench",
            "steps": [
                {
                    "name": "s",
                    "artifacts": artifacts,
                    "browser": [
                        {"goto": url},
                        {"fill": {"#q": "tea"}},
                        {"click": "#go"},
                        {"expect_text": {"selector": "#out", "text": "done tea"}},
                    ],
                }
            ],
        }
    )


async def timed(make: object, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await make()  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def main() -> None:
    url, server = await serve()
    store = ArtifactStore(Path(tempfile.mkdtemp()))
    async with BrowserPool() as pool:
        plain = RunEnvironment(environ={}, browser=pool)
        armed = RunEnvironment(environ={}, browser=pool, artifacts=store)
        off, on = journey(url, "never"), journey(url, "on_failure")

        async def ours_off() -> None:
            assert (await run_journey(off, plain)).ok

        async def ours_armed() -> None:
            assert (await run_journey(on, armed)).ok

        await timed(lambda: raw(pool, url), 5)  # warm up
        await timed(ours_off, 5)
        base = await timed(lambda: raw(pool, url), RUNS)
        ours = await timed(ours_off, RUNS)
        traced = await timed(ours_armed, RUNS)
    await server.cleanup()
    print(f"runs per variant: {RUNS} (median wall time per run)")
    print(f"raw Playwright:                     {base * 1000:7.1f} ms  1.00x")
    print(f"Journeyman, artifacts never:        {ours * 1000:7.1f} ms  {ours / base:.2f}x")
    print(f"Journeyman, trace armed on failure: {traced * 1000:7.1f} ms  {traced / base:.2f}x")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
