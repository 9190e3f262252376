"""The history file's layout: its schema versions, their migrations, and how a RunResult
becomes a row and comes back.

The version is SQLite's ``PRAGMA user_version``. :data:`MIGRATIONS` holds one script per
version; opening a file at version N runs the scripts after N, each in its own
transaction with its version bump, so an interrupted upgrade resumes where it stopped.
A file written by a newer Journeyman (a version above :data:`SCHEMA_VERSION`) is refused,
never rewritten.

- ``runs``: one row per finished run (every outcome). ``detail`` holds the steps (with
  their measurements and evidence paths) as JSON; it is emptied after a few days, so old
  runs keep their summary (outcome, duration, failed step, reason, message) for SLOs,
  streaks and reports at a fraction of the size.
- ``journeys`` and ``processes``: the last inventory the agent ran (titles, SLOs,
  schedules; the catalog's names, volumes, values and currencies), so that
  ``journeyman report`` needs only the history.
- ``meta``: key/value facts about the agent that wrote it (location, catalog timezone).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from agent.run.results import FailureReason, Measurement, Outcome, RunResult, StepResult
from agent.steps.kind import Unit

__all__ = [
    "COLUMNS",
    "INSERT",
    "MESSAGE_LIMIT",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SUMMARY_COLUMNS",
    "NewerSchema",
    "RunSummary",
    "migrate",
    "result_from_row",
    "row_of",
    "schema_version",
    "summary_from_row",
]

MESSAGE_LIMIT = 2000  # characters of a run's message kept (messages are already masked)

MIGRATIONS: tuple[str, ...] = (
    # 1: the runs.
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        journey TEXT NOT NULL,
        business_process TEXT NOT NULL,
        persona TEXT NOT NULL,
        started_at REAL NOT NULL,
        duration REAL NOT NULL,
        outcome TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        reason TEXT,
        failed_step TEXT,
        message TEXT NOT NULL DEFAULT '',
        trace_id TEXT NOT NULL DEFAULT '',
        detail TEXT
    );
    CREATE INDEX runs_by_journey ON runs (journey, started_at);
    CREATE INDEX runs_by_time ON runs (started_at);
    """,
    # 2: what the runs belong to, so that a report needs nothing but the history.
    """
    CREATE TABLE journeys (
        journey TEXT PRIMARY KEY,
        business_process TEXT NOT NULL,
        spec TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE processes (
        business_process TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

COLUMNS = (
    "run_id, journey, business_process, persona, started_at, duration, outcome, attempts, "
    "reason, failed_step, message, trace_id, detail"
)
SUMMARY_COLUMNS = (
    "run_id, journey, business_process, started_at, duration, outcome, attempts, reason, "
    "failed_step, message"
)
INSERT = f"INSERT OR REPLACE INTO runs ({COLUMNS}) VALUES ({', '.join('?' * 13)})"


class NewerSchema(Exception):
    """The file was written by a newer Journeyman: it is left as it is."""


def schema_version(connection: sqlite3.Connection) -> int:
    """The file's schema version; :class:`NewerSchema` if this Journeyman does not know
    it (check before changing anything in the file)."""
    (found,) = connection.execute("PRAGMA user_version").fetchone()
    if found > SCHEMA_VERSION:
        raise NewerSchema(
            f"written by a newer Journeyman (schema version {found}; this one knows up to "
            f"{SCHEMA_VERSION}); left untouched"
        )
    return int(found)


def migrate(connection: sqlite3.Connection) -> int:
    """Bring the file to :data:`SCHEMA_VERSION`; returns the version it had."""
    found = schema_version(connection)
    for version in range(found + 1, SCHEMA_VERSION + 1):
        script = MIGRATIONS[version - 1]
        connection.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
    return int(found)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run without its steps: what SLOs, streaks, strips and reports need."""

    run_id: str
    journey: str
    business_process: str
    started_at: float
    duration: float
    outcome: Outcome
    attempts: int = 1
    reason: FailureReason | None = None
    failed_step: str | None = None
    message: str = ""

    @property
    def counted(self) -> bool:
        """Success or failure: a measurement of the target (aborted and not started are not)."""
        return self.outcome in (Outcome.SUCCESS, Outcome.FAILURE)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    @classmethod
    def of(cls, result: RunResult) -> RunSummary:
        return cls(
            result.run_id,
            result.journey,
            result.business_process,
            result.started_at,
            result.duration,
            result.outcome,
            result.attempts,
            result.reason,
            result.failed_step,
            result.message[:MESSAGE_LIMIT],
        )


def row_of(result: RunResult, *, detail: bool = True) -> tuple[Any, ...]:
    """The ``runs`` row of ``result`` (its steps as JSON unless ``detail`` is False)."""
    return (
        result.run_id,
        result.journey,
        result.business_process,
        result.persona,
        result.started_at,
        result.duration,
        result.outcome.value,
        result.attempts,
        result.reason.value if result.reason else None,
        result.failed_step,
        result.message[:MESSAGE_LIMIT],
        result.trace_id,
        _detail_json(result) if detail else None,
    )


def summary_from_row(row: sqlite3.Row | tuple[Any, ...]) -> RunSummary:
    """A :class:`RunSummary` from a row selected as :data:`SUMMARY_COLUMNS`."""
    run_id, journey, process, started, duration, outcome, attempts, reason, step, message = row
    return RunSummary(
        run_id,
        journey,
        process,
        float(started),
        float(duration),
        Outcome(outcome),
        int(attempts),
        FailureReason(reason) if reason else None,
        step,
        message or "",
    )


def result_from_row(row: sqlite3.Row | tuple[Any, ...]) -> RunResult:
    """A :class:`RunResult` from a row selected as :data:`COLUMNS` (its steps are empty
    once the detail was pruned)."""
    (
        run_id,
        journey,
        process,
        persona,
        started,
        duration,
        outcome,
        attempts,
        reason,
        step,
        message,
        trace_id,
        detail,
    ) = row
    data = json.loads(detail) if detail else {}
    return RunResult(
        journey=journey,
        business_process=process,
        persona=persona,
        run_id=run_id,
        trace_id=trace_id,
        started_at=float(started),
        duration=float(duration),
        outcome=Outcome(outcome),
        attempts=int(attempts),
        steps=tuple(_step(s) for s in data.get("steps", ())),
        reason=FailureReason(reason) if reason else None,
        failed_step=step,
        message=message or "",
        artifacts=tuple(data.get("artifacts", ())),
    )


def _detail_json(result: RunResult) -> str:
    steps = [
        {
            "name": s.name,
            "kind": s.kind,
            "ok": s.ok,
            "started_at": s.started_at,
            "duration": s.duration,
            "reason": s.reason.value if s.reason else None,
            "message": s.message[:MESSAGE_LIMIT],
            "measurements": [[m.group, m.name, m.value, m.unit.value] for m in s.measurements],
            "artifacts": list(s.artifacts),
        }
        for s in result.steps
    ]
    return json.dumps({"steps": steps, "artifacts": list(result.artifacts)}, separators=(",", ":"))


def _step(data: dict[str, Any]) -> StepResult:
    return StepResult(
        name=data["name"],
        kind=data["kind"],
        ok=bool(data["ok"]),
        started_at=float(data["started_at"]),
        duration=float(data["duration"]),
        reason=FailureReason(data["reason"]) if data.get("reason") else None,
        message=data.get("message", ""),
        measurements=tuple(
            Measurement(group, name, float(value), Unit(unit))
            for group, name, value, unit in data.get("measurements", ())
        ),
        artifacts=tuple(data.get("artifacts", ())),
    )
