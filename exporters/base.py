"""The exporter interface: a place a finished RunResult is handed to."""

from __future__ import annotations

from typing import Protocol

from agent.run.results import RunResult

__all__ = ["Exporter"]


class Exporter(Protocol):
    def export(self, result: RunResult) -> None:
        """Take one finished run. Must be quick and must not raise for a valid result."""
