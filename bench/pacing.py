"""Open-loop load: start one call every ``1/rate`` seconds, whether or not the earlier ones
finished, as a schedule does (a closed loop would slow down with the thing measured)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["pace"]


async def pace(rate: float, seconds: float, call: Callable[[int], Awaitable[None]]) -> int:
    """Call ``call(0)``, ``call(1)``, ... at ``rate`` per second for ``seconds``; wait for
    the calls still running; return how many were started."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    running: set[asyncio.Task[None]] = set()
    n = 0
    while (due := start + n / rate) < start + seconds:
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(call(n))
        running.add(task)
        task.add_done_callback(running.discard)
        n += 1
    if running:
        await asyncio.gather(*running, return_exceptions=True)
    return n
