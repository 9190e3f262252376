"""The history of runs: every result kept in SQLite, for the status page, its restart and
``journeyman report``.

:class:`History` is an exporter. ``export`` only queues the result; a task started in
``start`` hands the queue in batches (one transaction each) to the history's own thread,
which alone touches the database, so the event loop never waits for a disk. Reads go
to the same thread after whatever is queued, so they see every run exported before.

Where: ``<data dir>/history.sqlite3`` (WAL journal), or in memory without a data dir.
Bounds, applied with the first batch and then every ``prune_every`` (a minute): runs
older than ``max_age`` (35 days) are deleted; the steps of runs older than
``detail_age`` (2 days) are dropped, their summary stays; then the oldest runs go until
the file holds at most ``max_bytes`` (500 MB; 32 MB in memory): first the steps of runs
older than an hour go, oldest first, then the oldest runs; free pages are returned to
the file system. The queue holds at most ``max_pending`` runs.

A history that cannot be opened or written (a full disk, a read-only directory, a
corrupt file, one from a newer version) never stops the agent: the problem is logged,
counted in ``journeyman_history_errors_total{operation}``, shown by
``journeyman_history_up`` 0, :attr:`History.status` (for ``/readyz`` and the page) says
why, and results wait in the queue (the oldest dropped past its bound). Opening is
retried every ``retry_after`` seconds, so freeing the disk or moving a corrupt file away
brings the history back without a restart. A corrupt file is never rewritten or deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge

from agent.language.catalog import Catalog
from agent.language.model import Journey
from agent.run.results import RunResult
from exporters.history_schema import INSERT, NewerSchema, migrate, row_of, schema_version

__all__ = ["FILE_NAME", "History", "HistoryStatus", "HistoryUnavailable", "journey_spec"]

FILE_NAME = "history.sqlite3"
T = TypeVar("T")
Operation = Literal["open", "write", "read", "prune"]
_OPERATIONS: tuple[Operation, ...] = ("open", "write", "read", "prune")
_BATCH = 500  # runs per transaction at most
_KEEP_DETAIL = 3600.0  # seconds: the size bound takes no steps from the last hour's runs
_WAL_LIMIT = 4 * 1024 * 1024  # bytes the WAL file is truncated to after a checkpoint
_JOURNEY_FIELDS = frozenset(
    {
        "journey",
        "title",
        "business_process",
        "persona",
        "service",
        "application",
        "owner",
        "criticality",
        "schedule",
        "slo",
    }
)


class HistoryUnavailable(Exception):
    """The history cannot be read now; the message says why."""


@dataclass(frozen=True, slots=True)
class HistoryStatus:
    """Whether the history works, and a line saying where it is or what is wrong."""

    available: bool
    detail: str


def journey_spec(journey: Journey) -> dict[str, Any]:
    """What the history keeps of a journey: names, schedule and SLO (never variables,
    secrets or steps)."""
    return journey.model_dump(mode="json", include=set(_JOURNEY_FIELDS))


class History:
    """Runs kept in SQLite under ``data_dir`` (in memory when None), within bounds."""

    def __init__(
        self,
        data_dir: Path | None,
        *,
        registry: CollectorRegistry | None = None,
        logger: Any = None,
        location: str = "",
        max_age: float = 35 * 86400.0,
        detail_age: float = 2 * 86400.0,
        max_bytes: int | None = None,
        max_pending: int = 20_000,
        flush_every: float = 0.5,
        retry_after: float = 30.0,
        prune_every: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = data_dir / FILE_NAME if data_dir is not None else None
        self.max_age = max_age
        self.detail_age = detail_age
        default_bytes = 500_000_000 if self.path else 32_000_000
        self.max_bytes = default_bytes if max_bytes is None else max_bytes
        self._location = location
        self._clock = clock
        self._log = logger.bind(component="history") if logger is not None else None
        self._flush_every = flush_every
        self._retry_after = retry_after
        self._prune_every = prune_every
        self._pending: deque[RunResult] = deque()
        self._max_pending = max_pending
        self._inventory: tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]] | None
        self._inventory = None
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None  # the history thread's only
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._problem = "not started"
        self._retry_at = 0.0  # monotonic time before which a failed open or write waits
        self._next_prune = 0.0
        self._size = 0
        self.dropped = 0  # runs dropped from a full queue
        registry = registry if registry is not None else CollectorRegistry()
        self._errors = Counter(
            "journeyman_history_errors",
            "History operations that failed (open, write, read, prune): a full disk, a "
            "read-only directory, a corrupt file; monitoring goes on without it",
            ["operation"],
            registry=registry,
        )
        for operation in _OPERATIONS:
            self._errors.labels(operation)
        self._up = Gauge(
            "journeyman_history_up",
            "1 while the run history is open and its last write succeeded, else 0",
            registry=registry,
        )

    # -- the exporter ---------------------------------------------------------------

    async def start(self) -> None:
        """Open (or create, or upgrade) the file in the history's thread; a failure is
        reported and retried later, never raised."""
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="history")
        await self._in_thread(self._ensure_open)
        self._flusher = asyncio.create_task(self._flush_loop(), name="history-flush")

    def export(self, result: RunResult) -> None:
        """Queue one run for the next batch."""
        self._pending.append(result)
        if len(self._pending) > self._max_pending:
            self._pending.popleft()
            self.dropped += 1
        if len(self._pending) >= _BATCH:
            self._wake.set()

    async def close(self) -> None:
        """Write what is queued, then close the file and the thread."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._executor is None:
            return
        try:
            await self._flush()
            await self._in_thread(self._close_connection)
        finally:
            self._executor.shutdown(wait=False)
            self._executor = None

    # -- what the rest of the agent asks -------------------------------------------

    @property
    def status(self) -> HistoryStatus:
        if self._connection is not None and not self._problem:
            where = str(self.path) if self.path else "in memory (no --data-dir)"
            size = f"{_megabytes(self._size)} of {_megabytes(self.max_bytes)} MB used"
            return HistoryStatus(True, f"ok: {where}, {size}")
        return HistoryStatus(False, f"unavailable: {self._problem}")

    def set_inventory(self, journeys: Sequence[Journey], catalog: Catalog | None) -> None:
        """Keep what the runs belong to (written with the next batch)."""
        processes = (
            [p.model_dump(mode="json") for p in catalog.business_processes] if catalog else []
        )
        meta = {"location": self._location}
        if catalog is not None:
            meta["timezone"] = catalog.timezone
        self._inventory = ([journey_spec(j) for j in journeys], processes, meta)
        self._wake.set()

    async def read(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``query(connection, *args, **kwargs)`` in the history's thread, after every queued run is
        written; :class:`HistoryUnavailable` says why it cannot be answered."""
        if self._executor is None:
            raise HistoryUnavailable(self._problem)
        await self._flush()
        return await self._in_thread(self._read, lambda c: query(c, *args, **kwargs))

    def unwritten(self, run_id: str) -> RunResult | None:
        """A run queued and not written (the file failed since): the pages' only copy."""
        return next((r for r in reversed(self._pending) if r.run_id == run_id), None)

    # -- the loop side ---------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_every):
                    await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        """Hand the queued runs (and the inventory) to the thread, a batch at a time; what
        could not be written goes back to the front of the queue."""
        while self._pending or self._inventory is not None:
            batch = [self._pending.popleft() for _ in range(min(_BATCH, len(self._pending)))]
            inventory, self._inventory = self._inventory, None
            written = await self._in_thread(self._write, batch, inventory)
            if not written:
                self._requeue(batch)
                if inventory is not None and self._inventory is None:
                    self._inventory = inventory
                return

    def _requeue(self, batch: list[RunResult]) -> None:
        self._pending.extendleft(reversed(batch))
        while len(self._pending) > self._max_pending:
            self._pending.popleft()
            self.dropped += 1

    async def _in_thread(self, call: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise HistoryUnavailable("the history is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    # -- the history's thread --------------------------------------------------------

    def _ensure_open(self) -> bool:
        """Open the file unless open; False (reported) when it cannot be, now or until the
        next retry."""
        if self._connection is not None:
            return True
        if time.monotonic() < self._retry_at:
            return False
        connection: sqlite3.Connection | None = None
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                str(self.path) if self.path else ":memory:",
                isolation_level=None,  # transactions are explicit
                timeout=5.0,
                check_same_thread=False,  # opened and used in the history's thread only
            )
            schema_version(connection)  # a newer file is refused before anything changes
            (pages,) = connection.execute("PRAGMA page_count").fetchone()
            if pages == 0:  # a new file: let pruning return free pages to the disk
                connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
            if self.path is not None:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT}")
            connection.execute("PRAGMA synchronous = NORMAL")
            found = migrate(connection)
        except (sqlite3.Error, OSError, NewerSchema) as error:
            if connection is not None:
                connection.close()
            self._failed("open", error)
            return False
        self._connection = connection
        self._next_prune = 0.0  # the first batch applies the bounds
        self._size = self._used_bytes(connection)
        recovered = self._problem not in ("", "not started")
        self._problem = ""
        self._up.set(1)
        self._info(
            "history_opened",
            path=str(self.path or ":memory:"),
            schema_from=found,
            recovered=recovered,
        )
        return True

    def _write(
        self,
        batch: list[RunResult],
        inventory: tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]] | None,
    ) -> bool:
        if self._problem and time.monotonic() < self._retry_at:
            return False
        if not self._ensure_open():
            return False
        connection = self._connection
        assert connection is not None
        now = self._clock()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(INSERT, [row_of(result) for result in batch])
                if inventory is not None:
                    _write_inventory(connection, *inventory, now)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            self._failed("write", error)
            return False
        if self._problem:
            self._info("history_writes_again")
        self._problem = ""
        self._up.set(1)
        self._prune_if_due()
        return True

    def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        if not self._ensure_open() or self._connection is None:
            raise HistoryUnavailable(self._problem)
        try:
            return query(self._connection)
        except sqlite3.Error as error:
            self._failed("read", error)
            raise HistoryUnavailable(self._problem) from error

    def _prune_if_due(self) -> None:
        connection = self._connection
        now = time.monotonic()
        if connection is None or now < self._next_prune:
            return
        self._next_prune = now + self._prune_every
        try:
            self._prune(connection, self._clock())
        except sqlite3.Error as error:
            self._failed("prune", error)

    def _prune(self, connection: sqlite3.Connection, now: float) -> None:
        """Apply the bounds: age, then detail age, then size (older runs' steps first,
        then the oldest runs)."""
        connection.execute("DELETE FROM runs WHERE started_at < ?", (now - self.max_age,))
        connection.execute(
            "UPDATE runs SET detail = NULL WHERE started_at < ? AND detail IS NOT NULL",
            (now - self.detail_age,),
        )
        for _ in range(60):  # bounded work: each round frees a share
            if self._used_bytes(connection) <= self.max_bytes:
                break
            # First the steps of runs older than an hour, oldest first: their summaries
            # keep SLOs, streaks and reports going for as long as the size allows.
            (detailed,) = connection.execute(
                "SELECT COUNT(*) FROM runs WHERE detail IS NOT NULL AND started_at < ?",
                (now - _KEEP_DETAIL,),
            ).fetchone()
            if detailed:
                connection.execute(
                    "UPDATE runs SET detail = NULL WHERE run_id IN (SELECT run_id FROM runs "
                    "WHERE detail IS NOT NULL AND started_at < ? ORDER BY started_at LIMIT ?)",
                    (now - _KEEP_DETAIL, max(1, detailed // 4)),
                )
                continue
            (count,) = connection.execute("SELECT COUNT(*) FROM runs").fetchone()
            if count == 0:
                break
            connection.execute(
                "DELETE FROM runs WHERE run_id IN "
                "(SELECT run_id FROM runs ORDER BY started_at LIMIT ?)",
                (max(1, count // 20),),
            )
        connection.executescript("PRAGMA incremental_vacuum;")  # steps until every page is freed
        if self.path is not None:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._size = self._used_bytes(connection)

    @staticmethod
    def _used_bytes(connection: sqlite3.Connection) -> int:
        (pages,) = connection.execute("PRAGMA page_count").fetchone()
        (free,) = connection.execute("PRAGMA freelist_count").fetchone()
        (size,) = connection.execute("PRAGMA page_size").fetchone()
        return int((pages - free) * size)

    def _close_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.execute("PRAGMA optimize")
            self._connection.close()
            self._connection = None
        self._problem = "closed"
        self._up.set(0)

    def _failed(self, operation: Operation, error: Exception) -> None:
        """Count and log a failure; a file that is not (or no longer) a database is
        closed, to be opened again at the next retry."""
        self._errors.labels(operation).inc()
        self._up.set(0)
        self._retry_at = time.monotonic() + self._retry_after
        self._problem = _describe(error, self.path)
        corrupt = isinstance(error, sqlite3.DatabaseError) and not isinstance(
            error, sqlite3.OperationalError
        )
        if corrupt and self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None
        if self._log is not None:
            self._log.error(
                "history_failed",
                operation=operation,
                problem=self._problem,
                retry_seconds=self._retry_after,
                queued=len(self._pending),
            )

    def _info(self, event: str, **fields: Any) -> None:
        if self._log is not None:
            self._log.info(event, **fields)


def _write_inventory(
    connection: sqlite3.Connection,
    journeys: list[dict[str, Any]],
    processes: list[dict[str, Any]],
    meta: dict[str, str],
    now: float,
) -> None:
    connection.executemany(
        "INSERT OR REPLACE INTO journeys (journey, business_process, spec, updated_at) "
        "VALUES (?, ?, ?, ?)",
        [(j["journey"], j["business_process"], json.dumps(j), now) for j in journeys],
    )
    connection.executemany(
        "INSERT OR REPLACE INTO processes (business_process, spec, updated_at) VALUES (?, ?, ?)",
        [(p["id"], json.dumps(p), now) for p in processes],
    )
    connection.executemany(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", sorted(meta.items())
    )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f}" if size < 10e6 else f"{size / 1e6:.0f}"


def _describe(error: Exception, path: Path | None) -> str:
    """One line for a person: what is wrong with the history, and where."""
    where = str(path) if path is not None else "the in-memory history"
    text = str(error) or type(error).__name__
    lowered = text.lower()
    if isinstance(error, NewerSchema):
        return f"{where} was {text}"
    if "full" in lowered:
        return f"the disk is full ({text}) writing {where}"
    if "readonly" in lowered or "read-only" in lowered or isinstance(error, PermissionError):
        return f"{where} is read-only ({text})"
    if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
        return f"{where} is corrupt ({text}); move it away and the agent starts a new one"
    if "unable to open" in lowered or isinstance(error, OSError):
        folder = path.parent if path is not None else None
        if folder is not None and folder.is_dir() and not os.access(folder, os.W_OK):
            return f"{folder} is read-only: cannot write {where} ({text})"
        return f"cannot open {where} ({text})"
    return f"{where}: {text}"
