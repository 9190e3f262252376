"""The table `journeyman run --once` prints: one line per journey, failures explained."""

from __future__ import annotations

from collections.abc import Sequence

from agent.run.results import RunResult

__all__ = ["format_table"]

_HEADERS = ("JOURNEY", "BUSINESS PROCESS", "OUTCOME", "DURATION", "FAILED STEP", "REASON")
_MESSAGE_WIDTH = 160


def format_table(results: Sequence[RunResult]) -> str:
    rows = [
        (
            result.journey,
            result.business_process,
            result.outcome.value,
            f"{result.duration:.3f}s"
            + (f" ({result.attempts} attempts)" if result.attempts > 1 else ""),
            result.failed_step or "",
            str(result.reason or ""),
        )
        for result in results
    ]
    widths = [max(len(row[i]) for row in [_HEADERS, *rows]) for i in range(len(_HEADERS))]
    lines = [_line(row, widths) for row in [_HEADERS, *rows]]
    details = [
        f"  {result.journey}: {_shorten(result.message)}"
        for result in results
        if not result.ok and result.message
    ]
    passed = sum(1 for result in results if result.ok)
    summary = f"{passed} of {len(results)} journeys passed"
    return "\n".join([*lines, *(["", *details] if details else []), "", summary]) + "\n"


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_WIDTH else text[: _MESSAGE_WIDTH - 1] + "…"
