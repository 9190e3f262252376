"""Memory of the browser underneath with 1, 4 and 8 concurrent browser runs.

Memory is PSS (proportional set size, from /proc/PID/smaps_rollup) summed over the
Playwright driver and every Chromium process below this one, sampled while N runs each
hold a page that is still loading a 3 s image. Also prints the idle figure (browser
launched, no context). Run: .venv/bin/python -m bench.browser_memory
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from aiohttp import web

from agent.language.model import Journey
from agent.run.browser_pool import BrowserPool, descendant_pids
from agent.run.context import RunEnvironment
from agent.run.runner import run_journey

HOLD = 3.0  # seconds each run's page keeps loading


def pss_mb() -> float:
    """PSS of every process below this one (driver and Chromium), in MB."""
    total = 0
    for pid in descendant_pids(os.getpid()):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total / 1024


async def serve() -> tuple[str, web.AppRunner]:
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        html = '<!doctype html><title>m</title><p id="p">hello</p><img src="/slow">'
        return web.Response(text=html, content_type="text/html")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(HOLD)
        return web.Response(body=b"", content_type="image/png")

    app.router.add_get("/", page)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return f"http://127.0.0.1:{runner.addresses[0][1]}/", runner


async def main() -> None:
    url, server = await serve()
    held = Journey.model_validate(
        {
            "journey": "memory",
            "business_process": "bench",
            "steps": [{"name": "s", "artifacts": "never", "browser": [{"goto": url}]}],
        }
    )
    for concurrent in (1, 4, 8):
        async with BrowserPool(max_contexts=concurrent) as pool:
            env = RunEnvironment(environ={}, browser=pool)
            assert (await run_journey(held, env)).ok  # launched and warm
            await asyncio.sleep(0.5)
            idle = pss_mb()
            runs = [asyncio.create_task(run_journey(held, env)) for _ in range(concurrent)]
            await asyncio.sleep(HOLD * 0.75)
            busy = pss_mb()
            results = await asyncio.gather(*runs)
            assert all(r.ok for r in results), [r.message for r in results]
        per = (busy - idle) / concurrent
        print(
            f"{concurrent} concurrent: idle {idle:6.0f} MB, busy {busy:6.0f} MB PSS, "
            f"+{per:4.0f} MB per run, {busy / idle:.2f}x idle"
        )
    await server.cleanup()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
