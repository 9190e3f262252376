"""CPU per HTTP step: a one-step journey through the runner vs raw httpx, same request.

The server runs in a child process so that only the client's CPU is counted. Both
sides open a new connection per request (a journey run has its own client; raw httpx
gets a new client per request, sharing one SSL context as the agent does); a reused
keep-alive client is printed for reference. Batches alternate so both sides see the
same machine. Run: ``PYTHONPATH=. .venv/bin/python bench/http_step.py [requests]``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection

import httpx
from aiohttp import web

from agent.language.model import Journey
from agent.run.context import RunEnvironment
from agent.run.runner import run_journey

BATCH = 50


def serve(port_out: Connection) -> None:
    """The child process: a loopback server answering a small page."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Welcome to the shop</body></html>")

    async def forever() -> None:
        app = web.Application()
        app.router.add_get("/", page)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port_out.send(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(forever())


async def cpu_per_call(call: Callable[[], Awaitable[None]], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        await call()
    return (time.process_time() - started) / count


async def bench(url: str, requests: int) -> None:
    env = RunEnvironment(environ={})
    journey = Journey.model_validate(
        {
            "journey": "bench",
            "business_process": "bench",
            "steps": [
                {"name": "home", "http": {"get": url}, "expect": {"body_contains": "Welcome"}}
            ],
        }
    )
    ssl_context = env.tls.get(True)
    keep_alive = httpx.AsyncClient()

    async def journeyman() -> None:
        result = await run_journey(journey, env)
        assert result.ok, result.message

    async def raw_new_client() -> None:
        async with httpx.AsyncClient(verify=ssl_context) as client:
            response = await client.get(url)
            assert "Welcome" in response.text

    async def raw_reused_client() -> None:
        response = await keep_alive.get(url)
        assert "Welcome" in response.text

    sides = {"journeyman": journeyman, "httpx": raw_new_client, "keepalive": raw_reused_client}
    figures: dict[str, list[float]] = {name: [] for name in sides}
    for call in sides.values():  # warm up imports, caches, the SSL context
        await cpu_per_call(call, 10)
    for _ in range(max(1, requests // BATCH)):
        for name, call in sides.items():
            figures[name].append(await cpu_per_call(call, BATCH))
    await keep_alive.aclose()

    median = {name: statistics.median(values) * 1e3 for name, values in figures.items()}
    rows = [
        ("journeyman run (runner + http step, new connection)", median["journeyman"]),
        ("raw httpx, new client per request (shared SSL context)", median["httpx"]),
        ("raw httpx, one keep-alive client (reference)", median["keepalive"]),
    ]
    print(f"CPU per HTTP step, ms (median of {len(figures['httpx'])} batches of {BATCH}):")
    for label, value in rows:
        print(f"  {label:<58} {value:.3f}")
    print(f"  {'ratio journeyman / raw httpx (new client)':<58} {rows[0][1] / rows[1][1]:.2f}")


def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=serve, args=(send,), daemon=True)
    server.start()
    try:
        port = receive.recv()
        asyncio.run(bench(f"http://127.0.0.1:{port}/", requests))
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
