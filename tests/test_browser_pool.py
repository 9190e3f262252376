"""The browser underneath: found in order, launched lean, survives a killed Chromium, and
leaks neither contexts nor file descriptors over many runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest
from browser_support import Site, environment, journey, pool, require_chromium, site

from agent.run.browser_pool import (
    LEAN_DISABLED_FEATURES,
    BrowserPool,
)
from agent.run.results import FailureReason
from agent.run.runner import run_journey

pytestmark = pytest.mark.asyncio(loop_scope="module")
__all__ = ["pool", "site"]  # fixtures, imported for pytest


def _parent(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:  # the process ended meanwhile
        return []


async def test_launch_merges_lean_features_into_playwrights_list(pool: BrowserPool) -> None:
    """Chromium runs with one --disable-features flag holding Playwright's list and ours."""
    async with pool.context():
        assert pool.pid is not None
        args = _cmdline(pool.pid)
    flags = [a for a in args if a.startswith("--disable-features=")]
    assert len(flags) == 1
    features = flags[0].split("=", 1)[1].split(",")
    assert set(LEAN_DISABLED_FEATURES) <= set(features)
    assert "HttpsUpgrades" in features  # one of Playwright's own
    assert "--disable-quic" in args
    assert ("--no-sandbox" in args) == (os.geteuid() == 0)


async def test_killed_chromium_fails_the_run_and_the_next_run_passes(site: Site) -> None:
    """Chromium killed mid-step: that run fails with browser_crash, the agent carries on,
    the browser is relaunched and the next run passes."""
    require_chromium()
    waiting = journey('- {name: s, browser: [{goto: "${base}/"}, {click: "#never"}]}')
    passing = journey('- {name: s, browser: [{goto: "${base}/"}, {expect_visible: "#welcome"}]}')
    async with BrowserPool() as own:
        env = environment(site, own)
        assert (await run_journey(passing, env)).ok
        running = asyncio.create_task(run_journey(waiting, env))
        await asyncio.sleep(1.0)  # the step is waiting for #never
        assert own.pid is not None
        os.kill(own.pid, signal.SIGKILL)
        crashed = await running
        assert crashed.reason is FailureReason.BROWSER_CRASH, crashed.message
        after = await run_journey(passing, env)
        assert after.ok, after.message
        assert own.launches == 2
        assert own.open_contexts == 0


async def test_a_dead_playwright_driver_is_restarted_for_the_next_run(site: Site) -> None:
    """Playwright's node driver killed: the run in flight fails, never the agent, and the
    next run gets a new driver and browser and passes."""
    require_chromium()
    passing = journey('- {name: s, browser: [{goto: "${base}/"}, {expect_visible: "#welcome"}]}')
    async with BrowserPool() as own:
        env = environment(site, own)
        assert (await run_journey(passing, env)).ok
        assert own.pid is not None
        driver = _parent(own.pid)  # this pool's node driver launched its Chromium
        assert "run-driver" in _cmdline(driver)
        os.kill(driver, signal.SIGKILL)
        await asyncio.sleep(0.5)
        first = await run_journey(passing, env)
        if not first.ok:  # the run that met the dead driver is a measured failure
            assert first.reason in {FailureReason.BROWSER_CRASH, FailureReason.BROWSER_UNAVAILABLE}
        after = await run_journey(passing, env)
        assert after.ok, after.message
        assert own.open_contexts == 0


async def test_hung_chromium_is_replaced_before_the_step_clock(site: Site) -> None:
    """A stopped (hung) Chromium: opening a context gives up after its own deadline, the
    browser is killed and relaunched, and the run is measured on the fresh one: the hang
    is the agent's time, never the step's."""
    require_chromium()
    passing = journey('- {name: s, browser: [{goto: "${base}/"}, {expect_visible: "#welcome"}]}')
    async with BrowserPool(close_timeout=0.5, open_timeout=1.0) as own:
        env = environment(site, own)
        assert (await run_journey(passing, env)).ok
        assert own.pid is not None
        hung = own.pid
        os.kill(hung, signal.SIGSTOP)
        try:
            stuck = await run_journey(
                journey('- {name: s, browser: [{goto: "${base}/"}]}', step_timeout="2s"), env
            )
        finally:
            with contextlib.suppress(ProcessLookupError):  # the pool killed it already
                os.kill(hung, signal.SIGKILL)
        assert stuck.ok, stuck.message  # the hung browser was replaced before the clock
        assert stuck.steps[0].duration < 2
        after = await run_journey(passing, env)
        assert after.ok, after.message
        assert own.pid != hung


async def test_two_hundred_runs_leak_no_contexts_or_descriptors(
    pool: BrowserPool, site: Site
) -> None:
    """200 consecutive runs leave the same number of open contexts and file descriptors."""
    tiny = journey(
        '- {name: s, artifacts: never, browser: [{goto: "${base}/tiny"}, {expect_visible: "#p"}]}'
    )
    env = environment(site, pool)
    for _ in range(10):  # warm up: caches, the driver's first allocations
        assert (await run_journey(tiny, env)).ok
    descriptors = len(os.listdir("/proc/self/fd"))
    for _ in range(200):
        result = await run_journey(tiny, env)
        assert result.ok, result.message
    assert pool.open_contexts == 0
    assert len(os.listdir("/proc/self/fd")) <= descriptors + 2
