"""Runs `journeyman run` as a real process for tests, and reads its /metrics and logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from binaries import required_binary
from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "AgentProcess",
    "Samples",
    "promtool_check_metrics",
    "running_agent",
    "value",
    "wait_for",
]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class AgentProcess:
    """A started agent: its URL, its log events so far, and how to scrape it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.url = ""
        self.events: list[dict[str, Any]] = []
        self.stderr = ""  # everything the process wrote to stderr (its JSON log lines)
        self._reader = asyncio.create_task(self._read())
        self._listening = asyncio.Event()

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            self.stderr += line
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                self.events.append(event)
                if event.get("event") == "agent_started":
                    self.url = event["url"]
                    self._listening.set()

    async def started(self, within: float = 20.0) -> None:
        async with asyncio.timeout(within):
            await self._listening.wait()

    async def metrics_text(self) -> str:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{self.url}/metrics")
        response.raise_for_status()
        return response.text

    async def samples(self) -> Samples:
        text = await self.metrics_text()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    async def stop(self, within: float = 20.0) -> int:
        """SIGTERM, then the exit status (killed if it does not exit in time)."""
        if self.process.returncode is None:
            self.process.terminate()
        try:
            async with asyncio.timeout(within):
                code = await self.process.wait()
        except TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        await self._reader
        return code


@contextlib.asynccontextmanager
async def running_agent(
    paths: Sequence[Path], *args: str, environ: dict[str, str] | None = None
) -> AsyncIterator[AgentProcess]:
    """`journeyman run PATHS --listen 127.0.0.1:0 ARGS`, stopped on exit."""
    argv = ["run", *map(str, paths), "--listen", "127.0.0.1:0", "--log-level", "info", *args]
    async with spawned_agent(argv, environ=environ) as agent:
        yield agent


@contextlib.asynccontextmanager
async def spawned_agent(
    argv: Sequence[str], *, environ: dict[str, str] | None = None
) -> AsyncIterator[AgentProcess]:
    """`journeyman ARGV` (as `python -m agent`), stopped on exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        *argv,
        env={**os.environ, **(environ or {})},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    agent = AgentProcess(process)
    try:
        await agent.started()
        yield agent
    finally:
        await agent.stop()


async def wait_for(
    agent: AgentProcess, check: Callable[[Samples], bool], within: float = 20.0
) -> Samples:
    """Scrape until ``check`` holds (polling: the agent runs on its own schedule)."""
    deadline = time.monotonic() + within
    while True:
        samples = await agent.samples()
        if check(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not reached within {within}s; agent log:\n{agent.stderr[-3000:]}"
            )
        await asyncio.sleep(0.2)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample whose labels include ``labels`` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def promtool_check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` on ``text``; fails in CI (skips elsewhere) without promtool."""
    return subprocess.run(
        [required_binary("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
