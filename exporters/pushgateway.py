"""Pushgateway exporter: the metrics of a ``run --once``, one group per journey.

For cron jobs and CI pipelines, which are gone before Prometheus could scrape them. Each
journey is pushed as its own group, ``/metrics/job/<job>/journey/<id>/location/<location>``,
with PUT: a push replaces everything its group held (the series of a step since removed
go with it) and leaves other journeys and locations alone. The text pushed is what the
agent's /metrics shows for that journey after that run: the agent's own
:class:`~exporters.prometheus.PrometheusExporter`, on a registry of its own.

A push that fails (refused, timed out, answered with an error) is recorded, never
raised, so the other journeys are still pushed; :meth:`PushgatewayExporter.failures`
says which journeys did not reach the gateway, and why.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Sequence

import httpx
from prometheus_client import CollectorRegistry

from agent.language.model import Journey
from agent.run.results import RunResult
from exporters.base import NoLifecycle
from exporters.prometheus import CONTENT_TYPE_TEXT, PrometheusExporter

__all__ = ["PushgatewayExporter", "group_path"]

_PLAIN = re.compile(r"[A-Za-z0-9_.~-]+")  # a grouping value that needs no encoding
_NOT_PUSHED = "not pushed: the exporters' close ran out of time"


def group_path(job: str, journey: str, location: str) -> str:
    """The grouping key as a URL path; values a path cannot hold plainly are base64url."""
    parts = []
    for name, value in (("job", job), ("journey", journey), ("location", location)):
        if _PLAIN.fullmatch(value):
            parts.append(f"{name}/{value}")
        else:
            encoded = base64.urlsafe_b64encode(value.encode()).decode() or "="
            parts.append(f"{name}@base64/{encoded}")
    return "/metrics/" + "/".join(parts)


class PushgatewayExporter(NoLifecycle):
    """Keeps each journey's last result; pushes them all when closed."""

    def __init__(
        self,
        url: str,
        location: str,
        journeys: Sequence[Journey],
        *,
        job: str = "journeyman",
        timeout: float = 5.0,
        concurrency: int = 4,
    ) -> None:
        self.url = url.rstrip("/")
        self._location = location
        self._journeys = {journey.journey: journey for journey in journeys}
        self._job = job
        self._timeout = timeout
        self._concurrency = concurrency
        self._results: dict[str, RunResult] = {}
        self._errors: dict[str, str] = {}
        self._pushed: set[str] = set()

    def export(self, result: RunResult) -> None:
        if result.journey in self._journeys:
            self._results[result.journey] = result

    async def close(self) -> None:
        """Push every journey that has a result, a few at a time, each under a deadline."""
        limit = asyncio.Semaphore(self._concurrency)
        async with httpx.AsyncClient(timeout=self._timeout) as client:

            async def push(journey: str) -> None:
                async with limit:
                    await self._push(client, journey)

            await asyncio.gather(*(push(journey) for journey in sorted(self._results)))

    def failures(self) -> dict[str, str]:
        """Journeys with a result that the gateway did not take, and why."""
        return {
            journey: self._errors.get(journey, _NOT_PUSHED)
            for journey in sorted(self._results)
            if journey not in self._pushed
        }

    def metrics(self, journey: str) -> bytes:
        """The exposition text pushed for ``journey``: its series after its last run."""
        exporter = PrometheusExporter(CollectorRegistry(), self._location)
        exporter.set_inventory([self._journeys[journey]], None)
        exporter.export(self._results[journey])
        return exporter.render()

    async def _push(self, client: httpx.AsyncClient, journey: str) -> None:
        url = self.url + group_path(self._job, journey, self._location)
        try:
            async with asyncio.timeout(self._timeout):
                response = await client.put(
                    url, content=self.metrics(journey), headers={"Content-Type": CONTENT_TYPE_TEXT}
                )
        except TimeoutError:
            self._errors[journey] = f"no answer within {self._timeout:g} s"
            return
        except httpx.HTTPError as error:
            self._errors[journey] = f"{type(error).__name__}: {error}"
            return
        if response.is_success:
            self._pushed.add(journey)
        else:
            answer = " ".join(response.text.split())[:200]
            self._errors[journey] = f"HTTP {response.status_code}: {answer}"
