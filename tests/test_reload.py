"""Reload of journey files: a good edit applies, a broken one keeps the last good version."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
from agent_process import AgentProcess, Samples, running_agent, value, wait_for
from aiohttp import web
from http_servers import serve_app
from prometheus_client import CollectorRegistry

from agent.language.catalog import Catalog
from agent.language.loader import LoadResult, load
from agent.language.model import Journey
from agent.schedule.reload import Reloader

JOURNEY = """\
journey: {id}
title: {title}
business_process: order-to-cash
schedule: {{every: 10s, timeout: 1s}}
steps:
  - name: home
    http: {{get: "http://127.0.0.1:9/"}}
"""
BROKEN = """\
journey: alpha
business_process: order-to-cash
steps:
  - name: home
    http: {get: "http://127.0.0.1:9/"}
    expect: {status: 2000}
"""
CATALOG = """\
business_processes:
  - id: order-to-cash
    name: Sell
    volume: {{per_hour: 10, peak_hours: {hours}}}
"""


class Applied:
    """Records each set of journeys handed over, and signals when one arrives."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Journey]] = []
        self.arrived = asyncio.Event()

    def __call__(self, journeys: Sequence[Journey], catalog: Catalog | None) -> None:
        self.calls.append({j.journey: j for j in journeys})
        self.arrived.set()

    async def next(self) -> dict[str, Journey]:
        await asyncio.wait_for(self.arrived.wait(), timeout=10)
        self.arrived.clear()
        return self.calls[-1]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "alpha.yaml").write_text(JOURNEY.format(id="alpha", title="first"))
    (tmp_path / "beta.yaml").write_text(JOURNEY.format(id="beta", title="first"))
    return tmp_path


@pytest.fixture
def logs() -> structlog.testing.CapturingLogger:
    return structlog.testing.CapturingLogger()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def reloader(
    folder: Path,
    apply: Applied,
    registry: CollectorRegistry,
    logs: structlog.testing.CapturingLogger,
    load_files: Callable[[Sequence[Path]], LoadResult] = load,
    **options: Any,
) -> Reloader:
    return Reloader(
        paths=[folder],
        load=load_files,
        apply=apply,
        registry=registry,
        logger=watcher_logger(logs),
        **options,
    )


def loaded(
    folder: Path, registry: CollectorRegistry, logs: structlog.testing.CapturingLogger
) -> tuple[Applied, Reloader]:
    """A reloader of ``folder`` that has loaded it once, and what it applied."""
    applied = Applied()
    watcher = reloader(folder, applied, registry, logs)
    watcher.reload()
    return applied, watcher


def watcher_logger(logs: structlog.testing.CapturingLogger) -> Any:
    return structlog.wrap_logger(
        logs, processors=[], wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG)
    )


def test_good_edit_applies_then_broken_edit_keeps_last_good(
    folder: Path, registry: CollectorRegistry, logs: structlog.testing.CapturingLogger
) -> None:
    """A good edit replaces the journey; a broken edit keeps its last good version, logs the
    error with file:line and counts it."""
    applied = Applied()
    watcher = reloader(folder, applied, registry, logs)
    assert watcher.reload().ok
    (folder / "alpha.yaml").write_text(JOURNEY.format(id="alpha", title="second"))
    assert watcher.reload().ok
    assert applied.calls[-1]["alpha"].title == "second"
    (folder / "alpha.yaml").write_text(BROKEN)
    outcome = watcher.reload()
    assert not outcome.ok
    assert outcome.rejected == (str(folder / "alpha.yaml"),)
    assert applied.calls[-1]["alpha"].title == "second"
    assert set(applied.calls[-1]) == {"alpha", "beta"}
    errors = [c.kwargs for c in logs.calls if c.kwargs.get("event") == "journey_file_rejected"]
    assert errors
    assert f"{folder / 'alpha.yaml'}:6:" in errors[0]["error"]
    assert "status" in errors[0]["error"]
    assert registry.get_sample_value("journeyman_reloads_total", {"result": "success"}) == 2
    assert registry.get_sample_value("journeyman_reloads_total", {"result": "failure"}) == 1
    assert registry.get_sample_value("journeyman_reload_failures_total") == 1


def test_removed_file_removes_its_journeys(
    folder: Path, registry: CollectorRegistry, logs: structlog.testing.CapturingLogger
) -> None:
    """Deleting a file (even one that was broken) removes its journeys from the set."""
    applied = Applied()
    watcher = reloader(folder, applied, registry, logs)
    watcher.reload()
    (folder / "beta.yaml").write_text("journey: [unclosed")
    watcher.reload()
    assert set(applied.calls[-1]) == {"alpha", "beta"}
    (folder / "beta.yaml").unlink()
    assert watcher.reload().ok
    assert set(applied.calls[-1]) == {"alpha"}


@asynccontextmanager
async def watching(watcher: Reloader, *, sighup: bool) -> AsyncIterator[None]:
    """The watcher running in the background for the duration of the block."""
    task = asyncio.create_task(watcher.watch(sighup=sighup))
    await asyncio.sleep(0)  # let it start (and install its SIGHUP handler)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_watch_reloads_when_a_file_changes(
    folder: Path, registry: CollectorRegistry, logs: structlog.testing.CapturingLogger
) -> None:
    """The watcher notices an edit by polling and hands over the new set."""
    applied = Applied()
    watcher = reloader(folder, applied, registry, logs, poll_interval=0.05)
    watcher.reload()
    await applied.next()
    async with watching(watcher, sighup=False):
        (folder / "gamma.yaml").write_text(JOURNEY.format(id="gamma", title="new"))
        assert set(await applied.next()) == {"alpha", "beta", "gamma"}


async def test_sighup_reloads_at_once(
    folder: Path, registry: CollectorRegistry, logs: structlog.testing.CapturingLogger
) -> None:
    """SIGHUP makes the watcher reload even when nothing changed on disk."""
    applied = Applied()
    watcher = reloader(folder, applied, registry, logs, poll_interval=60)
    watcher.reload()
    await applied.next()
    async with watching(watcher, sighup=True):
        assert signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL  # else SIGHUP kills pytest
        os.kill(os.getpid(), signal.SIGHUP)
        assert set(await applied.next()) == {"alpha", "beta"}
    assert len(applied.calls) == 2


def test_broken_catalog_keeps_the_last_good_catalog(
    folder: Path, registry: CollectorRegistry, logs: structlog.testing.CapturingLogger
) -> None:
    """A catalog edit with an error keeps the previous catalog (peak hours keep working)."""
    catalog = folder / "catalog.yaml"
    catalog.write_text(CATALOG.format(hours="[9, 10]"))
    watcher = reloader(folder, Applied(), registry, logs)
    first = watcher.reload().catalog
    assert first is not None
    catalog.write_text(CATALOG.format(hours="[25]"))
    outcome = watcher.reload()
    assert outcome.rejected == (str(catalog),)
    assert outcome.catalog is first


async def test_a_reload_leaves_the_loop_free_for_due_runs(
    folder: Path, registry: CollectorRegistry, logs: structlog.testing.CapturingLogger
) -> None:
    """A load (~0.6 s of CPU for 1,000 journeys) happens off the event loop: here the load
    cannot finish until a coroutine on the loop lets it, which it could never do if the
    load held the loop. What the load built is still applied."""
    applied = Applied()
    may_finish = threading.Event()

    def slow_load(paths: Sequence[Path]) -> LoadResult:
        if applied.calls and not may_finish.wait(timeout=10):
            raise AssertionError("the loop did not run while the journeys loaded")
        return load(paths)

    watcher = reloader(folder, applied, registry, logs, slow_load, poll_interval=60)
    watcher.reload()
    await applied.next()
    (folder / "gamma.yaml").write_text(JOURNEY.format(id="gamma", title="new"))
    async with watching(watcher, sighup=True):
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.05)  # the watcher's turn: the load starts, and blocks
        may_finish.set()  # from the loop, while the load waits
        assert set(await applied.next()) == {"alpha", "beta", "gamma"}


def test_loader_crash_keeps_what_runs(
    folder: Path, registry: CollectorRegistry, logs: structlog.testing.CapturingLogger
) -> None:
    """If loading itself raises, nothing is applied and the failure is counted."""
    applied = Applied()
    watcher = reloader(folder, applied, registry, logs)
    watcher.reload()

    def unreadable(paths: Sequence[Path]) -> LoadResult:
        raise PermissionError("permission denied")

    crashing = Reloader(
        paths=[folder],
        load=unreadable,
        apply=applied,
        registry=CollectorRegistry(),
        logger=watcher_logger(logs),
    )
    assert not crashing.reload().ok
    assert len(applied.calls) == 1


@pytest.mark.parametrize(
    "rewrite",
    [
        pytest.param("", id="empty"),
        pytest.param("\n# being written\n", id="blank-and-comments"),
        pytest.param(JOURNEY.format(id="alpha", title="second")[:60], id="cut-off"),
        pytest.param("journey: alpha\ntitle: [sec", id="unparsable"),
    ],
)
def test_an_empty_or_cut_off_rewrite_keeps_the_last_good_version(
    rewrite: str,
    folder: Path,
    registry: CollectorRegistry,
    logs: structlog.testing.CapturingLogger,
) -> None:
    """A file that held journeys, rewritten empty, cut off or unparsable (caught between a
    truncate and a write), is a reload failure: its last good journeys keep running and
    the failure is logged and counted; deleting the file is what removes them."""
    applied, watcher = loaded(folder, registry, logs)
    before = applied.calls[-1]["alpha"]
    (folder / "alpha.yaml").write_text(rewrite)
    outcome = watcher.reload()
    assert not outcome.ok
    assert outcome.rejected == (str(folder / "alpha.yaml"),)
    assert applied.calls[-1]["alpha"] is before
    assert registry.get_sample_value("journeyman_reload_failures_total") == 1
    rejected = [c.kwargs for c in logs.calls if c.kwargs.get("event") == "journey_file_rejected"]
    assert rejected
    assert rejected[0]["kept_journeys"] == 1
    (folder / "alpha.yaml").unlink()
    assert watcher.reload().ok
    assert set(applied.calls[-1]) == {"beta"}


def test_a_new_empty_file_is_only_a_warning(
    folder: Path, registry: CollectorRegistry, logs: structlog.testing.CapturingLogger
) -> None:
    """An empty file that never held journeys is no failure (nothing to keep)."""
    applied, watcher = loaded(folder, registry, logs)
    (folder / "new.yaml").write_text("")
    assert watcher.reload().ok
    assert set(applied.calls[-1]) == {"alpha", "beta"}


def _vanish(journeys: Path) -> None:
    journeys.rename(journeys.with_name("moved-away"))


def _into_a_file(journeys: Path) -> None:
    _vanish(journeys)
    journeys.write_text("not: a folder\n")


def _dangling_symlink(journeys: Path) -> None:
    _vanish(journeys)
    journeys.symlink_to(journeys.with_name("nowhere"))


@pytest.mark.parametrize("fault", [_vanish, _into_a_file, _dangling_symlink])
def test_a_journeys_folder_that_is_gone_keeps_its_journeys(
    fault: Callable[[Path], None],
    folder: Path,
    registry: CollectorRegistry,
    logs: structlog.testing.CapturingLogger,
) -> None:
    """The configured folder gone, turned into a file or a dangling symlink for a moment (a
    mount being swapped) is a reload failure that keeps every journey; once it is back,
    the next reload applies it."""
    journeys = folder / "journeys"
    journeys.mkdir()
    for name in ("alpha.yaml", "beta.yaml"):
        (folder / name).rename(journeys / name)
    applied = Applied()
    watcher = reloader(journeys, applied, registry, logs)
    assert watcher.reload().ok
    fault(journeys)
    assert not watcher.reload().ok
    assert set(applied.calls[-1]) == {"alpha", "beta"}
    assert registry.get_sample_value("journeyman_reloads_total", {"result": "failure"}) == 1
    if journeys.is_symlink() or journeys.is_file():
        journeys.unlink()
    journeys.with_name("moved-away").rename(journeys)
    (journeys / "beta.yaml").unlink()
    assert watcher.reload().ok
    assert set(applied.calls[-1]) == {"alpha"}


def test_an_emptied_folder_removes_its_journeys(
    folder: Path, registry: CollectorRegistry, logs: structlog.testing.CapturingLogger
) -> None:
    """Deleting every file of a readable folder is a deliberate removal."""
    applied, watcher = loaded(folder, registry, logs)
    for name in ("alpha.yaml", "beta.yaml"):
        (folder / name).unlink()
    watcher.reload()
    assert applied.calls[-1] == {}


async def test_the_watcher_survives_an_error_and_tries_again(
    folder: Path, registry: CollectorRegistry, logs: structlog.testing.CapturingLogger
) -> None:
    """An error inside the watcher (here: applying a reload raises once) is logged once,
    counted, and tried again at the next poll, which succeeds: the watcher never dies."""
    applied = Applied()
    failures = [RuntimeError("scheduler bug")]

    def flaky(journeys: Sequence[Journey], catalog: Catalog | None) -> None:
        if failures and "gamma" in {j.journey for j in journeys}:
            raise failures.pop()
        applied(journeys, catalog)

    watcher = Reloader(
        paths=[folder],
        load=load,
        apply=flaky,
        registry=registry,
        logger=watcher_logger(logs),
        poll_interval=0.05,
    )
    watcher.reload()
    await applied.next()
    async with watching(watcher, sighup=False):
        (folder / "gamma.yaml").write_text(JOURNEY.format(id="gamma", title="new"))
        assert set(await applied.next()) == {"alpha", "beta", "gamma"}
    events = [c.kwargs["event"] for c in logs.calls]
    assert events.count("reload_failed") == 1
    assert "reload_recovered" in events
    assert registry.get_sample_value("journeyman_reloads_total", {"result": "failure"}) == 1


# --- the whole agent ------------------------------------------------------------------

PING = """\
journey: ping
title: {title}
business_process: order-to-cash
schedule: {{every: 0.3s, timeout: 0.25s}}
steps:
  - name: ping
    http: {{get: "{url}/"}}
"""


@asynccontextmanager
async def target() -> AsyncIterator[str]:
    """A loopback page that answers 200 at once."""
    app = web.Application()
    app.router.add_get("/", _ok)
    async with serve_app(app) as url:
        yield url


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _without_dac_override() -> list[str]:
    """A command prefix under which a permission bit stops this process's user: as root,
    setpriv drops the capabilities that read through them (chmod 000 stops no root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root without setpriv (util-linux): cannot make a folder unreadable")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


def _runs(samples: Samples) -> float:
    return value(samples, "journey_runs_total", journey="ping")


async def test_a_folder_unreadable_for_a_moment_is_a_reload_failure_not_an_exit(
    tmp_path: Path,
) -> None:
    """The journeys folder's parent made unreadable (a real EACCES: the agent runs without
    the capabilities that let root read through permission bits): the watcher logs and
    counts a reload failure, retries, and the journey keeps running; once readable again
    the agent recovers, and it exits 0 on SIGTERM."""
    parent = tmp_path / "parent"
    journeys = parent / "journeys"
    journeys.mkdir(parents=True)
    async with target() as url:
        (journeys / "ping.yaml").write_text(PING.format(title="ping", url=url))
        argv = [*map(str, (journeys,)), "--listen", "127.0.0.1:0", "--log-level", "info"]
        process = await asyncio.create_subprocess_exec(
            *_without_dac_override(), sys.executable, "-m", "agent", "run", *argv,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        agent = AgentProcess(process)
        try:
            await agent.started()
            await wait_for(agent, lambda s: _runs(s) >= 1)
            parent.chmod(0)
            try:
                samples = await wait_for(
                    agent, lambda s: value(s, "journeyman_reload_failures_total") >= 2
                )
                await wait_for(agent, lambda s: _runs(s) >= _runs(samples) + 2)
            finally:
                parent.chmod(0o755)
            await wait_for(agent, lambda s: "reload_recovered" in events(agent))
            assert process.returncode is None
        finally:
            code = await agent.stop()
    assert code == 0, agent.stderr[-3000:]
    failed = [e for e in agent.events if e.get("event") == "reload_failed"]
    assert len(failed) == 1, failed  # logged once, however many polls failed
    assert "PermissionError" in failed[0]["error"]
    assert "Traceback" not in agent.stderr


def events(agent: AgentProcess) -> set[str]:
    return {str(e.get("event")) for e in agent.events}


async def test_a_storm_of_rewrites_never_resets_a_journeys_counters(tmp_path: Path) -> None:
    """A journey file rewritten again and again (truncated, then written with a new title:
    the moments in between are empty files) keeps its journey and its run counter, which
    only ever grows: a reset would be a false alarm in every rate()."""
    file = tmp_path / "ping.yaml"
    async with target() as url, running_agent([tmp_path]) as agent:
        file.write_text(PING.format(title="rewrite 0", url=url))
        await wait_for(agent, lambda s: _runs(s) >= 1)
        seen: list[float] = []
        for rewrite in range(1, 41):
            with file.open("w") as out:  # truncated now, written a moment later
                out.flush()
                os.fsync(out.fileno())
                await asyncio.sleep(0.06)  # the watcher polls every second: some land here
                out.write(PING.format(title=f"rewrite {rewrite}", url=url))
            if rewrite % 4 == 0:
                seen.append(_runs(await agent.samples()))
        await wait_for(agent, lambda s: value(s, "journey_info", title="rewrite 40") == 1)
        seen.append(_runs(await agent.samples()))
    assert seen == sorted(seen), seen
    assert seen[-1] > seen[0], seen
    emptied = [e for e in agent.events if e.get("event") == "journey_file_rejected"]
    assert "Traceback" not in agent.stderr
    print(f"runs seen: {seen}; empty rewrites caught by the watcher: {len(emptied)}")
