"""A live one-line-per-run view for a terminal (``journeyman demo``, ``run --console``)."""

from __future__ import annotations

import time
from typing import TextIO

from agent.run.results import RunResult
from exporters.base import NoLifecycle

__all__ = ["ConsoleExporter"]

_MESSAGE_WIDTH = 90


class ConsoleExporter(NoLifecycle):
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def export(self, result: RunResult) -> None:
        clock = time.strftime("%H:%M:%S", time.localtime(result.started_at))
        mark = "OK  " if result.ok else result.outcome.value.upper()[:4]
        line = (
            f"{clock} {mark} {result.journey:<22} {result.business_process:<20} "
            f"{result.duration:7.3f}s"
        )
        if not result.ok:
            message = " ".join(result.message.split())[:_MESSAGE_WIDTH]
            line += f"  {result.reason} at {result.failed_step!r}: {message}"
        self._stream.write(line + "\n")
        self._stream.flush()
