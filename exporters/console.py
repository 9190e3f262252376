"""Live views of runs for a person: a line per run as it ends (``journeyman demo``, ``run
--once`` piped), or a table redrawn in place on a terminal (``run --once``).

Each line is stamped with the time its run ended, so lines are in time order whatever
their runs' lengths. Log lines never land inside the table: the live table hands out a
stream (:meth:`LiveTable.log_stream`) that prints each log line above it.
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Sequence
from typing import TextIO, cast

from agent.run.results import RunResult
from exporters.base import NoLifecycle

__all__ = ["ConsoleExporter", "LiveTable", "run_line"]

_MESSAGE_WIDTH = 90
_UP_AND_CLEAR = "\x1b[{}F\x1b[J"  # to the start of the line n up, then erase below


def run_line(result: RunResult) -> str:
    """One run on one line: when it ended, its mark, journey, process, duration, why."""
    clock = time.strftime("%H:%M:%S", time.localtime())
    mark = "OK  " if result.ok else result.outcome.value.upper()[:4]
    line = (
        f"{clock} {mark} {result.journey:<22} {result.business_process:<20} {result.duration:7.3f}s"
    )
    if not result.ok:
        message = " ".join(result.message.split())[:_MESSAGE_WIDTH]
        line += f"  {result.reason} at {result.failed_step!r}: {message}"
    return line


class ConsoleExporter(NoLifecycle):
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def export(self, result: RunResult) -> None:
        self._stream.write(run_line(result) + "\n")
        self._stream.flush()


class LiveTable:
    """One row per journey on a terminal: ``running`` until its run ends, then its line.
    Erased when closed (the final table follows)."""

    def __init__(self, stream: TextIO, journeys: Sequence[str], *, logs: TextIO) -> None:
        self._stream = stream
        self._rows = {journey: f"{'':9}RUN  {journey}" for journey in journeys}
        self._logs = logs
        self._drawn = 0  # lines of the table on the screen now
        self._live = False  # drawn between start and close; log lines after go on as they are

    async def start(self) -> None:
        self._live = True
        self._draw()

    def export(self, result: RunResult) -> None:
        self._rows[result.journey] = run_line(result)
        self._erase()
        self._draw()

    async def close(self) -> None:
        self._live = False
        self._erase()

    def log_stream(self) -> TextIO:
        """A stream for the logger: each line it gets goes to ``logs`` above the table."""
        return cast(TextIO, _Above(self))  # a TextIOBase; typeshed's TextIO is wider

    def above(self, line: str) -> None:
        self._erase()
        self._logs.write(line)
        self._logs.flush()
        self._draw()

    def _draw(self) -> None:
        if not self._live:
            return
        width = max(shutil.get_terminal_size().columns - 1, 20)  # a wrapped row breaks the count
        rows = [row[:width] for row in self._rows.values()]
        self._stream.write("".join(f"{row}\n" for row in rows))
        self._stream.flush()
        self._drawn = len(rows)

    def _erase(self) -> None:
        if self._drawn:
            self._stream.write(_UP_AND_CLEAR.format(self._drawn))
            self._stream.flush()
            self._drawn = 0


class _Above(io.TextIOBase):
    """What a logger writes, a whole line at a time, printed above the live table."""

    def __init__(self, table: LiveTable) -> None:
        self._table = table
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._table.above(line + "\n")
        return len(text)
