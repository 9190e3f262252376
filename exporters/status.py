"""The status board: what is hurting now, per business process, and what it costs.

:class:`StatusBoard` is an exporter. It keeps, in memory and for the journeys loaded,
what the overview needs at once: each journey's last runs, its current failure streak,
its counted runs of the last hour and a 24-hour strip of half-hour buckets. With a
:class:`~exporters.history.History` it restores that state from the history when it
starts (so a restart keeps streaks and strips) and reads the history for the journey
pages (SLO attainment, budget, percentiles, past runs and their steps).

States, worst first: **failing** (the last counted run failed), **degraded** (it passed,
but a run failed within the hour or the last one was slower than its latency SLO),
**no data** (no run yet), **ok**. A process takes its worst journey's state and its
highest criticality. Only success and failure count; aborted and not-started runs
measured nothing.

At risk now is the arithmetic of the generated recording rules
(``business_process:transactions_at_risk:rate1h``): failed runs over finished runs of
all the process's journeys in the last hour, times the catalog's expected transactions
for this hour (in the catalog's time zone), times the value per transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from agent.language.catalog import BusinessProcess, Catalog
from agent.language.model import Journey
from agent.run.results import Outcome, RunResult
from exporters.base import NoLifecycle
from exporters.history import History, HistoryStatus, HistoryUnavailable
from exporters.history_queries import (
    Bucket,
    JourneyFigures,
    journey_figures,
    last_runs,
    restore,
    run,
)
from exporters.history_schema import RunSummary

__all__ = [
    "BUCKETS",
    "BUCKET_SECONDS",
    "JourneyPage",
    "JourneyRow",
    "Overview",
    "ProcessRow",
    "State",
    "StatusBoard",
]

BUCKET_SECONDS = 1800.0  # the strip's marks: half hours
BUCKETS = 48  # 24 hours
HOUR = 3600.0
KEEP = 10  # last runs per journey kept in memory
PAGE_RUNS = 20  # last runs on a journey page
RESTORE_SECONDS = 8.0  # within the exporters' start bound (10 s)
_CRITICALITY = {"low": 0, "medium": 1, "high": 2, "critical": 3}


class State(Enum):
    """A journey's or process's state, with its rank (higher is worse) and its words."""

    OK = (0, "OK", "working")
    NO_DATA = (1, "No data", "not run yet")
    DEGRADED = (2, "Degraded", "working, but failed or slow within the hour")
    FAILING = (3, "Failing", "the last run failed")

    def __init__(self, rank: int, word: str, meaning: str) -> None:
        self.rank = rank
        self.word = word
        self.meaning = meaning

    @property
    def css(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True, slots=True)
class JourneyRow:
    """One journey as the overview shows it."""

    journey: Journey
    state: State
    last: RunSummary | None  # the newest run, of any outcome
    failing_since: float | None  # start of the first failed run of the current streak
    streak: int  # failed runs in that streak
    buckets: tuple[Bucket, ...]  # the strip's buckets that hold runs, oldest first
    running_since: float | None  # a run of it is in flight since then

    @property
    def threshold(self) -> float | None:
        slo = self.journey.slo
        return slo.latency.threshold if slo and slo.latency else None


@dataclass(frozen=True, slots=True)
class ProcessRow:
    """One business process: its state, what is at risk, where it runs."""

    id: str
    process: BusinessProcess | None  # None when the catalog does not list it
    state: State
    criticality: str
    journeys: tuple[JourneyRow, ...]
    failing_since: float | None
    runs_hour: int  # finished (success or failure) runs of its journeys in the last hour
    failures_hour: int
    expected_per_hour: float | None  # the catalog's normal volume for this hour
    hour: int | None  # that hour, in the catalog's time zone

    @property
    def name(self) -> str:
        return self.process.name if self.process else self.id

    @property
    def owner(self) -> str:
        if self.process and self.process.owner:
            return self.process.owner
        return ", ".join(sorted({j.journey.owner for j in self.journeys if j.journey.owner}))

    @property
    def failure_ratio(self) -> float | None:
        return self.failures_hour / self.runs_hour if self.runs_hour else None

    @property
    def at_risk(self) -> float | None:
        """Transactions per hour at risk (None without runs in the hour or a volume)."""
        if self.failure_ratio is None or self.expected_per_hour is None:
            return None
        return self.failure_ratio * self.expected_per_hour

    @property
    def value_at_risk(self) -> float | None:
        price = self.process.value_per_transaction if self.process else None
        return None if self.at_risk is None or price is None else self.at_risk * price

    @property
    def currency(self) -> str:
        return self.process.currency if self.process else ""


@dataclass(frozen=True, slots=True)
class Overview:
    """The whole agent: its processes worst first, and the history's health."""

    location: str
    now: float
    timezone: str
    processes: tuple[ProcessRow, ...]
    history: HistoryStatus | None
    in_flight: Mapping[str, float]

    @property
    def state(self) -> State:
        return max((p.state for p in self.processes), key=lambda s: s.rank, default=State.NO_DATA)

    def count(self, state: State) -> int:
        return sum(1 for p in self.processes if p.state is state)


@dataclass(frozen=True, slots=True)
class JourneyPage:
    """One journey: its row, its process, the history's figures and runs, one run."""

    overview: Overview
    process: ProcessRow
    row: JourneyRow
    figures: JourneyFigures | None
    runs: tuple[RunSummary, ...]  # newest first
    chosen: RunResult | None
    history_problem: str | None  # why the history could not answer, if it could not


@dataclass(eq=False)
class _Live:
    """What the board keeps of one journey."""

    recent: deque[RunSummary] = field(default_factory=lambda: deque(maxlen=KEEP))
    results: dict[str, RunResult] = field(default_factory=dict)  # without a history only
    last_counted: RunSummary | None = None
    failing_since: float | None = None
    streak: int = 0
    hour: deque[tuple[float, bool]] = field(default_factory=deque)  # counted runs, 1 h
    buckets: dict[int, Bucket] = field(default_factory=dict)

    def record(self, summary: RunSummary) -> None:
        self.recent.appendleft(summary)
        if not summary.counted:
            return
        self.last_counted = summary
        if summary.ok:
            self.failing_since, self.streak = None, 0
        else:
            if self.failing_since is None:
                self.failing_since = summary.started_at
            self.streak += 1
        self.hour.append((summary.started_at, summary.ok))
        index = int(summary.started_at // BUCKET_SECONDS)
        bucket = self.buckets.get(index, Bucket(index))
        self.buckets[index] = bucket.plus(summary.ok, summary.duration)

    def forget_before(self, now: float) -> None:
        while self.hour and self.hour[0][0] < now - HOUR:
            self.hour.popleft()
        first = int(now // BUCKET_SECONDS) - BUCKETS + 1
        for index in [i for i in self.buckets if i < first]:
            del self.buckets[index]


class StatusBoard(NoLifecycle):
    """The live state of each loaded journey; with a history, restored on start and
    read for the journey pages. ``in_flight()`` gives the journeys running now and when
    their run started."""

    def __init__(
        self,
        history: History | None = None,
        *,
        location: str = "",
        in_flight: Callable[[], Mapping[str, float]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.history = history
        self.location = location
        self._in_flight = in_flight or dict
        self._clock = clock
        self._journeys: dict[str, Journey] = {}
        self._catalog: Catalog | None = None
        self._live: dict[str, _Live] = {}
        self._changes = 0

    async def start(self) -> None:
        """Take the last 24 hours back from the history (nothing without one, when it
        cannot answer, or not within ``RESTORE_SECONDS``, so that the exporters' start
        stays within its bound)."""
        if self.history is None:
            return
        now = self._clock()
        try:
            async with asyncio.timeout(RESTORE_SECONDS):
                restored = await self.history.read(restore, now, bucket=BUCKET_SECONDS, keep=KEEP)
        except (HistoryUnavailable, TimeoutError):
            return  # the board starts empty; the journey pages still read the history
        for journey, runs in restored.recent.items():
            live = self._live.setdefault(journey, _Live())
            live.recent.extend(runs)  # newest first
            live.last_counted = next((r for r in runs if r.counted), None)
        for summary in restored.hour:
            self._live.setdefault(summary.journey, _Live()).hour.append(
                (summary.started_at, summary.ok)
            )
        for journey, buckets in restored.buckets.items():
            self._live.setdefault(journey, _Live()).buckets = {b.index: b for b in buckets}
        for journey, (since, count) in restored.failing_since.items():
            live = self._live[journey]
            live.failing_since, live.streak = since, count
        self._changes += 1

    def set_inventory(self, journeys: Sequence[Journey], catalog: Catalog | None) -> None:
        """Take the journeys now loaded; forget the state of those that are gone."""
        self._journeys = {journey.journey: journey for journey in journeys}
        self._catalog = catalog
        for gone in set(self._live) - set(self._journeys):
            del self._live[gone]
        if self.history is not None:
            self.history.set_inventory(journeys, catalog)
        self._changes += 1

    def export(self, result: RunResult) -> None:
        """Take one finished run of a loaded journey (others are ignored)."""
        if result.journey not in self._journeys:
            return
        live = self._live.setdefault(result.journey, _Live())
        live.record(RunSummary.of(result))
        if self.history is None:  # else the history has them, whole, for the pages
            # (~25 objects each, that every full collection of the garbage collector walks:
            # 50,000 with 1,000 journeys, a pause that delays the runs due meanwhile)
            live.results[result.run_id] = result
            while len(live.results) > 2:  # the newest two
                del live.results[next(iter(live.results))]
        self._changes += 1

    @property
    def version(self) -> str:
        """Changes whenever a run finishes or starts, or the inventory changes."""
        flying = sorted(self._in_flight().items())
        return f"{self._changes}-{zlib.crc32(repr(flying).encode()):08x}"

    def overview(self) -> Overview:
        """Every loaded journey's process, worst first (state, then criticality, then name)."""
        now = self._clock()
        flying = dict(self._in_flight())
        grouped: dict[str, list[JourneyRow]] = {}
        for journey_id in sorted(self._journeys):
            journey = self._journeys[journey_id]
            grouped.setdefault(journey.business_process, []).append(
                self._row(journey, now, flying.get(journey_id))
            )
        processes = [self._process(pid, rows, now) for pid, rows in grouped.items()]
        processes.sort(key=lambda p: (-p.state.rank, -_CRITICALITY[p.criticality], p.name))
        history = self.history.status if self.history is not None else None
        timezone = self._catalog.timezone if self._catalog else "UTC"
        return Overview(self.location, now, timezone, tuple(processes), history, flying)

    async def journey_page(self, journey_id: str, run_id: str | None = None) -> JourneyPage | None:
        """One loaded journey with what the history says of it; None if not loaded."""
        overview = self.overview()
        found = [
            (p, r)
            for p in overview.processes
            for r in p.journeys
            if r.journey.journey == journey_id
        ]
        if not found:
            return None
        process, row = found[0]
        live = self._live.get(journey_id, _Live())
        runs: tuple[RunSummary, ...] = tuple(live.recent)
        wanted = run_id or (runs[0].run_id if runs else None)
        chosen = live.results.get(wanted) if wanted else None
        figures, problem = None, None
        if self.history is not None:
            slo = row.journey.slo
            window = slo.window if slo else 28 * 86400.0
            threshold = slo.latency.threshold if slo and slo.latency else float("inf")
            try:
                figures, listed, stored = await self.history.read(
                    _journey_reads, journey_id, overview.now, window, threshold, wanted
                )
            except HistoryUnavailable as error:
                problem = str(error) or "the history is unavailable"
                chosen = self.history.unwritten(wanted) if wanted else None
            else:
                runs = tuple(listed) or runs
                chosen = stored if stored is not None and stored.journey == journey_id else chosen
        if chosen is not None and chosen.journey != journey_id:
            chosen = None
        return JourneyPage(overview, process, row, figures, runs, chosen, problem)

    def _row(self, journey: Journey, now: float, running: float | None) -> JourneyRow:
        live = self._live.get(journey.journey)
        if live is None:
            return JourneyRow(journey, State.NO_DATA, None, None, 0, (), running)
        live.forget_before(now)
        state = _state(journey, live)
        buckets = tuple(live.buckets[i] for i in sorted(live.buckets))
        last = live.recent[0] if live.recent else None
        return JourneyRow(journey, state, last, live.failing_since, live.streak, buckets, running)

    def _process(self, process_id: str, rows: list[JourneyRow], now: float) -> ProcessRow:
        catalog = self._catalog
        process = catalog.process(process_id) if catalog else None
        state = max((r.state for r in rows), key=lambda s: s.rank)
        criticality = max((r.journey.criticality for r in rows), key=_CRITICALITY.__getitem__)
        runs = failures = 0
        for row in rows:
            live = self._live.get(row.journey.journey)
            if live is not None:
                runs += len(live.hour)
                failures += sum(1 for _, ok in live.hour if not ok)
        since = [r.failing_since for r in rows if r.state is State.FAILING and r.failing_since]
        expected = hour = None
        if catalog is not None and process is not None and process.volume is not None:
            hour = catalog.local_hour(now)
            expected = process.volume.expected(hour)
        return ProcessRow(
            process_id,
            process,
            state,
            criticality,
            tuple(rows),
            min(since, default=None),
            runs,
            failures,
            expected,
            hour,
        )


def _state(journey: Journey, live: _Live) -> State:
    last = live.last_counted
    if last is None:
        return State.NO_DATA
    if last.outcome is Outcome.FAILURE:
        return State.FAILING
    slo = journey.slo
    slow = bool(slo and slo.latency and last.duration > slo.latency.threshold)
    if slow or any(not ok for _, ok in live.hour):
        return State.DEGRADED
    return State.OK


def _journey_reads(
    connection: sqlite3.Connection,
    journey: str,
    now: float,
    window: float,
    threshold: float,
    run_id: str | None,
) -> tuple[JourneyFigures, list[RunSummary], RunResult | None]:
    """The journey page's reads, in one visit to the history's thread."""
    figures = journey_figures(connection, journey, now, window, threshold)
    listed = last_runs(connection, journey, PAGE_RUNS)
    stored = run(connection, run_id) if run_id else None
    return figures, listed, stored
