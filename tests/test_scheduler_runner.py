"""The scheduler driving the real runner against a real loopback HTTP server."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from http_servers import SEEN_TRACEPARENTS
from prometheus_client import CollectorRegistry
from test_scheduler import capturing_logger, ids_near_zero_phase

from agent.language.model import Journey
from agent.run.context import RunEnvironment
from agent.run.results import FailureReason, Outcome, RunIds, RunResult
from agent.run.runner import run_journey
from agent.schedule.scheduler import Scheduler


def http_journey(journey_id: str, url: str, **schedule: Any) -> Journey:
    return Journey.model_validate(
        {
            "journey": journey_id,
            "business_process": "order-to-cash",
            "schedule": schedule,
            "steps": [{"name": "page", "http": {"get": url}, "expect": {"status": 200}}],
        }
    )


class Collected:
    """The exporter side: keeps results and wakes the test when enough have arrived."""

    def __init__(self) -> None:
        self.results: list[RunResult] = []
        self._changed = asyncio.Event()

    def __call__(self, result: RunResult) -> None:
        self.results.append(result)
        self._changed.set()

    async def until(self, count: int, journey: str) -> list[RunResult]:
        async with asyncio.timeout(20):
            while len(mine := [r for r in self.results if r.journey == journey]) < count:
                self._changed.clear()
                await self._changed.wait()
        return mine


def scheduler(run_env: RunEnvironment, collected: Collected, **options: Any) -> Scheduler:
    defaults: dict[str, Any] = {
        "run": lambda journey, ids: run_journey(journey, run_env, ids),
        "export": collected,
        "registry": CollectorRegistry(),
        "logger": capturing_logger(),
    }
    return Scheduler(**(defaults | options))


async def test_real_runs_repeat_and_failures_speed_up(shop: str, run_env: RunEnvironment) -> None:
    """Real runs repeat on schedule; a failing journey is measured, classified and re-run."""
    collected = Collected()
    good, bad = ids_near_zero_phase(2)
    agent = scheduler(run_env, collected)
    agent.update(
        [
            http_journey(good, f"{shop}/status/200", every=0.2, timeout=0.15),
            http_journey(bad, f"{shop}/status/503", every=30, every_when_failing=0.2, timeout=0.15),
        ]
    )
    try:
        ok_runs = await collected.until(3, good)
        failed_runs = await collected.until(3, bad)  # every 30 s unless the failing interval works
    finally:
        await agent.shutdown(5)
    assert all(r.outcome is Outcome.SUCCESS for r in ok_runs)
    assert ok_runs[0].steps[0].value("status_code") == 200
    assert {(r.outcome, r.reason) for r in failed_runs} == {
        (Outcome.FAILURE, FailureReason.HTTP_STATUS)
    }


async def test_shutdown_aborts_a_real_run_beyond_grace(
    shop_server: tuple[str, web.Application], run_env: RunEnvironment
) -> None:
    """A real run stuck on a slow page past the grace period is exported as aborted, under
    the trace id its request carried (so the backend's trace of it can be found)."""
    shop, app = shop_server
    collected = Collected()
    started = asyncio.Event()

    async def run(journey: Journey, ids: RunIds) -> RunResult:
        started.set()
        return await run_journey(journey, run_env, ids)

    (slow,) = ids_near_zero_phase(1)
    agent = scheduler(run_env, collected, run=run)
    agent.update([http_journey(slow, f"{shop}/slow?seconds=30", every=60, timeout=40)])
    await asyncio.wait_for(started.wait(), timeout=20)
    await asyncio.sleep(0.1)  # the request is on its way to the server
    await agent.shutdown(0.1)
    assert [(r.outcome, r.reason) for r in collected.results] == [
        (Outcome.ABORTED, FailureReason.ABORTED)
    ]
    (traceparent,) = app[SEEN_TRACEPARENTS]
    assert traceparent.split("-")[1] == collected.results[0].trace_id
