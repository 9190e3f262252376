"""Debian's Prometheus, Pushgateway and Alertmanager as real processes on loopback.

Each is started on 127.0.0.1 with its data in the test's tmp_path, waited for until it
says it is ready, and stopped (SIGTERM, then SIGKILL) when the test leaves it. Prometheus
is read through its HTTP API, polling with deadlines: it scrapes and evaluates rules on
its own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml
from binaries import required_binary

__all__ = [
    "Prometheus",
    "alertmanager",
    "daemon",
    "free_port",
    "prometheus",
    "pushgateway",
]

Series = list[tuple[dict[str, str], float]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def daemon(argv: Sequence[str], ready_url: str, within: float = 30.0) -> AsyncIterator[None]:
    """Run ``argv`` until the test is done with it, once ``ready_url`` answers 200."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(ready_url)).status_code == 200:
                        break
                if process.returncode is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{argv[0]} did not get ready (exit {process.returncode})")
                await asyncio.sleep(0.2)
        yield
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


class Prometheus:
    """A Prometheus server on loopback, queried through its HTTP API."""

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url
        self.client = client

    async def series(self, promql: str, at: float | None = None) -> Series:
        """The instant vector of ``promql``: each element's labels and value."""
        params: dict[str, str | float] = {"query": promql}
        if at is not None:
            params["time"] = at
        response = await self.client.get(f"{self.url}/api/v1/query", params=params)
        response.raise_for_status()
        return [(r["metric"], float(r["value"][1])) for r in response.json()["data"]["result"]]

    async def query(self, promql: str, at: float | None = None) -> list[float]:
        return [value for _, value in await self.series(promql, at)]

    async def until(
        self, promql: str, check: Callable[[list[float]], bool], within: float = 60.0
    ) -> list[float]:
        """Query until ``check`` holds (Prometheus evaluates rules on its own clock)."""
        found = await self.series_until(promql, lambda s: check([v for _, v in s]), within)
        return [value for _, value in found]

    async def series_until(
        self, promql: str, check: Callable[[Series], bool], within: float = 60.0
    ) -> Series:
        """Query until ``check`` holds for the labelled result; fail after ``within`` s."""
        deadline = time.monotonic() + within
        while True:
            found = await self.series(promql)
            if check(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql} not as expected within {within}s: {found}")
            await asyncio.sleep(0.5)

    async def alerts(self, alertname: str) -> list[dict[str, str]]:
        """The labels of ``alertname``'s pending and firing alerts (``ALERTS``)."""
        return [labels for labels, _ in await self.series(f'ALERTS{{alertname="{alertname}"}}')]


@contextlib.asynccontextmanager
async def prometheus(
    tmp_path: Path,
    rules: Path,
    targets: str | Sequence[str],
    *,
    alertmanager: str | None = None,
) -> AsyncIterator[Prometheus]:
    """Prometheus scraping ``targets`` (job ``journeyman``) every second, evaluating
    ``rules`` every second, sending alerts to ``alertmanager`` (host:port) if given."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": "journeyman",
                "static_configs": [
                    {"targets": [targets] if isinstance(targets, str) else list(targets)}
                ],
            }
        ],
    }
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{free_port()}"
    argv = [
        required_binary("prometheus"),
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--log.level=warn",
    ]
    async with daemon(argv, f"{url}/-/ready"), httpx.AsyncClient(timeout=5) as client:
        yield Prometheus(url, client)


@contextlib.asynccontextmanager
async def pushgateway(tmp_path: Path) -> AsyncIterator[str]:
    """Debian's Pushgateway on loopback, in memory only; yields its URL."""
    url = f"http://127.0.0.1:{free_port()}"
    argv = [
        required_binary("prometheus-pushgateway"),
        f"--web.listen-address={url.removeprefix('http://')}",
        "--persistence.file=",  # Debian's default persists to /var/lib/prometheus
        "--log.level=warn",
    ]
    async with daemon(argv, f"{url}/-/ready"):
        yield url


@contextlib.asynccontextmanager
async def alertmanager(tmp_path: Path, config: Path) -> AsyncIterator[str]:
    """Debian's Alertmanager on loopback with ``config``, clustering off; yields its URL."""
    url = f"http://127.0.0.1:{free_port()}"
    argv = [
        required_binary("prometheus-alertmanager"),
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'alertmanager-data'}",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    async with daemon(argv, f"{url}/-/ready"):
        yield url
