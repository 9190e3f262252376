"""The scheduler: when each journey runs, how many run at once, and a clean stop.

Each journey has one timer task on the agent's event loop. Its first run is due at a
stable offset into its interval (from the sha256 of its id, see :mod:`agent.schedule.sharding`),
so a thousand journeys never fire at once and a restart keeps the same spread. Then it
is due every ``schedule.every`` (``every_at_peak`` in its business process's peak hours;
``every_when_failing``, if shorter, while its last run failed), plus optional jitter.

A journey never runs twice at once: when a run is due while the previous one is still
in flight (or waiting for a slot), the new one is skipped and counted. A semaphore caps
the runs in flight across journeys. Lag (start minus due time) is measured.

:meth:`Scheduler.shutdown` stops the timers, lets runs in flight finish within a grace
period, then cancels the rest and exports each one cut off as ``aborted``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge, Histogram
from structlog.typing import FilteringBoundLogger

from agent.language.catalog import Catalog
from agent.language.model import Journey
from agent.run.results import FailureReason, Outcome, RunIds, RunResult
from agent.schedule.sharding import Shard, phase
from agent.schedule.skipped import SkippedRuns

__all__ = ["Clock", "Scheduler", "SystemClock", "UpdateResult"]

RunFunction = Callable[[Journey, RunIds], Awaitable[RunResult]]
ExportFunction = Callable[[RunResult], None]

_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Clock(Protocol):
    """Time as the scheduler sees it; tests swap in one with a chosen wall-clock hour."""

    def monotonic(self) -> float: ...
    def time(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clocks: monotonic for intervals, wall time for peak hours."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What :meth:`Scheduler.update` changed, by journey id, and what is now scheduled."""

    added: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    journeys: tuple[Journey, ...] = ()  # this shard's journeys, for the exporters' inventory


@dataclass(eq=False)
class _Entry:
    journey: Journey
    due: float  # monotonic time the next run is due (before jitter)
    timer: asyncio.Task[None] | None = None
    failing: bool = False  # the last run failed: every_when_failing applies
    labels: tuple[str, ...] = field(default=())


class Scheduler:
    """Runs loaded journeys on their schedules until :meth:`shutdown`.

    ``run`` is the runner bound to its environment; ``export`` hands a result to every
    exporter (the agent passes :meth:`exporters.fanout.Fanout.export`, which keeps one
    exporter's error from the others). Must be used from inside the running event loop.
    ``catalog`` may be replaced (after a reload) by assigning the attribute.
    """

    def __init__(
        self,
        *,
        run: RunFunction,
        export: ExportFunction,
        registry: CollectorRegistry,
        logger: FilteringBoundLogger,
        max_concurrency: int = 10,
        catalog: Catalog | None = None,
        shard: Shard | None = None,
        location: str = "local",
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.catalog = catalog
        self._run_journey = run
        self._export = export
        self._log = logger.bind(component="scheduler")
        self._slots = asyncio.Semaphore(max_concurrency)
        self._shard = shard or Shard()
        self._location = location
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._entries: dict[str, _Entry] = {}
        self._running: dict[str, asyncio.Task[None]] = {}  # by journey id, at most one each
        self._started: set[str] = set()  # ids whose run is inside the runner
        self._stopping = False
        self._skipped = SkippedRuns(registry, clock=self._clock.time)
        self._lag = Histogram(
            "journeyman_scheduler_lag_seconds",
            "How late runs started against their due time (jitter included in the due time)",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self._in_flight = Gauge(
            "journeyman_runs_in_flight", "Journey runs in progress", registry=registry
        )
        self._loaded = Gauge(
            "journeyman_journeys_loaded",
            "Journeys scheduled by this agent (after sharding)",
            registry=registry,
        )

    @property
    def journeys(self) -> tuple[Journey, ...]:
        return tuple(entry.journey for entry in self._entries.values())

    @property
    def in_flight(self) -> int:
        return len(self._started)

    def update(self, journeys: Iterable[Journey]) -> UpdateResult:
        """Schedule exactly ``journeys`` (those of this shard): add new ones, replace changed
        ones keeping their phase, stop removed ones (a run in flight still finishes)."""
        if self._stopping:
            raise RuntimeError("the scheduler is shut down")
        wanted = {j.journey: j for j in journeys if self._shard.owns(j.journey)}
        removed = tuple(sorted(set(self._entries) - set(wanted)))
        for journey_id in removed:
            self._drop(self._entries.pop(journey_id))
        added, replaced = [], []
        for journey_id, journey in sorted(wanted.items()):
            entry = self._entries.get(journey_id)
            if entry is None:
                self._entries[journey_id] = self._add(journey)
                added.append(journey_id)
            elif entry.journey != journey:
                self._replace(entry, journey)
                replaced.append(journey_id)
        self._loaded.set(len(self._entries))
        result = UpdateResult(tuple(added), tuple(replaced), removed, self.journeys)
        self._log.info(
            "journeys_updated",
            added=len(added),
            replaced=len(replaced),
            removed=len(removed),
            loaded=len(self._entries),
            shard=str(self._shard),
        )
        return result

    async def shutdown(self, grace: float) -> None:
        """Stop scheduling; give runs in flight ``grace`` seconds, then cut them off."""
        self._stopping = True
        timers = [e.timer for e in self._entries.values() if e.timer is not None]
        for timer in timers:
            timer.cancel()
        waiting = [t for i, t in self._running.items() if i not in self._started]
        for task in waiting:  # due but not started yet: they never will
            task.cancel()
        await asyncio.gather(*timers, *waiting, return_exceptions=True)
        running = list(self._running.values())
        self._log.info("scheduler_stopping", in_flight=len(running), grace_seconds=grace)
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()
            # The runner closes a cut-off run's resources within its own bound.
            await asyncio.gather(*late, return_exceptions=True)
            if late:
                self._log.warning("runs_aborted", count=len(late), grace_seconds=grace)
        self._log.info("scheduler_stopped")

    def first_offset(self, journey: Journey) -> float:
        """Seconds after being loaded that a journey first runs: its stable phase."""
        return phase(journey.journey) * self._interval(journey, failing=False)

    def _add(self, journey: Journey) -> _Entry:
        entry = _Entry(journey, self._clock.monotonic() + self.first_offset(journey))
        entry.labels = self._labels(journey)
        self._skipped.add(entry.labels)
        self._arm(entry)
        return entry

    def _replace(self, entry: _Entry, journey: Journey) -> None:
        """Keep the pending due time (the phase), but never later than one new interval."""
        entry.journey = journey
        labels = self._labels(journey)
        if labels != entry.labels:
            self._skipped.remove(entry.labels)
            entry.labels = labels
            self._skipped.add(labels)
        latest = self._clock.monotonic() + self._interval(journey, entry.failing)
        entry.due = min(entry.due, latest)
        self._arm(entry)

    def _drop(self, entry: _Entry) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
        self._skipped.remove(entry.labels)

    def _labels(self, journey: Journey) -> tuple[str, ...]:
        return (journey.journey, journey.business_process, journey.persona.value, self._location)

    def _arm(self, entry: _Entry) -> None:
        """(Re)start the entry's timer so that it wakes at ``entry.due``."""
        if entry.timer is not None:
            entry.timer.cancel()
        entry.timer = asyncio.create_task(self._tick(entry), name=f"timer:{entry.journey.journey}")
        entry.timer.add_done_callback(self._report_crash)

    async def _tick(self, entry: _Entry) -> None:
        while True:
            await self._clock.sleep(max(0.0, entry.due - self._clock.monotonic()))
            self._fire(entry)

    def _fire(self, entry: _Entry) -> None:
        """A run is due: start it, or count it skipped if the last one is still going."""
        journey, due = entry.journey, entry.due
        now = self._clock.monotonic()
        interval = self._interval(journey, entry.failing)
        entry.due = due + interval
        missed = 0
        if entry.due <= now:  # the loop stalled for whole intervals: those runs never happen
            missed = int((now - entry.due) // interval) + 1
            entry.due += missed * interval
        if journey.journey in self._running:
            missed += 1
        else:
            planned = due + self._rng.uniform(0.0, journey.schedule.jitter)
            task = asyncio.create_task(
                self._run(entry, due, planned), name=f"run:{journey.journey}"
            )
            task.add_done_callback(self._report_crash)
            self._running[journey.journey] = task
        if missed:
            self._skipped.inc(entry.labels, missed)
            self._log.warning("run_skipped", journey=journey.journey, skipped=missed)

    def _interval(self, journey: Journey, failing: bool) -> float:
        schedule = journey.schedule
        interval = schedule.every
        if schedule.every_at_peak is not None and self._at_peak(journey):
            interval = schedule.every_at_peak
        if failing and schedule.every_when_failing is not None:
            interval = min(interval, schedule.every_when_failing)
        return interval

    def _at_peak(self, journey: Journey) -> bool:
        process = self.catalog.process(journey.business_process) if self.catalog else None
        if self.catalog is None or process is None or process.volume is None:
            return False
        return process.volume.is_peak(self.catalog.local_hour(self._clock.time()))

    async def _run(self, entry: _Entry, due: float, planned: float) -> None:
        journey = entry.journey
        try:
            await self._clock.sleep(max(0.0, planned - self._clock.monotonic()))
            async with self._slots:
                result = await self._measured_run(journey, planned)
        finally:
            del self._running[journey.journey]
        self._finish(journey, due, result)

    async def _measured_run(self, journey: Journey, planned: float) -> RunResult:
        started = self._clock.monotonic()
        started_at = self._clock.time()
        self._lag.observe(max(0.0, started - planned))
        self._in_flight.inc()
        self._started.add(journey.journey)
        ids = RunIds.new(journey.journey, started_at)
        try:
            return await self._run_journey(journey, ids)
        except asyncio.CancelledError:
            if self._stopping:  # cut off by shutdown: data, not a failed journey
                elapsed = self._clock.monotonic() - started
                self._deliver(_unfinished(journey, ids, started_at, elapsed))
            raise
        except Exception as error:  # the runner never raises; if it does, it is our bug
            self._log.error("runner_crashed", journey=journey.journey, error=type(error).__name__)
            return _unfinished(journey, ids, started_at, self._clock.monotonic() - started, error)
        finally:
            self._started.discard(journey.journey)
            self._in_flight.dec()

    def _finish(self, journey: Journey, due: float, result: RunResult) -> None:
        entry = self._entries.get(journey.journey)
        if entry is None:  # removed while running: exporting would resurrect its series
            self._log.info("result_dropped", journey=journey.journey, outcome=result.outcome.value)
            return
        self._deliver(result)
        was_failing, entry.failing = entry.failing, not result.ok
        if self._stopping or was_failing == entry.failing:
            return
        # The outcome changed the interval: plan the next run from this run's due time.
        replanned = due + self._interval(entry.journey, entry.failing)
        next_due = min(entry.due, replanned) if entry.failing else max(entry.due, replanned)
        if next_due != entry.due:
            entry.due = next_due
            self._arm(entry)

    def _deliver(self, result: RunResult) -> None:
        try:
            self._export(result)
        except Exception as error:  # an exporter bug must not stop the schedule
            self._log.error(
                "export_failed", journey=result.journey, error=repr(error), exc_info=error
            )

    def _report_crash(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (error := task.exception()) is not None:
            self._log.error("scheduler_task_crashed", task=task.get_name(), error=repr(error))


def _unfinished(
    journey: Journey,
    ids: RunIds,
    started_at: float,
    elapsed: float,
    error: Exception | None = None,
) -> RunResult:
    """The result of a run the runner did not finish: aborted by shutdown, or a crash."""
    if error is None:
        outcome, reason = Outcome.ABORTED, FailureReason.ABORTED
        message = "cut off by the agent's shutdown after the grace period"
    else:
        outcome, reason = Outcome.FAILURE, FailureReason.INTERNAL
        message = f"the runner raised {type(error).__name__}"
    return RunResult(
        journey=journey.journey,
        business_process=journey.business_process,
        persona=journey.persona.value,
        run_id=ids.run_id,
        trace_id=ids.trace_id,
        started_at=started_at,
        duration=elapsed,
        outcome=outcome,
        attempts=1,
        reason=reason,
        message=message,
    )
