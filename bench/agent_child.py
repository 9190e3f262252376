"""The whole agent as a child process, as deployed: ``journeyman run`` on a folder, its
JSON log read from stderr (a full pipe would stall it), stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Agent", "start_agent"]

JOURNEYMAN = str(Path(sys.executable).parent / "journeyman")


class Agent:
    """A running ``journeyman run``: its pid, its URL, and its log lines as they come."""

    def __init__(
        self, process: asyncio.subprocess.Process, on_event: Callable[[dict[str, Any]], None]
    ):
        self.process = process
        self.pid = process.pid
        self.url = ""
        self._on_event = on_event
        self._started = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            if not line.startswith(b"{"):
                continue
            event = json.loads(line)
            if event.get("event") == "agent_started" and not self._started.done():
                self._started.set_result(str(event["url"]))
            self._on_event(event)
        if not self._started.done():
            self._started.set_exception(RuntimeError("the agent exited before it started"))

    async def started(self) -> str:
        """The agent's URL, once it logged ``agent_started`` (within a minute)."""
        async with asyncio.timeout(60):
            self.url = await self._started
        return self.url

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(30):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await self._reader


async def start_agent(
    folder: Path, *options: str, on_event: Callable[[dict[str, Any]], None] = lambda e: None
) -> Agent:
    """``journeyman run folder --listen 127.0.0.1:0 --log-format json`` plus ``options``."""
    process = await asyncio.create_subprocess_exec(
        JOURNEYMAN, "run", str(folder), "--listen", "127.0.0.1:0", "--log-format", "json",
        *options,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    return Agent(process, on_event)
