"""Reload of journey files: a good edit applies, a broken one keeps the last good version."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
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
    **options: Any,
) -> Reloader:
    return Reloader(
        paths=[folder],
        load=load,
        apply=apply,
        registry=registry,
        logger=watcher_logger(logs),
        **options,
    )


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
