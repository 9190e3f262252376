"""Where evidence of a run goes: files named by journey and run, pruned by age and size.

Layout: ``<root>/<journey>/<run_id>/<step>.<what>`` (``checkout/checkout-20261127T110000Z-
a1b2c3/pay.screenshot.png``). Run ids start with a UTC timestamp, so a folder listing
is in time order. Pruning removes whole run folders: first those older than
``max_age``, then the oldest until the total is within ``max_bytes``.

Evidence shows what a customer saw, masked but still private: the folders the store
makes are readable by the agent's user only (0700), and so are the files written
through it (0600, :meth:`ArtifactStore.write` or the :func:`private` opener), whatever
the umask.

A browser run's Playwright trace costs as it records: DOM snapshots on every action add
~40% to a checkout-like step's time (docs/performance.md), time that would land in the
step's clock. So the store says how much a trace records (``--browser-trace``):
``light`` (the default: actions, their timings and errors, console; about free), ``full``
(DOM snapshots and the screencast, for debugging), or ``off``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = ["ArtifactStore", "TraceMode", "private"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-.")[:80] or "step"


class TraceMode(StrEnum):
    """What a browser run's Playwright trace records."""

    OFF = "off"
    LIGHT = "light"  # actions, their timings and errors, console: no snapshots
    FULL = "full"  # DOM snapshots on every action and the screencast: ~+40% step time


@dataclass(frozen=True)
class ArtifactStore:
    """A folder of run artifacts with retention limits (built by the entry point)."""

    root: Path
    trace: TraceMode = TraceMode.LIGHT
    max_age: float = 7 * 86400.0  # seconds
    max_bytes: int = 1_000_000_000

    def path(self, journey: str, run_id: str, step: str, what: str) -> Path:
        """A new file's path for ``what`` (``screenshot.png``, ``trace.zip``, ...); its
        folder exists (each folder made here: 0700)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = self.root
        for part in (_slug(journey), _slug(run_id)):
            folder = folder / part
            folder.mkdir(mode=0o700, exist_ok=True)
        return folder / f"{_slug(step)}.{what}"

    @staticmethod
    def write(target: Path, data: bytes) -> Path:
        """Write ``data`` to ``target``, readable by the agent's user only. Blocking I/O."""
        with open(target, "wb", opener=private) as out:
            out.write(data)
        return target

    def prune(self, now: float | None = None) -> list[Path]:
        """Remove expired and excess run folders; returns what was removed. Blocking I/O:
        call it in a thread from async code."""
        now = time.time() if now is None else now
        runs = []
        for journey in self._children(self.root):
            for run in self._children(journey):
                files = [f for f in run.rglob("*") if f.is_file()]
                size = sum(f.stat().st_size for f in files)
                newest = max((f.stat().st_mtime for f in files), default=run.stat().st_mtime)
                runs.append((newest, size, run))
        runs.sort()
        total = sum(size for _, size, _ in runs)
        removed = []
        for newest, size, run in runs:
            if now - newest <= self.max_age and total <= self.max_bytes:
                break
            shutil.rmtree(run, ignore_errors=True)
            removed.append(run)
            total -= size
        for journey in self._children(self.root):
            if not any(journey.iterdir()):
                journey.rmdir()
        return removed

    @staticmethod
    def _children(folder: Path) -> list[Path]:
        try:
            return [child for child in folder.iterdir() if child.is_dir()]
        except FileNotFoundError:
            return []


def private(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open`: the file readable and writable by its owner only
    (also one that existed with a wider mode)."""
    descriptor = os.open(path, flags, 0o600)
    os.fchmod(descriptor, 0o600)
    return descriptor
