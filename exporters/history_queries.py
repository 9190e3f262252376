"""Reading the history: what the status page, its restart and the report ask of it.

Plain functions over an open ``sqlite3.Connection`` (the history runs them in its own
thread) and the small arithmetic they share: percentiles, failure streaks, SLO figures.
Only success and failure count for SLOs, ratios and streaks; aborted and not-started
runs measured nothing (as in the generated recording rules).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agent.run.results import FailureReason, Outcome, RunResult
from exporters.history_schema import (
    COLUMNS,
    SUMMARY_COLUMNS,
    RunSummary,
    result_from_row,
    summary_from_row,
)

__all__ = [
    "Bucket",
    "Inventory",
    "JourneyFigures",
    "Restored",
    "Streak",
    "bucket_rows",
    "inventory",
    "journey_figures",
    "last_runs",
    "percentile",
    "restore",
    "run",
    "streaks",
    "summaries_between",
]

_COUNTED = "outcome IN ('success', 'failure')"


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` 0.95 for p95) of ``values``; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class Bucket:
    """Runs of one journey in one time bucket of the 24-hour strip."""

    index: int  # floor(started_at / bucket seconds)
    successes: int = 0
    failures: int = 0
    slowest: float = 0.0  # the slowest successful run, seconds
    total: float = 0.0  # summed durations of successful runs

    def plus(self, ok: bool, duration: float) -> Bucket:
        if not ok:
            return Bucket(self.index, self.successes, self.failures + 1, self.slowest, self.total)
        return Bucket(
            self.index,
            self.successes + 1,
            self.failures,
            max(self.slowest, duration),
            self.total + duration,
        )


@dataclass(frozen=True, slots=True)
class Restored:
    """What the status board needs after a restart, from the last 24 hours."""

    recent: dict[str, list[RunSummary]]  # newest first, a few per journey
    hour: list[RunSummary]  # counted runs of the last hour, oldest first
    buckets: dict[str, list[Bucket]]
    failing_since: dict[str, tuple[float, int]]  # journey -> (streak start, failed runs)


def restore(connection: sqlite3.Connection, now: float, *, bucket: float, keep: int) -> Restored:
    """The board's state as of ``now``: the last ``keep`` runs per journey, the last hour,
    the strip's buckets, and the start of each current failure streak."""
    day = now - 86400.0
    rows = connection.execute(
        f"SELECT {SUMMARY_COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER "
        "(PARTITION BY journey ORDER BY started_at DESC) AS n FROM runs WHERE started_at >= ?) "
        "WHERE n <= ? ORDER BY journey, started_at DESC",
        (day, keep),
    )
    recent: dict[str, list[RunSummary]] = {}
    for row in rows:
        summary = summary_from_row(row)
        recent.setdefault(summary.journey, []).append(summary)
    hour = [
        summary_from_row(row)
        for row in connection.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM runs WHERE started_at >= ? AND {_COUNTED} "
            "ORDER BY started_at",
            (now - 3600.0,),
        )
    ]
    buckets = bucket_rows(connection, day, bucket)
    failing: dict[str, tuple[float, int]] = {}
    for journey, runs in recent.items():
        last = next((r for r in runs if r.counted), None)
        if last is not None and not last.ok:
            failing[journey] = _streak_start(connection, journey)
    return Restored(recent, hour, buckets, failing)


def bucket_rows(
    connection: sqlite3.Connection, since: float, bucket: float
) -> dict[str, list[Bucket]]:
    """Per journey, the strip's buckets from ``since`` (counted runs only)."""
    found: dict[str, list[Bucket]] = {}
    rows = connection.execute(
        "SELECT journey, CAST(started_at / ? AS INTEGER) AS b, "
        "SUM(outcome = 'success'), SUM(outcome = 'failure'), "
        "MAX(CASE WHEN outcome = 'success' THEN duration ELSE 0 END), "
        "SUM(CASE WHEN outcome = 'success' THEN duration ELSE 0 END) "
        f"FROM runs WHERE started_at >= ? AND {_COUNTED} GROUP BY journey, b ORDER BY journey, b",
        (bucket, since),
    )
    for journey, index, ok, bad, slowest, total in rows:
        found.setdefault(journey, []).append(
            Bucket(int(index), int(ok), int(bad), float(slowest), float(total))
        )
    return found


def _streak_start(connection: sqlite3.Connection, journey: str) -> tuple[float, int]:
    """When the journey's current failure streak began, and how many runs it has failed."""
    last_ok = connection.execute(
        "SELECT started_at FROM runs WHERE journey = ? AND outcome = 'success' "
        "ORDER BY started_at DESC LIMIT 1",
        (journey,),
    ).fetchone()
    since = last_ok[0] if last_ok else -math.inf
    start, count = connection.execute(
        "SELECT MIN(started_at), COUNT(*) FROM runs WHERE journey = ? AND outcome = 'failure' "
        "AND started_at > ?",
        (journey, since),
    ).fetchone()
    return float(start), int(count)


@dataclass(frozen=True, slots=True)
class JourneyFigures:
    """A journey's SLO and latency figures from the history, as of ``now``."""

    now: float
    window: float  # the SLO window asked for, seconds
    covered_from: float | None  # the first run inside the window (None: no run)
    history_from: float | None  # the first run the history holds for this journey
    successes: int
    failures: int
    slow: int  # successful runs slower than the latency threshold
    durations_day: tuple[float, ...]  # successful runs of the last 24 h, oldest first
    starts_day: tuple[float, ...]  # their start times

    @property
    def covered(self) -> float:
        """Seconds of the window the history actually covers."""
        return 0.0 if self.covered_from is None else self.now - self.covered_from

    def latency(self, over: float, share: float) -> float | None:
        """The ``share`` percentile of successful runs of the last ``over`` seconds."""
        since = self.now - over
        values = [d for d, s in zip(self.durations_day, self.starts_day, strict=True) if s >= since]
        return percentile(values, share)

    def count(self, over: float) -> int:
        since = self.now - over
        return sum(1 for s in self.starts_day if s >= since)


def journey_figures(
    connection: sqlite3.Connection, journey: str, now: float, window: float, threshold: float
) -> JourneyFigures:
    """Counts over the SLO ``window`` and the durations of the last day."""
    since = now - window
    first, ok, bad, slow = connection.execute(
        "SELECT MIN(started_at), SUM(outcome = 'success'), SUM(outcome = 'failure'), "
        "SUM(outcome = 'success' AND duration > ?) "
        f"FROM runs WHERE journey = ? AND started_at >= ? AND started_at <= ? AND {_COUNTED}",
        (threshold, journey, since, now),
    ).fetchone()
    (oldest,) = connection.execute(
        "SELECT MIN(started_at) FROM runs WHERE journey = ?", (journey,)
    ).fetchone()
    day = connection.execute(
        "SELECT started_at, duration FROM runs WHERE journey = ? AND outcome = 'success' "
        "AND started_at >= ? AND started_at <= ? ORDER BY started_at",
        (journey, now - 86400.0, now),
    ).fetchall()
    return JourneyFigures(
        now=now,
        window=window,
        covered_from=first,
        history_from=oldest,
        successes=int(ok or 0),
        failures=int(bad or 0),
        slow=int(slow or 0),
        durations_day=tuple(float(d) for _, d in day),
        starts_day=tuple(float(s) for s, _ in day),
    )


def last_runs(connection: sqlite3.Connection, journey: str, limit: int) -> list[RunSummary]:
    """The journey's newest ``limit`` runs, newest first."""
    rows = connection.execute(
        f"SELECT {SUMMARY_COLUMNS} FROM runs WHERE journey = ? ORDER BY started_at DESC LIMIT ?",
        (journey, limit),
    )
    return [summary_from_row(row) for row in rows]


def run(connection: sqlite3.Connection, run_id: str) -> RunResult | None:
    """One run with its steps (empty once its detail was pruned), or None."""
    row = connection.execute(f"SELECT {COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else result_from_row(row)


def summaries_between(
    connection: sqlite3.Connection, since: float, until: float
) -> list[RunSummary]:
    """Every run started in ``[since, until)``, oldest first."""
    rows = connection.execute(
        f"SELECT {SUMMARY_COLUMNS} FROM runs WHERE started_at >= ? AND started_at < ? "
        "ORDER BY started_at, run_id",
        (since, until),
    )
    return [summary_from_row(row) for row in rows]


@dataclass(frozen=True, slots=True)
class Inventory:
    """The journeys and catalog the agent last ran, as stored in the history."""

    journeys: dict[str, dict[str, Any]]  # Journey.model_dump(mode="json") minus steps
    processes: dict[str, dict[str, Any]]  # BusinessProcess.model_dump(mode="json")
    meta: dict[str, str]


def inventory(connection: sqlite3.Connection) -> Inventory:
    journeys = {
        j: json.loads(s) for j, s in connection.execute("SELECT journey, spec FROM journeys")
    }
    processes = {
        p: json.loads(s)
        for p, s in connection.execute("SELECT business_process, spec FROM processes")
    }
    meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    return Inventory(journeys, processes, meta)


@dataclass(frozen=True, slots=True)
class Streak:
    """Consecutive failed runs of one journey, up to the success that ended them."""

    journey: str
    start: float  # the first failed run's start
    end: float | None  # the next successful run's start; None while still failing
    last_failure: float  # the last failed run's start
    failures: int
    failed_step: str | None  # of the first failed run
    reason: FailureReason | None
    message: str


def streaks(runs: Iterable[RunSummary]) -> list[Streak]:
    """The failure streaks in ``runs`` (any journeys, in time order), by start time."""
    found: list[Streak] = []
    open_: dict[str, Streak] = {}
    for summary in runs:
        if not summary.counted:
            continue
        current = open_.get(summary.journey)
        if summary.outcome is Outcome.FAILURE:
            if current is None:
                open_[summary.journey] = Streak(
                    summary.journey,
                    summary.started_at,
                    None,
                    summary.started_at,
                    1,
                    summary.failed_step,
                    summary.reason,
                    summary.message,
                )
            else:
                open_[summary.journey] = _extended(current, summary.started_at)
        elif current is not None:
            found.append(_ended(current, summary.started_at))
            del open_[summary.journey]
    found.extend(open_.values())
    return sorted(found, key=lambda s: (s.start, s.journey))


def _extended(streak: Streak, at: float) -> Streak:
    return Streak(
        streak.journey,
        streak.start,
        None,
        at,
        streak.failures + 1,
        streak.failed_step,
        streak.reason,
        streak.message,
    )


def _ended(streak: Streak, at: float) -> Streak:
    return Streak(
        streak.journey,
        streak.start,
        at,
        streak.last_failure,
        streak.failures,
        streak.failed_step,
        streak.reason,
        streak.message,
    )
