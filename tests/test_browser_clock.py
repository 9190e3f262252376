"""Honest browser clocks (issue 8): waiting for a browser slot is the agent's time, never
the step's; and a step cut by the journey's deadline keeps its own message and evidence.

Runs go through the app's own ``run_environment`` (the pool of ``--max-browsers``, its
``journeyman_browser_wait_seconds`` histogram) against a loopback page that takes
~400 ms, and are compared with a raw Playwright timer on the same browser.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from browser_support import require_chromium
from http_servers import serve_app
from prometheus_client import CollectorRegistry

from agent.app import Settings, run_environment
from agent.language.model import Journey
from agent.run.browser_pool import BrowserPool
from agent.run.results import FailureReason, Outcome
from agent.run.runner import run_journey

pytestmark = pytest.mark.browser

PAGE_DELAY = 0.4  # seconds the slow page takes to answer
RUNS = 3  # concurrent runs on one browser slot
TOLERANCE = 0.15  # seconds; queueing behind one run of this page would add >= PAGE_DELAY
WAIT = "journeyman_browser_wait_seconds"


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(PAGE_DELAY)
    return web.Response(text="<title>Slow</title><p id=done>done</p>", content_type="text/html")


async def _hang(request: web.Request) -> web.Response:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


@pytest.fixture
async def pages() -> AsyncIterator[str]:
    """A slow page (``/slow``, ~400 ms) and one that never answers (``/hang``), on loopback."""
    app = web.Application()
    app.router.add_get("/slow", _slow)
    app.router.add_get("/hang", _hang)
    async with serve_app(app) as base:
        yield base


def _journey(journey_id: str, steps: list[dict[str, object]], **schedule: object) -> Journey:
    return Journey.model_validate(
        {
            "journey": journey_id,
            "business_process": "testing",
            "schedule": {"every": "1m", **schedule},
            "variables": {"base": "${env.BASE}"},
            "steps": steps,
        }
    )


async def _raw_goto(pool: BrowserPool, url: str) -> float:
    """Seconds a bare Playwright ``goto`` of ``url`` takes in a fresh context of the pool's
    Chromium (same binary, same launch flags), timing only the action."""
    async with pool.context() as context:
        page = await context.new_page()
        began = time.perf_counter()
        await page.goto(url, wait_until="load")
        return time.perf_counter() - began


def _wait_histogram(registry: CollectorRegistry) -> tuple[float, float]:
    """(count, sum) of the browser wait histogram."""
    count = registry.get_sample_value(f"{WAIT}_count")
    total = registry.get_sample_value(f"{WAIT}_sum")
    assert count is not None
    assert total is not None
    return count, total


async def test_queueing_for_a_browser_is_not_counted_in_the_step(pages: str) -> None:
    """Three runs sharing one browser slot each report the page's own time (within 150 ms
    of a raw Playwright timer), not growing with their place in the queue; the wait
    histogram counts the three waits and holds the queueing."""
    require_chromium()
    url = f"{pages}/slow"
    registry = CollectorRegistry()
    settings = Settings(paths=(), max_browsers=1)
    slow = _journey(
        "slow-page",
        [{"name": "open", "artifacts": "never", "browser": [{"goto": "${base}/slow"}]}],
        timeout="20s",
        step_timeout="2s",  # less than the queue of the third run: its clock must not run
    )
    async with run_environment(settings, {"BASE": pages}, registry) as env:
        assert env.browser is not None
        raw = statistics.median([await _raw_goto(env.browser, url) for _ in range(5)])
        count_before, sum_before = _wait_histogram(registry)
        results = await asyncio.gather(*(run_journey(slow, env) for _ in range(RUNS)))
        count, total = _wait_histogram(registry)
    assert all(result.outcome is Outcome.SUCCESS for result in results), results
    by_start = sorted(results, key=lambda result: result.steps[0].started_at)
    reported = [result.steps[0].duration for result in by_start]
    print(f"raw median {raw:.3f}s, reported {[round(d, 3) for d in reported]}")
    print(f"waits: {count - count_before:g} observed, {total - sum_before:.3f}s in all")
    assert raw >= PAGE_DELAY
    for duration in reported:
        assert abs(duration - raw) < TOLERANCE, (reported, raw)
    assert max(reported) - min(reported) < TOLERANCE, reported
    assert reported[-1] - reported[0] < TOLERANCE, reported  # the last in the queue
    assert count - count_before == RUNS
    # The 2nd run waited for the 1st's page, the 3rd for both.
    assert total - sum_before >= PAGE_DELAY * (1 + 2) * 0.9
    for result in by_start:  # the run's duration leaves the wait out too
        assert result.duration < raw + 1.0, result.duration


async def test_a_browser_step_cut_by_the_journey_keeps_its_message_and_evidence(
    pages: str, tmp_path: Path
) -> None:
    """A browser step cut by the journey's deadline (its own timeout is longer than what
    the journey has left) fails with Playwright's own "not done within" message, before
    the deadline, with its screenshot written."""
    require_chromium()
    settings = Settings(paths=(), max_browsers=1, artifacts_dir=tmp_path)
    cut = _journey(
        "cut-by-journey",
        [
            {"name": "warm up", "browser": [{"goto": "${base}/slow"}]},
            {"name": "hangs", "timeout": "6s", "browser": [{"goto": "${base}/hang"}]},
        ],
        timeout="6s",  # Playwright gives up ~1 s early, leaving that for the evidence
    )
    async with run_environment(settings, {"BASE": pages}) as env:
        assert env.browser is not None
        async with env.browser.context():  # launched now, not inside the 6 s under test
            pass
        result = await run_journey(cut, env)
    assert [step.ok for step in result.steps] == [True, False], result.message
    assert result.reason is FailureReason.TIMEOUT
    assert result.failed_step == "hangs"
    assert result.message.startswith(f"goto '{pages}/hang': not done within "), result.message
    assert "journey timeout" not in result.message
    hung = result.steps[1]
    files = {Path(path).name for path in hung.artifacts}
    assert "hangs.screenshot.png" in files, hung.artifacts
    for path in map(Path, hung.artifacts):
        assert path.is_file(), path
        assert path.is_relative_to(tmp_path), path
    screenshot = next(p for p in map(Path, hung.artifacts) if p.name.endswith(".png"))
    assert screenshot.read_bytes().startswith(b"\x89PNG")
