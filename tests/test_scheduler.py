"""Scheduler timing: phase, intervals, skips, concurrency, lag, updates, shutdown.

A virtual clock drives the timing cases, so their figures are exact and never flake;
shutdown uses real (short) time because its grace period is real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry

from agent.language.catalog import Catalog
from agent.language.model import Journey
from agent.run.results import FailureReason, Outcome, RunIds, RunResult
from agent.schedule.scheduler import Clock, Scheduler
from agent.schedule.sharding import phase

WALL_START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()  # 09:00 UTC


class VirtualClock:
    """Time that only moves when the test advances it; sleepers wake in order."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return WALL_START + self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        end = self.now + seconds
        await _settle()
        while self._sleepers and self._sleepers[0][0] <= end:
            when, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            if not future.done():
                future.set_result(None)
            await _settle()
        self.now = end


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def journey(journey_id: str, process: str = "order-to-cash", **schedule: Any) -> Journey:
    return Journey.model_validate(
        {
            "journey": journey_id,
            "business_process": process,
            "schedule": {"every": 10, "timeout": 0.5, **schedule},
            "steps": [{"name": "home", "http": {"get": "http://127.0.0.1:9/"}}],
        }
    )


def result(j: Journey, ok: bool = True) -> RunResult:
    return RunResult(
        journey=j.journey,
        business_process=j.business_process,
        persona=j.persona.value,
        run_id="r",
        trace_id="0" * 32,
        started_at=0.0,
        duration=0.0,
        outcome=Outcome.SUCCESS if ok else Outcome.FAILURE,
        attempts=1,
        reason=None if ok else FailureReason.HTTP_STATUS,
    )


class FakeRunner:
    """Records when each run starts; each run lasts ``duration`` on the given clock."""

    def __init__(self, clock: Clock, duration: float = 0.1) -> None:
        self.clock = clock
        self.duration = duration
        self.outcomes: dict[str, list[bool]] = {}  # per journey, the next runs' outcomes
        self.starts: list[tuple[str, float]] = []
        self.running = 0
        self.peak = 0

    async def __call__(self, j: Journey, ids: RunIds) -> RunResult:
        self.starts.append((j.journey, self.clock.monotonic()))
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.clock.sleep(self.duration)
        finally:
            self.running -= 1
        planned = self.outcomes.get(j.journey, [])
        return result(j, ok=planned.pop(0) if planned else True)

    def times(self, journey_id: str) -> list[float]:
        return [round(t, 9) for i, t in self.starts if i == journey_id]


def capturing_logger() -> Any:
    return structlog.wrap_logger(
        structlog.testing.CapturingLogger(),
        processors=[],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )


SchedulerFactory = Callable[..., Scheduler]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def exported() -> list[RunResult]:
    return []


@pytest.fixture
def make(registry: CollectorRegistry, exported: list[RunResult]) -> SchedulerFactory:
    def factory(
        run: Callable[[Journey, RunIds], Awaitable[RunResult]], **options: Any
    ) -> Scheduler:
        defaults: dict[str, Any] = {
            "export": exported.append,
            "registry": registry,
            "logger": capturing_logger(),
            "rng": random.Random(7),
        }
        return Scheduler(run=run, **(defaults | options))

    return factory


def offset(journey_id: str, every: float) -> float:
    return round(phase(journey_id) * every, 9)


def ids_near_zero_phase(count: int) -> list[str]:
    """Ids whose first run falls in the first 0.4% of the interval (to provoke contention)."""
    return [i for i in (f"j{n}" for n in range(5000)) if phase(i) < 0.004][:count]


async def test_runs_start_at_their_offset_then_every_interval(make: SchedulerFactory) -> None:
    """A journey first runs at its stable offset, then exactly every schedule.every."""
    clock = VirtualClock()
    runner = FakeRunner(clock)
    scheduler = make(runner, clock=clock)
    scheduler.update([journey("checkout")])
    first = offset("checkout", 10)
    await clock.advance(first + 31)
    assert runner.times("checkout") == [round(first + k * 10, 9) for k in range(4)]
    await scheduler.shutdown(1)


async def test_same_ids_give_same_offsets_and_1000_spread(make: SchedulerFactory) -> None:
    """Offsets depend on the id only, and 1000 journeys spread evenly over the interval."""
    ids = [f"journey-{n}" for n in range(1000)]
    first = make(FakeRunner(VirtualClock()))
    second = make(FakeRunner(VirtualClock()), registry=CollectorRegistry())
    offsets = [first.first_offset(journey(i)) for i in ids]
    assert offsets == [second.first_offset(journey(i)) for i in ids]
    bins = [0] * 10
    for value in offsets:
        bins[int(value)] += 1  # every = 10 s: one bin per second
    assert min(bins) >= 50, bins  # a uniform spread: 100 per bin, give or take 5 sigma
    assert max(bins) <= 150, bins


async def test_jitter_delays_runs_within_its_bound(make: SchedulerFactory) -> None:
    """With jitter, each run starts up to schedule.jitter after its due time, not before."""
    clock = VirtualClock()
    runner = FakeRunner(clock)
    scheduler = make(runner, clock=clock)
    scheduler.update([journey("checkout", jitter=2)])
    first = offset("checkout", 10)
    await clock.advance(first + 95)
    delays = [t - (first + k * 10) for k, t in enumerate(runner.times("checkout"))]
    assert len(delays) == 10
    assert all(0 <= d <= 2 for d in delays)
    assert len({round(d, 6) for d in delays}) > 1  # really random, not a fixed shift
    await scheduler.shutdown(1)


async def test_run_slower_than_interval_is_skipped_and_counted(
    make: SchedulerFactory, registry: CollectorRegistry
) -> None:
    """A run still in flight when the next is due: the next is skipped and counted."""
    clock = VirtualClock()
    runner = FakeRunner(clock, duration=2.5)
    scheduler = make(runner, clock=clock, location="eu-west-1")
    scheduler.update([journey("checkout", every=1)])
    first = offset("checkout", 1)
    await clock.advance(first + 6.5)  # due at +0..+6: runs at +0, +3, +6
    assert runner.times("checkout") == [round(first + k, 9) for k in (0, 3, 6)]
    labels = {
        "journey": "checkout",
        "business_process": "order-to-cash",
        "persona": "customer",
        "location": "eu-west-1",
    }
    assert registry.get_sample_value("journeyman_skipped_runs_total", labels) == 4
    await scheduler.shutdown(0)


async def test_concurrency_limit_is_respected_and_lag_measured(
    make: SchedulerFactory, registry: CollectorRegistry
) -> None:
    """No more runs in flight than max_concurrency; the wait for a slot is lag."""
    clock = VirtualClock()
    runner = FakeRunner(clock, duration=5)
    ids = ids_near_zero_phase(3)
    scheduler = make(runner, clock=clock, max_concurrency=1)
    scheduler.update([journey(i, every=100) for i in ids])
    await clock.advance(20)
    assert runner.peak == 1
    starts = sorted(t for _, t in runner.starts)
    assert len(starts) == 3
    due = sorted(offset(i, 100) for i in ids)
    expected_lag = sum(start - d for start, d in zip(starts, due, strict=True))
    assert expected_lag > 5  # the second and third waited for the single slot
    lag_sum = registry.get_sample_value("journeyman_scheduler_lag_seconds_sum")
    assert lag_sum == pytest.approx(expected_lag)
    assert registry.get_sample_value("journeyman_scheduler_lag_seconds_count") == 3
    await scheduler.shutdown(0)


async def test_in_flight_and_loaded_gauges(
    make: SchedulerFactory, registry: CollectorRegistry
) -> None:
    """journeyman_runs_in_flight counts runs inside the runner; journeys_loaded the set."""
    clock = VirtualClock()
    runner = FakeRunner(clock, duration=5)
    ids = ids_near_zero_phase(2)
    scheduler = make(runner, clock=clock)
    scheduler.update([journey(i, every=100) for i in ids])
    await clock.advance(1)
    assert registry.get_sample_value("journeyman_journeys_loaded") == 2
    assert registry.get_sample_value("journeyman_runs_in_flight") == 2
    await clock.advance(5)
    assert registry.get_sample_value("journeyman_runs_in_flight") == 0
    await scheduler.shutdown(0)


async def test_failing_journey_runs_at_the_faster_interval_until_it_recovers(
    make: SchedulerFactory,
) -> None:
    """After a failure the next run is due every_when_failing later, until one succeeds."""
    clock = VirtualClock()
    runner = FakeRunner(clock, duration=0.5)
    runner.outcomes["checkout"] = [True, False, False, True]
    scheduler = make(runner, clock=clock)
    scheduler.update([journey("checkout", every=10, every_when_failing=2)])
    first = offset("checkout", 10)
    await clock.advance(first + 45)
    expected = [first, first + 10, first + 12, first + 14, first + 24, first + 34, first + 44]
    assert runner.times("checkout") == [round(t, 9) for t in expected]
    await scheduler.shutdown(0)


async def test_peak_hours_use_every_at_peak(make: SchedulerFactory) -> None:
    """In its process's peak hours (catalog timezone) a journey runs every_at_peak."""
    catalog = Catalog.model_validate(
        {
            "timezone": "Europe/Paris",  # 09:00 UTC is 10:00 in Paris in November
            "business_processes": [
                {
                    "id": "order-to-cash",
                    "name": "Sell",
                    "volume": {"per_hour": 5, "peak_hours": [10]},
                },
                {"id": "payroll", "name": "Pay", "volume": {"per_hour": 5, "peak_hours": [9]}},
            ],
        }
    )
    clock = VirtualClock()
    runner = FakeRunner(clock)
    scheduler = make(runner, clock=clock, catalog=catalog)
    peak = journey("checkout", every=10, every_at_peak=2)
    quiet = journey("salaries", process="payroll", every=10, every_at_peak=2)
    scheduler.update([peak, quiet])
    await clock.advance(20)
    first = offset("checkout", 2)
    assert runner.times("checkout") == [round(first + 2 * k, 9) for k in range(10)]
    assert len(runner.times("salaries")) == 2
    await scheduler.shutdown(0)


async def test_update_adds_replaces_keeping_phase_and_removes(
    make: SchedulerFactory, registry: CollectorRegistry, exported: list[RunResult]
) -> None:
    """update() reports what changed; a replaced journey keeps its phase; a removed one stops,
    its in-flight run finishes, its result is dropped and its skipped series removed."""
    clock = VirtualClock()
    runner = FakeRunner(clock, duration=3)
    scheduler = make(runner, clock=clock)
    a, b = journey("alpha"), journey("beta")
    assert scheduler.update([a, b]).added == ("alpha", "beta")
    await clock.advance(offset("beta", 10) + 1)  # beta's first run is in flight
    changed = journey("alpha", every=10, retries=1)
    update = scheduler.update([changed, journey("gamma")])
    assert (update.added, update.replaced, update.removed) == (("gamma",), ("alpha",), ("beta",))
    assert [j.journey for j in update.journeys] == ["alpha", "gamma"]
    assert scheduler.update([changed, journey("gamma")]).replaced == ()  # unchanged: no-op
    await clock.advance(40)
    assert len(runner.times("beta")) == 1
    assert "beta" not in {r.journey for r in exported}
    grid = [offset("alpha", 10) + 10 * k for k in range(10)]
    assert runner.times("alpha") == [round(t, 9) for t in grid if t <= clock.now]
    assert len(runner.times("gamma")) == 4
    beta = {"journey": "beta", "business_process": "order-to-cash", "persona": "customer"}
    assert (
        registry.get_sample_value("journeyman_skipped_runs_total", {**beta, "location": "local"})
        is None
    )
    assert registry.get_sample_value("journeyman_journeys_loaded") == 2
    await scheduler.shutdown(0)


async def test_runner_or_exporter_crash_never_stops_the_schedule(
    registry: CollectorRegistry,
) -> None:
    """A runner that raises yields an internal failure; an exporter that raises is logged
    with the exception (for its traceback)."""
    clock = VirtualClock()
    seen: list[RunResult] = []
    captured = structlog.testing.CapturingLogger()

    async def broken_run(j: Journey, ids: RunIds) -> RunResult:
        raise ValueError("boom")

    def flaky_export(r: RunResult) -> None:
        seen.append(r)
        if len(seen) == 1:
            raise RuntimeError("exporter bug")

    scheduler = Scheduler(
        run=broken_run,
        export=flaky_export,
        registry=registry,
        logger=structlog.wrap_logger(captured, processors=[]),
        clock=clock,
    )
    scheduler.update([journey("checkout")])
    await clock.advance(30)
    assert len(seen) == 3
    assert {(r.outcome, r.reason) for r in seen} == {(Outcome.FAILURE, FailureReason.INTERNAL)}
    (failed,) = [c.kwargs for c in captured.calls if c.kwargs["event"] == "export_failed"]
    assert failed["error"] == "RuntimeError('exporter bug')"
    assert isinstance(failed["exc_info"], RuntimeError)
    await scheduler.shutdown(0)


async def test_shutdown_lets_a_run_finish_within_grace(
    make: SchedulerFactory, exported: list[RunResult]
) -> None:
    """A run in flight that ends within the grace period is exported as it ended."""
    started = asyncio.Event()

    async def run(j: Journey, ids: RunIds) -> RunResult:
        started.set()
        await asyncio.sleep(0.2)
        return result(j)

    scheduler = make(run)
    scheduler.update([journey(ids_near_zero_phase(1)[0], every=1)])
    await started.wait()
    await scheduler.shutdown(10)
    assert [r.outcome for r in exported] == [Outcome.SUCCESS]
    assert scheduler.in_flight == 0


async def test_shutdown_cuts_off_a_run_beyond_grace_as_aborted(
    make: SchedulerFactory, exported: list[RunResult]
) -> None:
    """A run still going when the grace period ends is cancelled and exported as aborted;
    a run not started yet is dropped; no run starts after shutdown."""
    started = asyncio.Event()
    cancelled: list[str] = []

    async def run(j: Journey, ids: RunIds) -> RunResult:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(j.journey)
            raise
        return result(j)

    slow, waiting = ids_near_zero_phase(2)
    scheduler = make(run, max_concurrency=1)
    scheduler.update([journey(slow, every=100), journey(waiting, every=100)])
    await started.wait()
    await scheduler.shutdown(0.1)
    assert len(cancelled) == 1
    assert len(exported) == 1
    aborted = exported[0]
    assert (aborted.outcome, aborted.reason) == (Outcome.ABORTED, FailureReason.ABORTED)
    assert aborted.journey == cancelled[0]
    assert aborted.duration >= 0.1
    with pytest.raises(RuntimeError, match="shut down"):
        scheduler.update([])
