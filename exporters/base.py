"""The exporter interface: a place finished RunResults go, with a start and an end.

An exporter is started once before the first result, handed each finished run, and
closed once after the last. ``start`` and ``close`` are coroutines, so an exporter may
open a file, connect to a gateway or flush from a thread. ``export`` is a plain call on
the event loop: it must be quick and must never block (an exporter with slow output
queues the result and writes it from a task it started in ``start``).

:class:`exporters.fanout.Fanout` drives them, each in isolation. An exporter that needs
nothing opened or flushed inherits :class:`NoLifecycle` and writes ``export`` only.
"""

from __future__ import annotations

from typing import Protocol

from agent.run.results import RunResult

__all__ = ["Exporter", "NoLifecycle"]


class Exporter(Protocol):
    async def start(self) -> None:
        """Open what ``export`` needs. Called once, before the first result."""

    def export(self, result: RunResult) -> None:
        """Take one finished run. Must be quick, must not block, must not raise for a valid
        result."""

    async def close(self) -> None:
        """Flush and release. Called once, after the last result (only if started)."""


class NoLifecycle:
    """For exporters that keep nothing open: ``start`` and ``close`` do nothing."""

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to flush."""
