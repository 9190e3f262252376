"""The exporters' fan-out: every result to every exporter, one raising never starving the
others; start and close in order, each isolated and time-bounded."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import prometheus_client
import pytest
import structlog
from prometheus_client import CollectorRegistry
from structlog.testing import CapturingLogger
from test_scheduler import ids_near_zero_phase, journey, result
from test_scheduler_runner import Collected, http_journey

from agent.run.context import RunEnvironment
from agent.run.results import FailureReason, RunResult, StepResult
from agent.run.runner import run_journey
from agent.schedule.scheduler import Scheduler
from exporters.base import Exporter, NoLifecycle
from exporters.console import ConsoleExporter
from exporters.fanout import Fanout
from exporters.logs import LogExporter
from exporters.prometheus import PrometheusExporter
from exporters.status import StatusBoard

ERRORS = "journeyman_exporter_errors_total"


class Recorder(NoLifecycle):
    """A good exporter: keeps every result it is handed."""

    def __init__(self) -> None:
        self.collected = Collected()

    def export(self, result: RunResult) -> None:
        self.collected(result)


class Broken(NoLifecycle):
    """An exporter with a bug: raises on every result."""

    def export(self, result: RunResult) -> None:
        raise RuntimeError(f"exporter bug on {result.journey}")


class Lifecycle:
    """Writes its start, results and close to a shared journal; an operation named in
    ``fail`` raises, one named in ``wait`` waits for its event first (and notes when done);
    ``entered`` tells when each operation began."""

    def __init__(
        self,
        name: str,
        journal: list[str],
        *,
        fail: frozenset[str] = frozenset(),
        wait: Mapping[str, asyncio.Event] | None = None,
    ) -> None:
        self.name, self.journal, self.fail, self.wait = name, journal, fail, wait or {}
        self.results: list[RunResult] = []
        self.entered: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    async def start(self) -> None:
        await self._do("start")

    def export(self, result: RunResult) -> None:
        self.journal.append(f"{self.name}.export")
        self.results.append(result)

    async def close(self) -> None:
        await self._do("close")

    async def _do(self, operation: str) -> None:
        self.journal.append(f"{self.name}.{operation}")
        self.entered[operation].set()
        if operation in self.wait:
            await self.wait[operation].wait()
            self.journal.append(f"{self.name}.{operation} done")
        if operation in self.fail:
            raise OSError(f"{self.name} cannot {operation}")


def traceback_logger() -> tuple[Any, CapturingLogger]:
    """A logger that renders ``exc_info`` as a traceback, and what it captured."""
    captured = CapturingLogger()
    logger = structlog.wrap_logger(
        captured,
        processors=[structlog.processors.format_exc_info],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
    return logger, captured


def events(captured: CapturingLogger, name: str) -> list[dict[str, Any]]:
    return [call.kwargs for call in captured.calls if call.kwargs.get("event") == name]


def errors(registry: CollectorRegistry, exporter: str, operation: str) -> float | None:
    return registry.get_sample_value(ERRORS, {"exporter": exporter, "operation": operation})


async def test_a_raising_exporter_starves_neither_neighbour(
    shop: str, run_env: RunEnvironment
) -> None:
    """Real runs through the scheduler: an exporter raising between two good ones is logged
    with its traceback and counted on every result, and both good ones get every result."""
    first, second = Recorder(), Recorder()
    registry = CollectorRegistry()
    logger, captured = traceback_logger()
    exporters: dict[str, Exporter] = {"first": first, "broken": Broken(), "second": second}
    fanout = Fanout(exporters, registry=registry, logger=logger)
    (journey_id,) = ids_near_zero_phase(1)
    scheduler = Scheduler(
        run=lambda j, ids: run_journey(j, run_env, ids),
        export=fanout.export,
        registry=registry,
        logger=logger,
    )
    async with fanout:
        scheduler.update([http_journey(journey_id, f"{shop}/status/200", every=0.3, timeout=0.3)])
        try:
            await second.collected.until(3, journey_id)
        finally:
            await scheduler.shutdown(5)
    results = second.collected.results
    assert first.collected.results == results
    failed = events(captured, "exporter_failed")
    assert len(failed) == len(results) == errors(registry, "broken", "export")
    assert {(e["exporter"], e["operation"], e["journey"]) for e in failed} == {
        ("broken", "export", journey_id)
    }
    assert failed[0]["error"] == f"RuntimeError: exporter bug on {journey_id}"
    assert failed[0]["exception"].startswith("Traceback (most recent call last):")
    assert 'raise RuntimeError(f"exporter bug on {result.journey}")' in failed[0]["exception"]
    assert errors(registry, "first", "export") == errors(registry, "second", "export") == 0
    assert not events(captured, "export_failed")  # the scheduler never saw an error


async def test_start_and_close_keep_order_and_one_failing_stops_no_other() -> None:
    """Exporters start in order and close in reverse; one whose start raises is left out
    (no results, no close), one whose close raises does not stop the next; each counted
    on the registry given, never on the global one."""
    journal: list[str] = []
    registry = CollectorRegistry()
    logger, captured = traceback_logger()
    exporters = {
        "a": Lifecycle("a", journal),
        "b": Lifecycle("b", journal, fail=frozenset({"start"})),
        "c": Lifecycle("c", journal, fail=frozenset({"close"})),
        "d": Lifecycle("d", journal),
    }
    async with Fanout(exporters, registry=registry, logger=logger) as fanout:
        assert fanout.started == ("a", "c", "d")
        fanout.export(result(journey("checkout")))
    assert not fanout.started
    assert journal == [
        "a.start", "b.start", "c.start", "d.start",
        "a.export", "c.export", "d.export",
        "d.close", "c.close", "a.close",
    ]  # fmt: skip
    counted = {
        (name, operation): errors(registry, name, operation)
        for name in exporters
        for operation in ("start", "export", "close")
    }
    assert {key for key, count in counted.items() if count} == {("b", "start"), ("c", "close")}
    assert set(counted.values()) == {0, 1}
    failed = events(captured, "exporter_failed")
    assert [(e["exporter"], e["error"]) for e in failed] == [
        ("b", "OSError: b cannot start"),
        ("c", "OSError: c cannot close"),
    ]
    assert all("Traceback" in e["exception"] for e in failed)
    assert prometheus_client.REGISTRY.get_sample_value(ERRORS, {"exporter": "a"}) is None


async def test_a_hung_start_or_close_is_cut_off_at_the_timeout() -> None:
    """A start or a close that never returns is given up after the timeout and counted;
    the other exporters still start, get results and close."""
    journal: list[str] = []
    registry = CollectorRegistry()
    logger, captured = traceback_logger()
    never = asyncio.Event()
    exporters = {
        "a": Lifecycle("a", journal, wait={"start": never}),
        "b": Lifecycle("b", journal),
        "c": Lifecycle("c", journal, wait={"close": never}),
    }
    async with asyncio.timeout(5):
        async with Fanout(exporters, registry=registry, logger=logger, timeout=0.1) as fanout:
            assert fanout.started == ("b", "c")
            fanout.export(result(journey("checkout")))
    assert journal == [
        "a.start", "b.start", "c.start", "b.export", "c.export", "c.close", "b.close"
    ]  # fmt: skip
    assert errors(registry, "a", "start") == errors(registry, "c", "close") == 1
    failed = events(captured, "exporter_failed")
    assert [(e["exporter"], e["operation"], e["error"]) for e in failed] == [
        ("a", "start", "no answer within 0.1 s"),
        ("c", "close", "no answer within 0.1 s"),
    ]


async def test_close_runs_to_its_end_when_the_closing_task_is_cancelled() -> None:
    """Cancelling the task that closes the exporters lets every close finish, then the
    cancellation goes on."""
    journal: list[str] = []
    release = asyncio.Event()
    b = Lifecycle("b", journal, wait={"close": release})
    fanout = Fanout(
        {"a": Lifecycle("a", journal), "b": b},
        registry=CollectorRegistry(),
        logger=traceback_logger()[0],
    )
    await fanout.start()
    closing = asyncio.create_task(fanout.close())
    async with asyncio.timeout(5):
        await b.entered["close"].wait()
        closing.cancel()
        await asyncio.sleep(0.05)
        assert not closing.done()  # b's close goes on
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await closing
    assert journal[-3:] == ["b.close", "b.close done", "a.close"]
    assert not fanout.started


async def test_results_outside_start_and_close_are_reported_not_lost_silently() -> None:
    """A result handed over before start or after close reaches no exporter, and says so."""
    recorder = Recorder()
    logger, captured = traceback_logger()
    fanout = Fanout({"kept": recorder}, registry=CollectorRegistry(), logger=logger)
    fanout.export(result(journey("early")))
    async with fanout:
        fanout.export(result(journey("on-time")))
    fanout.export(result(journey("late")))
    assert [r.journey for r in recorder.collected.results] == ["on-time"]
    assert [e["journey"] for e in events(captured, "result_not_exported")] == ["early", "late"]


async def test_the_built_in_exporters_start_and_close_as_no_ops() -> None:
    """Prometheus, the status board, logs and console go through a whole life untouched."""
    registry = CollectorRegistry()
    logger, captured = traceback_logger()
    exporters: dict[str, Exporter] = {
        "prometheus": PrometheusExporter(registry, "here"),
        "status": StatusBoard(),
        "logs": LogExporter(logger, "here"),
        "console": ConsoleExporter(console := io.StringIO()),
    }
    async with Fanout(exporters, registry=registry, logger=logger) as fanout:
        assert fanout.started == tuple(exporters)
        fanout.export(result(journey("checkout")))
    assert not events(captured, "exporter_failed")
    assert [e["journey"] for e in events(captured, "journey_run")] == ["checkout"]
    assert "checkout" in console.getvalue()


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_a_run_is_one_log_line_with_its_steps_unless_a_step_failed_or_debug(level: int) -> None:
    """At info a passing run is one ``journey_run`` line carrying each step's duration; a
    failed step adds its own ``journey_step`` warning with reason and message; at debug
    every step has its line."""
    captured = CapturingLogger()
    logger = structlog.wrap_logger(
        captured, processors=[], wrapper_class=structlog.make_filtering_bound_logger(level)
    )
    exporter = LogExporter(logger, "here")
    home = StepResult("home", "http", True, 0.0, 0.1234567)
    pay = StepResult("pay", "http", False, 0.2, 0.05, FailureReason.HTTP_STATUS, "got 503")
    passed = dataclasses.replace(result(journey("checkout")), steps=(home, home))
    exporter.export(passed)
    lines = [(call.method_name, call.kwargs["event"]) for call in captured.calls]
    steps = [("debug", "journey_step")] * 2 if level == logging.DEBUG else []
    assert lines == [*steps, ("info", "journey_run")]
    run = events(captured, "journey_run")[0]
    assert run["steps"] == {"home": 0.123457}
    captured.calls.clear()
    failed = dataclasses.replace(result(journey("checkout"), ok=False), steps=(home, pay))
    exporter.export(failed)
    warned = [c.kwargs for c in captured.calls if c.method_name == "warning"]
    assert [w["event"] for w in warned] == ["journey_step", "journey_run"]
    assert (warned[0]["step"], warned[0]["reason"], warned[0]["error"]) == (
        "pay",
        FailureReason.HTTP_STATUS,
        "got 503",
    )
    assert warned[1]["steps"] == {"home": 0.123457, "pay": 0.05}
