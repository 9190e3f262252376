"""Reloading journey files while the agent runs: on change (polled) and on SIGHUP.

Every ``poll_interval`` the watcher compares the journey files' sizes and modification
times (portable, no extra dependency, one ``stat`` per file). On a change, or a SIGHUP,
it loads every file again. A file that now has errors keeps its last good journeys
running; each error is logged with its ``file:line:column`` and counted. The new set
is handed to ``apply`` (typically: update the scheduler, then the exporters' inventory).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterable, Sequence
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
    """(file, size, mtime) of every journey file under ``paths``: changes on any edit."""
    files: set[Path] = set()
    for path in paths:
        if path.is_dir():
            files.update(p for p in path.rglob("*") if _journey_file(p, path))
        else:
            files.add(path)
    stamps = []
    for file in sorted(files):
        try:
            stat = file.stat()
        except OSError:  # removed meanwhile, or a path that does not exist (yet)
            continue
        stamps.append((str(file), stat.st_size, stat.st_mtime_ns))
    return tuple(stamps)


def _journey_file(file: Path, folder: Path) -> bool:
    """The files the loader reads in a folder: YAML, outside hidden folders."""
    hidden = any(part.startswith(".") for part in file.relative_to(folder).parts)
    return file.suffix in _SUFFIXES and not hidden and file.is_file()


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
        self._seen = fingerprint(self._paths)
        try:
            loaded = self._load(self._paths)
        except Exception as error:  # unreadable folder, or a loader bug: keep what runs
            self._log.error("reload_failed", error=f"{type(error).__name__}: {error}")
            self._reloads.labels("failure").inc()
            self._failures.inc()
            journeys = self._current()
            return ReloadOutcome(journeys, self._catalog, ok=False)
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
                if asked or fingerprint(self._paths) != self._seen:
                    self.reload()
        finally:
            if sighup:
                loop.remove_signal_handler(signal.SIGHUP)

    def _take(self, files: Iterable[FileResult]) -> list[str]:
        """Keep each good file's journeys; a file with errors keeps its previous ones."""
        fresh: dict[str, tuple[Journey, ...]] = {}
        rejected: list[str] = []
        for file in files:
            name = str(file.path)
            if not file.errors:
                fresh[name] = tuple(loaded.journey for loaded in file.journeys)
                continue
            rejected.append(name)
            self._failures.inc()
            kept = self._last_good.get(name, ())
            for error in file.errors:
                self._log.error(
                    "journey_file_rejected", file=name, error=str(error), kept_journeys=len(kept)
                )
        kept_files = {name: self._last_good[name] for name in rejected if name in self._last_good}
        self._last_good = fresh | kept_files  # fresh first: a fresh id wins over a kept one
        return rejected

    def _current(self) -> tuple[Journey, ...]:
        journeys: dict[str, Journey] = {}
        for file_journeys in self._last_good.values():
            for journey in file_journeys:
                journeys.setdefault(journey.journey, journey)
        return tuple(journeys.values())
