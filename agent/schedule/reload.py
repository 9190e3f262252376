"""Reloading journey files while the agent runs: on change (polled) and on SIGHUP.

Every ``poll_interval`` the watcher compares the journey files' sizes and modification
times (portable, no extra dependency, one ``stat`` per file). On a change, or a SIGHUP,
it loads every file again. Polls and loads run in a worker thread, so that the runs due
meanwhile start on time; the new set is handed to ``apply`` on the event loop
(typically: update the scheduler, then the exporters' inventory).

What runs is never lost to a passing fault. Each of these is a reload failure (logged,
counted in ``journeyman_reloads_total{result="failure"}`` and
``journeyman_reload_failures_total``) that keeps the last good journeys running:

- a file with errors (logged with its ``file:line:column``), among them a rewrite cut
  in the middle;
- an empty rewrite of a file that held journeys (an editor or a deploy caught between
  truncating and writing). A deliberate removal is deleting the file, or some of its
  journeys: a file emptied of all of them keeps them;
- a configured folder that is gone, unreadable or no longer a folder (a mount being
  swapped, a parent folder's permissions), and an unreadable folder below it;
- anything the watcher itself meets (it never dies of it): it tries again at the next
  poll, and says so once when it recovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter
from structlog.typing import FilteringBoundLogger

from agent.language.catalog import Catalog
from agent.language.loader import CATALOG_NAMES, FileResult, LoadResult
from agent.language.model import Journey

__all__ = ["ReloadOutcome", "Reloader", "fingerprint"]

_SUFFIXES = (".yaml", ".yml")
Fingerprint = tuple[tuple[str, int, int], ...]


Load = Callable[[Sequence[Path]], LoadResult]
Apply = Callable[[Sequence[Journey], Catalog | None], None]


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """What one reload put in place, and which files kept their last good version."""

    journeys: tuple[Journey, ...]
    catalog: Catalog | None
    rejected: tuple[str, ...] = ()  # files with errors
    ok: bool = True


def fingerprint(paths: Sequence[Path]) -> Fingerprint:
    """(file, size, mtime) of every journey file under ``paths``: changes on any edit.

    Raises OSError when a folder cannot be read (``rglob`` would skip it silently, and
    its journeys would look deleted) or a path cannot be looked at (a parent folder
    without search permission)."""
    stamps: dict[str, tuple[str, int, int]] = {}
    for path in paths:
        if path.is_dir():
            _stamp_folder(str(path), stamps)
        else:
            with contextlib.suppress(OSError):  # a path that does not exist (yet)
                stamps[str(path)] = _stamp(str(path), path.stat())
    return tuple(stamps[name] for name in sorted(stamps))


def _stamp_folder(folder: str, stamps: dict[str, tuple[str, int, int]]) -> None:
    """The files the loader reads in a folder (YAML, outside hidden folders, symlinked
    folders not followed, as ``rglob``), raising on a folder it cannot list. One
    ``scandir`` per folder and one ``stat`` per YAML file: polled every second, with
    thousands of journeys, ``os.walk`` and ``Path`` objects cost ~13 ms per 1,000."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                _stamp_folder(entry.path, stamps)
            elif entry.name.endswith(_SUFFIXES):
                try:
                    status = entry.stat()  # a symlinked file counts as what it points to
                except OSError:  # removed meanwhile, or a dangling link
                    continue
                if stat.S_ISREG(status.st_mode):
                    stamps[entry.path] = _stamp(entry.path, status)


def _stamp(name: str, status: os.stat_result) -> tuple[str, int, int]:
    return (name, status.st_size, status.st_mtime_ns)


class Reloader:
    """Loads the journey files, keeps the last good version of each, and watches them."""

    def __init__(
        self,
        *,
        paths: Sequence[Path],
        load: Load,
        apply: Apply,
        registry: CollectorRegistry,
        logger: FilteringBoundLogger,
        poll_interval: float = 1.0,
    ) -> None:
        self._paths = tuple(paths)
        self._load = load
        self._apply = apply
        self._log = logger.bind(component="reload")
        self._poll = poll_interval
        self._last_good: dict[str, tuple[Journey, ...]] = {}  # by file
        self._catalog: Catalog | None = None
        self._seen: Fingerprint = ()
        self._wake = asyncio.Event()
        self._trouble: str | None = None  # the watcher's last error, until it recovers
        self._reloads = Counter(
            "journeyman_reloads",
            "Loads of the journey files, by result (failure: a file kept its last good version)",
            ["result"],
            registry=registry,
        )
        for result in ("success", "failure"):
            self._reloads.labels(result)
        self._failures = Counter(
            "journeyman_reload_failures",
            "Journey files rejected by a load (their last good version kept running)",
            registry=registry,
        )

    def reload(self) -> ReloadOutcome:
        """Load every file now and apply the result; never raises for bad files."""
        try:
            seen, loaded = self._read()
        except Exception as error:  # unreadable folder, or a loader bug: keep what runs
            return self._failed(error)
        return self._adopt(seen, loaded)

    async def reload_off_loop(self) -> ReloadOutcome:
        """:meth:`reload`, reading and validating the files in a worker thread: 1,000
        journeys take ~0.6 s of CPU to load, which on the loop would start every run due
        meanwhile that late. What the load built is applied here, on the loop."""
        try:
            seen, loaded = await asyncio.to_thread(self._read)
        except Exception as error:
            return self._failed(error)
        return self._adopt(seen, loaded)

    def _read(self) -> tuple[Fingerprint, LoadResult]:
        return fingerprint(self._paths), self._load(self._paths)

    def _adopt(self, seen: Fingerprint, loaded: LoadResult) -> ReloadOutcome:
        self._seen = seen
        rejected = self._take(loaded.files.values())
        if not any(Path(name).name in CATALOG_NAMES for name in rejected):
            self._catalog = loaded.catalog  # a broken catalog keeps its last good version
        journeys = self._current()
        self._apply(journeys, self._catalog)
        self._reloads.labels("failure" if rejected else "success").inc()
        self._log.info("journeys_reloaded", journeys=len(journeys), rejected_files=len(rejected))
        return ReloadOutcome(journeys, self._catalog, tuple(rejected), ok=not rejected)

    def request(self) -> None:
        """Ask for a reload at once (the SIGHUP handler)."""
        self._wake.set()

    async def watch(self, *, sighup: bool = True) -> None:
        """Reload on every change or SIGHUP until cancelled. Call :meth:`reload` first."""
        loop = asyncio.get_running_loop()
        if sighup:
            loop.add_signal_handler(signal.SIGHUP, self.request)
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()
                asked = self._wake.is_set()
                self._wake.clear()
                try:
                    # off the loop: a poll of thousands of files would delay runs due
                    if asked or self._trouble or await self._changed():
                        await self.reload_off_loop()
                except Exception as error:  # a fault of the files, or a bug: try again
                    self._failed(error)
        finally:
            if sighup:
                loop.remove_signal_handler(signal.SIGHUP)

    async def _changed(self) -> bool:
        return await asyncio.to_thread(fingerprint, self._paths) != self._seen

    def _failed(self, error: Exception) -> ReloadOutcome:
        """A reload that could not read the files at all: counted, logged once per new
        error, tried again at the next poll; what runs keeps running."""
        self._reloads.labels("failure").inc()
        self._failures.inc()
        why = f"{type(error).__name__}: {error}"
        if why != self._trouble:
            self._log.error("reload_failed", error=why, kept_journeys=len(self._current()))
        self._trouble = why
        return ReloadOutcome(self._current(), self._catalog, ok=False)

    def _take(self, files: Iterable[FileResult]) -> list[str]:
        """Keep each good file's journeys; a file with errors, an empty rewrite of a file
        that held journeys, and a configured path that is no longer a readable folder
        keep their previous ones."""
        if self._trouble is not None:
            self._log.info("reload_recovered", after=self._trouble)
            self._trouble = None
        fresh: dict[str, tuple[Journey, ...]] = {}
        rejected: list[str] = []
        for file in files:
            name = str(file.path)
            journeys = tuple(loaded.journey for loaded in file.journeys)
            held = self._last_good.get(name, ())
            problems = [str(error) for error in file.errors]
            if not problems and not journeys and held:
                problems = [
                    f"{name}: no journeys any more (an empty or cut-off rewrite?): kept its "
                    f"last good {len(held)}; delete the file to remove them"
                ]
            if not problems:
                fresh[name] = journeys
                continue
            rejected.append(name)
            self._failures.inc()
            for problem in problems:
                self._log.error(
                    "journey_file_rejected", file=name, error=problem, kept_journeys=len(held)
                )
        kept = {name: self._last_good[name] for name in self._kept(rejected)}
        self._last_good = fresh | kept  # fresh first: a fresh id wins over a kept one
        return rejected

    def _kept(self, rejected: list[str]) -> Iterator[str]:
        """The files whose last good version stays: each rejected one, and every file
        under a configured path that is rejected as a whole (gone, or no longer a
        folder; an existing folder was listed, so it is empty: its files were deleted)."""
        for name in rejected:
            if name in self._last_good:
                yield name
            path = Path(name)
            if path in self._paths and not _is_folder(path):
                yield from (f for f in self._last_good if Path(f).is_relative_to(path))

    def _current(self) -> tuple[Journey, ...]:
        journeys: dict[str, Journey] = {}
        for file_journeys in self._last_good.values():
            for journey in file_journeys:
                journeys.setdefault(journey.journey, journey)
        return tuple(journeys.values())


def _is_folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # cannot even be looked at: not a folder that can be read
        return False
