"""``journeyman report``: what the business partner reviews, from the history alone.

For a period (``--since 7d`` up to now), per business process:

- **availability** of each journey (successful runs over finished runs) against its SLO,
  and the **latency** SLO (successful runs within the threshold), with p50 and p95;
- **budget used**: the share of the SLO window's error budget the period spent, at the
  period's own run rate: ``(bad ratio / (1 - objective)) x period / window``. A 7-day
  period at a burn rate of 2x uses 50% of a 28-day budget;
- **incidents**: failure streaks (consecutive failed runs of a journey, up to its next
  success), merged per process where they overlap, each with start, end, the failed
  steps and reasons;
- **transactions and value affected**, the recording rules' arithmetic summed over each
  incident: the share of the process's runs that failed during it, times the catalog's
  normal volume over its span (hour by hour, in the catalog's time zone), times the value
  per transaction.

Aborted and not-started runs count for nothing, as in the rules. Journeys, SLOs and
the catalog are those the agent last stored in the history.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from agent.language.catalog import BusinessProcess
from agent.language.model import SLO
from agent.run.results import FailureReason
from exporters.history import FILE_NAME
from exporters.history_queries import (
    Inventory,
    Streak,
    inventory,
    percentile,
    streaks,
    summaries_between,
)
from exporters.history_schema import SCHEMA_VERSION, RunSummary

__all__ = [
    "Incident",
    "JourneyReport",
    "ProcessReport",
    "Report",
    "ReportError",
    "budget_used",
    "build_report",
    "expected_transactions",
    "read_report",
]

_PIECE = 900.0  # seconds: time zones differ from UTC by whole quarter hours


class ReportError(Exception):
    """The history cannot be read for a report; the message says why."""


@dataclass(frozen=True, slots=True)
class JourneyReport:
    journey: str
    title: str
    successes: int
    failures: int
    slow: int  # successful runs slower than the latency threshold
    slo: SLO | None
    p50: float | None  # successful runs, seconds
    p95: float | None

    @property
    def finished(self) -> int:
        return self.successes + self.failures

    @property
    def availability(self) -> float | None:
        return self.successes / self.finished if self.finished else None

    @property
    def within_threshold(self) -> float | None:
        return (self.successes - self.slow) / self.successes if self.successes else None


@dataclass(frozen=True, slots=True)
class Incident:
    """Overlapping failure streaks of one process's journeys."""

    start: float
    end: float | None  # the start of the run that ended it; None while ongoing
    streaks: tuple[Streak, ...]
    runs: int  # finished runs of the process's journeys during it
    failures: int
    transactions: float | None  # estimated transactions affected
    value: float | None

    @property
    def failed_steps(self) -> tuple[tuple[str, str | None, FailureReason | None], ...]:
        return tuple((s.journey, s.failed_step, s.reason) for s in self.streaks)


@dataclass(frozen=True, slots=True)
class ProcessReport:
    id: str
    process: BusinessProcess | None
    journeys: tuple[JourneyReport, ...]
    incidents: tuple[Incident, ...]

    @property
    def name(self) -> str:
        return self.process.name if self.process else self.id

    @property
    def successes(self) -> int:
        return sum(j.successes for j in self.journeys)

    @property
    def finished(self) -> int:
        return sum(j.finished for j in self.journeys)

    @property
    def availability(self) -> float | None:
        return self.successes / self.finished if self.finished else None

    @property
    def transactions(self) -> float | None:
        found = [i.transactions for i in self.incidents if i.transactions is not None]
        return sum(found) if found or not self.incidents else None

    @property
    def value(self) -> float | None:
        found = [i.value for i in self.incidents if i.value is not None]
        return sum(found) if found else None


@dataclass(frozen=True, slots=True)
class Report:
    since: float
    until: float
    location: str
    timezone: str
    history_from: float | None  # the oldest run the history holds
    processes: tuple[ProcessReport, ...]

    @property
    def period(self) -> float:
        return self.until - self.since


def budget_used(bad: int, total: int, objective: float, period: float, window: float) -> float:
    """The share of a ``window``'s error budget that ``bad`` of ``total`` runs over
    ``period`` spent."""
    if total == 0:
        return 0.0
    return (bad / total) / (1.0 - objective) * (period / window)


def read_report(data_dir: Path, since: float, until: float) -> Report:
    """The report of ``[since, until)`` from the history under ``data_dir`` (read only)."""
    path = data_dir / FILE_NAME
    if not path.is_file():
        raise ReportError(f"no history at {path} (start the agent with --data-dir {data_dir})")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error as error:
        raise ReportError(f"cannot open {path}: {error}") from error
    try:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        if version != SCHEMA_VERSION:
            raise ReportError(
                f"{path} has schema version {version}, this Journeyman reads {SCHEMA_VERSION}"
                " (run this version's agent on it once to upgrade it)"
            )
        stored = inventory(connection)
        runs = summaries_between(connection, since, until)
        (oldest,) = connection.execute("SELECT MIN(started_at) FROM runs").fetchone()
    except sqlite3.Error as error:
        raise ReportError(f"cannot read {path}: {error}") from error
    finally:
        connection.close()
    return build_report(runs, stored, since, until, history_from=oldest)


def build_report(
    runs: Sequence[RunSummary],
    stored: Inventory,
    since: float,
    until: float,
    *,
    history_from: float | None = None,
) -> Report:
    """The report of ``runs`` (those of ``[since, until)``, oldest first)."""
    zone_name = stored.meta.get("timezone", "UTC")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone_name, zone = "UTC", ZoneInfo("UTC")
    by_process: dict[str, list[RunSummary]] = {}
    for summary in runs:
        by_process.setdefault(summary.business_process, []).append(summary)
    processes = []
    for process_id in sorted(by_process):
        process = _process(stored.processes.get(process_id))
        own = by_process[process_id]
        journeys = tuple(
            _journey(journey, [r for r in own if r.journey == journey], stored)
            for journey in sorted({r.journey for r in own})
        )
        incidents = _incidents(own, process, zone, until)
        processes.append(ProcessReport(process_id, process, journeys, incidents))
    processes.sort(key=lambda p: (-(len(p.incidents) > 0), p.availability or 1.0, p.name))
    location = stored.meta.get("location", "")
    return Report(since, until, location, zone_name, history_from, tuple(processes))


def expected_transactions(
    process: BusinessProcess, zone: ZoneInfo, start: float, end: float
) -> float | None:
    """The catalog's normal volume between ``start`` and ``end`` (None without a volume)."""
    volume = process.volume
    if volume is None:
        return None
    total, moment = 0.0, start
    while moment < end:
        piece_end = min(end, (math.floor(moment / _PIECE) + 1) * _PIECE)
        hour = _local_hour(moment, zone)
        total += volume.expected(hour) * (piece_end - moment) / 3600.0
        moment = piece_end
    return total


def _local_hour(unix: float, zone: ZoneInfo) -> int:
    return datetime.fromtimestamp(unix, zone).hour


def _process(spec: dict[str, object] | None) -> BusinessProcess | None:
    if spec is None:
        return None
    try:
        return BusinessProcess.model_validate(spec)
    except ValidationError:
        return None


def _journey(journey: str, runs: list[RunSummary], stored: Inventory) -> JourneyReport:
    spec = stored.journeys.get(journey, {})
    slo = None
    if spec.get("slo"):
        try:
            slo = SLO.model_validate(spec["slo"])
        except ValidationError:
            slo = None
    threshold = slo.latency.threshold if slo and slo.latency else math.inf
    durations = [r.duration for r in runs if r.ok]
    return JourneyReport(
        journey=journey,
        title=str(spec.get("title") or ""),
        successes=len(durations),
        failures=sum(1 for r in runs if r.counted and not r.ok),
        slow=sum(1 for d in durations if d > threshold),
        slo=slo,
        p50=percentile(durations, 0.5),
        p95=percentile(durations, 0.95),
    )


def _incidents(
    runs: list[RunSummary], process: BusinessProcess | None, zone: ZoneInfo, until: float
) -> tuple[Incident, ...]:
    """The process's failure streaks, merged where they overlap, with what they cost."""
    merged: list[list[Streak]] = []
    ends: list[float] = []
    for streak in streaks(runs):
        end = streak.end if streak.end is not None else until
        if merged and streak.start < ends[-1]:
            merged[-1].append(streak)
            ends[-1] = max(ends[-1], end)
        else:
            merged.append([streak])
            ends.append(end)
    incidents = []
    for group, end in zip(merged, ends, strict=True):
        start = group[0].start
        ongoing = any(s.end is None for s in group)
        during = [r for r in runs if r.counted and start <= r.started_at < end]
        failures = sum(1 for r in during if not r.ok)
        transactions = value = None
        if process is not None and during:
            expected = expected_transactions(process, zone, start, end)
            if expected is not None:
                transactions = failures / len(during) * expected
                if process.value_per_transaction is not None:
                    value = transactions * process.value_per_transaction
        incidents.append(
            Incident(
                start,
                None if ongoing else end,
                tuple(group),
                len(during),
                failures,
                transactions,
                value,
            )
        )
    return tuple(incidents)
