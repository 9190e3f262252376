"""The browser underneath: found in order, launched lean, survives a killed Chromium, and
leaks neither contexts nor file descriptors over many runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from pathlib import Path

import pytest
from browser_support import Site, environment, journey, pool, require_chromium, site

from agent.run.artifacts import ArtifactStore
from agent.run.browser_pool import (
    LEAN_ARGS,
    LEAN_DISABLED_FEATURES,
    BrowserPool,
    descendant_pids,
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
    assert set(LEAN_ARGS) <= set(args)  # --optimization-guide-performance-class=1 among them
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
        await own.settled()  # the runs' contexts close after their results
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
        await own.settled()
        assert own.open_contexts == 0


async def test_a_driver_that_cannot_start_fails_the_run_as_browser_unavailable(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Playwright's node driver dying at start (as without libatomic1 in a minimal image)
    fails the run as browser_unavailable, saying the driver would not start: not internal."""
    node = tmp_path / "node"  # exits as node does when a shared library is missing
    node.write_text(
        "#!/bin/sh\necho 'node: error while loading shared libraries: libatomic.so.1: "
        "cannot open shared object file' >&2\nexit 127\n"
    )
    node.chmod(0o755)
    monkeypatch.setenv("PLAYWRIGHT_NODEJS_PATH", str(node))  # Playwright's driver lookup
    passing = journey('- {name: s, browser: [{goto: "${base}/"}]}')
    async with BrowserPool() as own:
        result = await run_journey(passing, environment(site, own))
    assert result.reason is FailureReason.BROWSER_UNAVAILABLE, result.message
    assert "Playwright's driver would not start" in result.message
    assert own.launches == 0


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


async def test_many_runs_leak_no_contexts_processes_or_descriptors(
    pool: BrowserPool, site: Site, tmp_path: Path
) -> None:
    """200 consecutive runs, then 60 more two at a time (passing, failing with evidence,
    a navigation that never answers): the open contexts, the file descriptors and the
    Chromium processes (renderers of closed contexts, spare renderers, utilities) all
    return to their baseline once the runs are done."""
    tiny = journey(
        '- {name: s, artifacts: never, browser: [{goto: "${base}/tiny"}, {expect_visible: "#p"}]}'
    )
    failing = journey('- {name: s, browser: [{goto: "${base}/tiny"}, {expect_visible: "#no"}]}',
                      timeout="1s", step_timeout="1s")  # fmt: skip
    hanging = journey('- {name: s, browser: [{goto: "${base}/hang"}]}',
                      timeout="1s", step_timeout="1s")  # fmt: skip
    env = environment(site, pool)
    with_evidence = environment(site, pool, ArtifactStore(tmp_path))
    for _ in range(10):  # warm up: caches, the driver's first allocations
        assert (await run_journey(tiny, env)).ok
    assert not (await run_journey(failing, with_evidence)).ok
    descriptors = len(os.listdir("/proc/self/fd"))
    processes = await _settled(pool, None)
    for _ in range(200):
        result = await run_journey(tiny, env)
        assert result.ok, result.message
    for _ in range(20):
        results = await asyncio.gather(
            run_journey(tiny, env),
            run_journey(failing, with_evidence),
            run_journey(hanging, with_evidence),
        )
        assert [r.ok for r in results] == [True, False, False], [r.message for r in results]
    await pool.settled()
    assert pool.open_contexts == 0
    assert len(os.listdir("/proc/self/fd")) <= descriptors + 2
    after = await _settled(pool, sum(processes.values()))
    assert sum(after.values()) <= sum(processes.values()), (processes, after)


async def test_contexts_close_after_the_result_within_the_pool_limit(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's context is closed after its result, by the pool: it holds its slot until
    closed, so with max_contexts=1 no context opens while another is open or closing; the
    pool's close waits for the closes still running, and leaves no context open."""
    require_chromium()
    passing = journey('- {name: s, browser: [{goto: "${base}/"}, {expect_visible: "#welcome"}]}')
    async with BrowserPool(max_contexts=1) as own:
        open_before: list[int] = []
        new_context = own._new_context

        async def counted(options: dict[str, object]) -> object:
            open_before.append(own.open_contexts)
            return await new_context(options)

        monkeypatch.setattr(own, "_new_context", counted)
        env = environment(site, own)
        results = await asyncio.gather(*(run_journey(passing, env) for _ in range(4)))
        assert all(r.ok for r in results), [r.message for r in results]
        assert await run_journey(passing, env)  # its close still running as the pool closes
    assert open_before == [0] * 5
    assert own.open_contexts == 0


def _chromium(pool: BrowserPool) -> Counter[str]:
    """The pool's Chromium processes (its main and every one below it), by ``--type``."""
    assert pool.pid is not None
    kinds: Counter[str] = Counter()
    for pid in [pool.pid, *descendant_pids(pool.pid)]:
        args = " ".join(_cmdline(pid)).split(" ")  # children rewrite theirs into one line
        kind = next((a.split("=", 1)[1] for a in args if a.startswith("--type=")), "browser")
        service = next((a for a in args if a.startswith("--utility-sub-type=")), "")
        kinds[f"{kind} {service.split('=')[-1]}".strip()] += 1
    return kinds


async def _settled(pool: BrowserPool, at_most: int | None) -> Counter[str]:
    """The pool's Chromium processes once the ones of closed contexts have exited (each a
    moment after its context closed): bounded polling, the count that stays."""
    kinds = _chromium(pool)
    for _ in range(100):
        await asyncio.sleep(0.2)
        again = _chromium(pool)
        if again == kinds and (at_most is None or sum(again.values()) <= at_most):
            return again
        kinds = again
    return kinds


def _running(executable: Path) -> list[int]:
    """Processes still running ``executable`` (a script: its path is in the cmdline)."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and str(executable) in _cmdline(int(entry.name))
    ]


async def test_a_browser_hanging_at_launch_is_unavailable_after_its_own_deadline(
    site: Site, tmp_path: Path
) -> None:
    """A browser executable that never answers (a real process that sleeps forever): the
    run fails as browser_unavailable after the launch deadline, not as timeout after the
    journey's budget; then the browser is known down and the next runs fail at once,
    short journeys too, while a relaunch is tried behind them; nothing of it is left
    running once the pool is closed."""
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nwhile :; do sleep 1; done\n")
    fake.chmod(0o755)
    step = '- {name: s, browser: [{goto: "${base}/"}]}'
    long = journey(step, timeout="20s")
    short = journey(step, timeout="0.5s", step_timeout="0.5s")
    try:
        async with BrowserPool(executable=str(fake), launch_timeout=1.0) as own:
            env = environment(site, own)
            first = await run_journey(long, env)
            assert first.reason is FailureReason.BROWSER_UNAVAILABLE, first.message
            assert "did not start within 1s" in first.message
            for run in (long, short):
                after = await run_journey(run, env)
                assert after.reason is FailureReason.BROWSER_UNAVAILABLE, after.message
            assert own.launches == 0
    finally:
        for _ in range(50):  # Playwright kills its launch at the deadline; bounded wait
            if not _running(fake):
                break
            await asyncio.sleep(0.1)
        left = _running(fake)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert not left, left


async def test_a_short_run_waiting_for_a_launch_does_not_cancel_it(site: Site) -> None:
    """A run whose budget ends while the browser is still launching is not_started (the
    agent's time); the launch goes on, and the next run finds the browser ready."""
    require_chromium()
    passing = journey('- {name: s, browser: [{goto: "${base}/"}, {expect_visible: "#welcome"}]}')
    async with BrowserPool() as own:
        env = environment(site, own)
        cut = await run_journey(journey('- {name: s, browser: [{goto: "${base}/"}]}',
                                        timeout="0.01s", step_timeout="0.01s"), env)  # fmt: skip
        assert cut.reason is FailureReason.AGENT_BUSY, cut.message
        for _ in range(200):  # the launch finishes on its own, with no run waiting
            if own.launches:
                break
            await asyncio.sleep(0.1)
        assert own.launches == 1
        after = await run_journey(passing, env)
        assert after.ok, after.message
        assert own.launches == 1
