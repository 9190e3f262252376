"""The raw client anchors of ``bench/http_step.py``, each in a process of its own so that
its CPU is its own: GETs of ``TARGET/<client>/<n>`` at ``RATE`` per second, each on a new
connection (as each agent run and each blackbox_exporter probe opens one), timed with
``perf_counter`` around the request and the read of the body. Prints ``ready``, then
``<path> <seconds>`` per answered request, until killed.

- ``httpx``: a new ``AsyncClient`` per request, sharing one SSL context as the agent does;
- ``aiohttp``: one ``ClientSession`` whose connector keeps no connection alive
  (``force_close``), with a ``TraceConfig`` (the timing source an aiohttp-based step
  would use): the candidate leaner stack the issue asks to measure before choosing.

Run by the bench: ``python -m bench.raw_client httpx|aiohttp TARGET RATE``.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import httpx

from bench.pacing import pace


def _report(path: str, started: float, status: int) -> None:
    if status == 200:
        print(path, time.perf_counter() - started, flush=True)


async def with_httpx(target: str, rate: float) -> None:
    context = ssl.create_default_context()

    async def request(n: int) -> None:
        path = f"/httpx/{n}"
        started = time.perf_counter()
        async with httpx.AsyncClient(verify=context) as client:
            response = await client.get(target + path)
        _report(path, started, response.status_code)

    await pace(rate, float("inf"), request)


async def with_aiohttp(target: str, rate: float) -> None:
    trace = aiohttp.TraceConfig()  # hooked, as a step timing from its events would be
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:

        async def request(n: int) -> None:
            path = f"/aiohttp/{n}"
            started = time.perf_counter()
            async with session.get(target + path) as response:
                await response.read()
            _report(path, started, response.status)

        await pace(rate, float("inf"), request)


CLIENTS: dict[str, Callable[[str, float], Coroutine[Any, Any, None]]] = {
    "httpx": with_httpx,
    "aiohttp": with_aiohttp,
}

if __name__ == "__main__":
    print("ready", flush=True)
    asyncio.run(CLIENTS[sys.argv[1]](sys.argv[2], float(sys.argv[3])))
