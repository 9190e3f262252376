"""Builds the agent from its parts and runs it: once (for CI) or forever (the agent).

The entry point owns every shared thing (registry, exporters, browser, TLS contexts,
logger) and passes them down; nothing here is global.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import structlog
from prometheus_client import CollectorRegistry, Histogram

from agent.language.catalog import Catalog
from agent.language.loader import load
from agent.language.model import Journey
from agent.language.templating import DEFAULT_ALLOW_ENV, EnvAllowList
from agent.run.artifacts import ArtifactStore, TraceMode
from agent.run.browser_pool import BrowserPool
from agent.run.context import RunEnvironment
from agent.run.egress import EgressPolicy
from agent.run.results import RunIds, RunResult
from agent.run.runner import import_kinds, run_journey
from agent.schedule.reload import Reloader
from agent.schedule.scheduler import Scheduler
from agent.schedule.sharding import Shard
from agent.serve.server import Readiness, start_server
from exporters.base import Exporter
from exporters.console import ConsoleExporter
from exporters.fanout import Fanout
from exporters.history import History
from exporters.logs import LogExporter
from exporters.prometheus import PrometheusExporter
from exporters.status import StatusBoard

__all__ = ["Debug", "Settings", "StartError", "run_agent", "run_once"]


class StartError(Exception):
    """The agent cannot start as configured (its port is taken): one line for the user."""


@dataclass(frozen=True)
class Settings:
    paths: tuple[Path, ...]
    location: str = "local"
    listen: str = "127.0.0.1:9464"
    max_concurrency: int = 8
    max_browsers: int = 2
    shard: Shard | None = None
    grace: float = 30.0
    artifacts_dir: Path | None = None
    browser_trace: TraceMode = TraceMode.LIGHT  # what a failed browser step's trace records
    browser_path: str | None = None
    headed: bool = False  # run --once --headed: a browser window to watch (needs a display)
    slow_mo: float = 0.0  # run --once --slow-mo: milliseconds before each browser operation
    console: TextIO | None = None  # a live line per run (demo, terminals)
    web_config: Path | None = None  # --web.config.file: TLS, basic auth, headers
    protect_probes: bool = False  # basic auth on /healthz and /readyz too
    data_dir: Path | None = None  # --data-dir: the run history's file; None keeps it in memory
    # what journeys may reach (docs/security.md): --allow-env, --allow/deny-hosts, folders
    allow_env: tuple[str, ...] = DEFAULT_ALLOW_ENV
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    uploads_dir: Path | None = None
    ca_dir: Path | None = None


# From a free slot in milliseconds to a cold launch (~0.2-1 s) and a saturated pool.
_WAIT_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@asynccontextmanager
async def run_environment(
    settings: Settings, environ: Mapping[str, str], registry: CollectorRegistry | None = None
) -> AsyncIterator[RunEnvironment]:
    """What runs share: TLS contexts, the browser (launched on first use), artifacts. With
    a ``registry``, the browser's waits are exported as ``journeyman_browser_wait_seconds``."""
    artifacts = None
    if settings.artifacts_dir:
        artifacts = ArtifactStore(settings.artifacts_dir, trace=settings.browser_trace)
    on_wait = None
    if registry is not None:
        on_wait = Histogram(
            "journeyman_browser_wait_seconds",
            "Time runs waited for a browser context (slot, launch, context) before a browser "
            "step's clock started: the agent's time, not the target's",
            buckets=_WAIT_BUCKETS,
            registry=registry,
        ).observe
    async with BrowserPool(
        executable=settings.browser_path,
        environ=environ,
        max_contexts=settings.max_browsers,
        on_wait=on_wait,
        headless=not settings.headed,
        slow_mo=settings.slow_mo,
    ) as browser:
        yield RunEnvironment(
            environ=dict(environ),
            browser=browser,
            artifacts=artifacts,
            location=settings.location,
            allow_env=EnvAllowList(settings.allow_env),
            egress=settings.egress,
            uploads_dir=settings.uploads_dir,
            ca_dir=settings.ca_dir,
        )


@dataclass(frozen=True)
class Debug:
    """``run --once --debug``: each step printed as it runs (one journey at a time, so the
    output reads in order); ``step``: every journey ends after the step of that name."""

    body_limit: int = 4096  # bytes of a failing response body or page text shown
    step: str | None = None


async def run_once(
    settings: Settings,
    journeys: Sequence[Journey],
    out: TextIO,
    *,
    junit: Path | None = None,
    environ: Mapping[str, str] | None = None,
    exporters: Mapping[str, Exporter] | None = None,
    debug: Debug | None = None,
) -> list[RunResult]:
    """Run each journey once (bounded concurrency), print the table, write JUnit. Results
    also go to ``exporters`` (the Pushgateway's, which pushes when closed; a progress view,
    started before the first run and closed before the table). With ``debug``, each step
    is printed to ``out`` as it runs."""
    from exporters.junit import write_junit  # run --once only: not the agent's start
    from exporters.table import format_table

    log = structlog.get_logger("journeyman")
    logs = LogExporter(log, settings.location)
    fanout = Fanout({"logs": logs, **(exporters or {})}, registry=CollectorRegistry(), logger=log)
    view = None
    if debug is not None:
        from agent.run.debug_view import DebugView  # run --debug only: not the agent's start

        view = DebugView(out, debug.body_limit)
    limit = asyncio.Semaphore(1 if debug else settings.max_concurrency)
    environ = os.environ if environ is None else environ
    async with fanout, run_environment(settings, environ) as shared:
        env = replace(shared, observer=view, body_limit=debug.body_limit if debug else 0)

        async def one(journey: Journey) -> RunResult:
            journey, not_run = _until(journey, debug.step if debug else None)
            async with limit:
                result = await run_journey(journey, env.for_journey(journey))
            fanout.export(result)
            if view is not None:  # said only of a journey that got as far as the step
                stopped = bool(result.steps) and result.steps[-1].name == journey.steps[-1].name
                view.run_finished(result, not_run if stopped else ())
            return result

        results = list(await asyncio.gather(*(one(journey) for journey in journeys)))
    out.write(format_table(results))
    if junit is not None:
        write_junit(results, junit)
    return results


def _until(journey: Journey, step: str | None) -> tuple[Journey, tuple[str, ...]]:
    """``journey`` ending after its step named ``step``, and the names of those cut."""
    names = [s.name for s in journey.steps]
    if step is None or step not in names:
        return journey, ()
    keep = names.index(step) + 1
    return journey.model_copy(update={"steps": journey.steps[:keep]}), tuple(names[keep:])


async def run_agent(
    settings: Settings,
    stop: asyncio.Event,
    *,
    environ: Mapping[str, str] | None = None,
    on_listening: Callable[[str], None] | None = None,
    extra_exporters: Mapping[str, Exporter] | None = None,
) -> None:
    """Run every journey on its schedule, serve /metrics, reload on change, until ``stop``.

    The server comes first and goes last, so /healthz answers throughout and /readyz says
    ``starting`` until the exporters are started and the first load is scheduled, then
    ``shutting down`` from ``stop`` on. Exporters close after the scheduler's shutdown,
    so runs it cut off reach them. ``on_listening(url)`` is called as soon as the server
    listens; ``extra_exporters`` are fed besides the built-in ones.
    """
    environ = dict(os.environ if environ is None else environ)
    log = structlog.get_logger("journeyman").bind(location=settings.location)
    registry = CollectorRegistry()
    prometheus = PrometheusExporter(registry, settings.location)
    history = History(settings.data_dir, registry=registry, logger=log, location=settings.location)
    flying: dict[str, float] = {}  # journey id -> start of its run in flight, for the page
    board = StatusBoard(history, location=settings.location, in_flight=lambda: flying)
    exporters = _exporters(settings, log, prometheus, history, board, extra_exporters or {})
    fanout = Fanout(exporters, registry=registry, logger=log)
    readiness = Readiness()
    access = None
    if settings.web_config is not None:
        from agent.serve.web_config import WebAccess  # only with --web.config.file

        access = WebAccess(settings.web_config, protect_probes=settings.protect_probes, logger=log)
    try:
        server = await start_server(
            settings.listen,
            metrics=prometheus,
            board=board,
            ready=readiness,
            location=settings.location,
            access=access,
            evidence=settings.artifacts_dir,
        )
    except OSError as error:  # in use, or an address this machine does not have
        raise StartError(
            f"cannot listen on {settings.listen}: {error.strerror or error} (another agent "
            "there? choose another address with --listen)"
        ) from None
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
    try:
        if on_listening is not None:
            on_listening(server.url)
        async with fanout, run_environment(settings, environ, registry) as env:

            async def run(journey: Journey, ids: RunIds) -> RunResult:
                flying[journey.journey] = time.time()
                try:
                    return await run_journey(journey, env.for_journey(journey), ids)
                finally:
                    flying.pop(journey.journey, None)

            scheduler = Scheduler(
                run=run,
                export=fanout.export,
                registry=registry,
                logger=log,
                max_concurrency=settings.max_concurrency,
                shard=settings.shard,
                location=settings.location,
            )

            loaded_before = False

            def apply(journeys: Sequence[Journey], catalog: Catalog | None) -> None:
                nonlocal loaded_before
                scheduler.catalog = catalog
                update = scheduler.update(journeys)
                prometheus.set_inventory(update.journeys, catalog)
                board.set_inventory(update.journeys, catalog)
                import_kinds(update.journeys)
                _freeze_loaded(reload=loaded_before)
                loaded_before = True

            reloader = Reloader(
                paths=settings.paths,
                load=partial(load, environ=environ, allow_env=EnvAllowList(settings.allow_env)),
                apply=apply,
                registry=registry,
                logger=log,
            )
            watch: asyncio.Task[None] | None = None
            try:
                reloader.reload()
                readiness.set_ready()
                log.info("agent_started", url=server.url, journeys=len(scheduler.journeys))
                watch = asyncio.create_task(reloader.watch())
                await stop.wait()
            finally:
                readiness.set_shutting_down()
                log.info("agent_stopping", grace_seconds=settings.grace)
                if watch is not None:
                    watch.cancel()
                    with suppress(asyncio.CancelledError):
                        await watch
                await scheduler.shutdown(settings.grace)
    finally:
        readiness.set_shutting_down()
        await server.close()
        gc.set_threshold(*thresholds)
        gc.unfreeze()  # hand what the agent kept back to the collector of its process
        log.info("agent_stopped")


# Allocations between young collections. Python's 700 collects ~12 times a second with
# 2,000 journeys and promotes the objects of the runs in flight each time, which soon
# trigger full collections: 3 in 30 s, 45-53 ms each, every run due meanwhile starting
# that late. At 10,000: 3-4 young collections in 30 s (15-22 ms each), no full one.
YOUNG_COLLECTION_THRESHOLD = 10_000


def _freeze_loaded(*, reload: bool) -> None:
    """Hide what a load built (journeys, series, metrics) from the cyclic collector.

    A full collection walks every tracked object, and what a load builds is most of them
    and lives until the next reload: with 1,000 journeys, ~190,000 tracked objects and
    gen-2 pauses of 100-210 ms of CPU; frozen, ~85,000 and 25-50 ms (docs/performance.md,
    "Scrapes and the schedule"). Reference counting still frees frozen objects once dropped.
    On a ``reload``, unfreezing first lets the last load's leftovers be collected, and
    collecting before freezing keeps garbage out of the frozen set. The first load freezes
    without collecting: that collection walked every module's objects too (~15 ms of the
    start) and found ~60 objects with 10 journeys, which the next reload collects.
    """
    if reload:
        gc.unfreeze()
        gc.collect()
    gc.freeze()


def _exporters(
    settings: Settings,
    log: Any,
    prometheus: PrometheusExporter,
    history: History,
    board: StatusBoard,
    extra: Mapping[str, Exporter],
) -> dict[str, Exporter]:
    """The exporters by name (the name labels their errors): built-in ones, then ``extra``.
    The history starts before the board, which restores its state from it."""
    exporters: dict[str, Exporter] = {
        "prometheus": prometheus,
        "history": history,
        "status": board,
        "logs": LogExporter(log, settings.location),
    }
    if settings.console is not None:
        exporters["console"] = ConsoleExporter(settings.console)
    if taken := sorted(set(exporters) & set(extra)):
        raise ValueError(f"exporter names already taken: {', '.join(taken)}")
    return exporters | dict(extra)
