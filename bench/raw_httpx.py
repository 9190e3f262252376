"""The raw httpx anchor of ``bench/http_step.py``, in a process of its own so that its CPU
is its own: GETs of ``TARGET/h/<n>`` at ``RATE`` per second, each with a new client (a new
connection, as each agent run and each blackbox_exporter probe opens), sharing one SSL
context as the agent does. Prints ``ready``, then ``<path> <seconds>`` per answered request
(wall time around ``client.get``), until killed.

Run by the bench: ``python -m bench.raw_httpx TARGET RATE``.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time

import httpx

from bench.pacing import pace


async def main(target: str, rate: float) -> None:
    context = ssl.create_default_context()
    print("ready", flush=True)

    async def request(n: int) -> None:
        path = f"/h/{n}"
        started = time.perf_counter()
        async with httpx.AsyncClient(verify=context) as client:
            response = await client.get(target + path)
        seconds = time.perf_counter() - started
        if response.status_code == 200:
            print(path, seconds, flush=True)

    await pace(rate, float("inf"), request)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
