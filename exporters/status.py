"""The status board: the last run of every loaded journey, and the page that shows it.

:class:`StatusBoard` is an exporter: it keeps the last :class:`RunResult` per journey
(and the start of its last success), for the inventory it was last given. The page
groups journeys by business process and shows, for each, what a person would ask first:
did it work, how long did it take, where and why did it fail, when did it last work.
It shows only names, outcomes, reasons and times: never messages, URLs or variables,
so nothing a journey was given can leak through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from agent.language.catalog import Catalog
from agent.language.model import Journey
from agent.run.results import Outcome, RunResult
from exporters.base import NoLifecycle

__all__ = ["JourneyStatus", "ProcessStatus", "StatusBoard", "render_page"]

REFRESH_SECONDS = 30  # the page reloads itself: no script needed


@dataclass(frozen=True, slots=True)
class JourneyStatus:
    """One row of the page."""

    journey: str
    title: str
    persona: str
    last: RunResult | None  # None until the journey has run
    last_success: float | None  # start time of the last successful run


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    """One business process and its journeys."""

    business_process: str
    name: str  # from the catalog, else the id
    journeys: tuple[JourneyStatus, ...]


class StatusBoard(NoLifecycle):
    """Keeps the last run of each loaded journey; results of other journeys are ignored."""

    def __init__(self) -> None:
        self._journeys: dict[str, Journey] = {}
        self._catalog: Catalog | None = None
        self._last: dict[str, RunResult] = {}
        self._last_success: dict[str, float] = {}

    def set_inventory(self, journeys: Sequence[Journey], catalog: Catalog | None) -> None:
        """Take the journeys now loaded; forget the runs of those that are gone."""
        self._journeys = {journey.journey: journey for journey in journeys}
        self._catalog = catalog
        for gone in set(self._last) - set(self._journeys):
            del self._last[gone]
        for gone in set(self._last_success) - set(self._journeys):
            del self._last_success[gone]

    def export(self, result: RunResult) -> None:
        """Remember one finished run as its journey's last."""
        if result.journey not in self._journeys:
            return
        self._last[result.journey] = result
        if result.outcome is Outcome.SUCCESS:
            self._last_success[result.journey] = result.started_at

    def processes(self) -> list[ProcessStatus]:
        """The journeys grouped by business process, both sorted by id."""
        grouped: dict[str, list[JourneyStatus]] = {}
        for name in sorted(self._journeys):
            journey = self._journeys[name]
            row = JourneyStatus(
                name,
                journey.title,
                journey.persona.value,
                self._last.get(name),
                self._last_success.get(name),
            )
            grouped.setdefault(journey.business_process, []).append(row)
        return [
            ProcessStatus(process_id, self._process_name(process_id), tuple(rows))
            for process_id, rows in sorted(grouped.items())
        ]

    def _process_name(self, process_id: str) -> str:
        process = self._catalog.process(process_id) if self._catalog else None
        return process.name if process else process_id


def render_page(processes: Sequence[ProcessStatus], location: str) -> str:
    """The status page as one HTML document (every value escaped)."""
    sections = "".join(_section(process) for process in processes) or "<p>No journeys loaded.</p>"
    return _PAGE.format(
        refresh=REFRESH_SECONDS, location=escape(location), sections=sections
    )  # fmt: skip


def _section(process: ProcessStatus) -> str:
    failing = sum(1 for row in process.journeys if row.last and row.last.outcome is Outcome.FAILURE)
    state = f"{failing} failing" if failing else "all passing"
    rows = "".join(_row(row) for row in process.journeys)
    return (
        f"<h2>{escape(process.name)} <small>({escape(process.business_process)}, "
        f"{state})</small></h2>\n<table>\n<tr><th>Journey</th><th>Persona</th><th>Last outcome"
        "</th><th>Duration</th><th>Failed step</th><th>Reason</th><th>Last run</th>"
        f"<th>Last success</th></tr>\n{rows}</table>\n"
    )


def _row(row: JourneyStatus) -> str:
    last = row.last
    name = escape(row.journey) + (f"<br><small>{escape(row.title)}</small>" if row.title else "")
    if last is None:
        cells = ["not run yet", "", "", "", "", ""]
        css = "pending"
    else:
        cells = [
            last.outcome.value,
            f"{last.duration:.3f} s",
            last.failed_step or "",
            last.reason.value if last.reason and not last.ok else "",
            _time(last.started_at),
            _time(row.last_success) if row.last_success is not None else "never",
        ]
        css = last.outcome.value
    tds = "".join(f"<td>{escape(cell)}</td>" for cell in cells)
    return f'<tr class="{css}"><td>{name}</td><td>{escape(row.persona)}</td>{tds}</tr>\n'


def _time(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh}">
<title>Journeyman status</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }}
tr.success td:nth-child(3) {{ color: #176317; }}
tr.failure td:nth-child(3) {{ color: #b00020; font-weight: bold; }}
tr.aborted td:nth-child(3), tr.pending td:nth-child(3) {{ color: #777; }}
</style>
</head>
<body>
<h1>Journeyman status <small>({location})</small></h1>
<p>Metrics: <a href="/metrics">/metrics</a>. This page reloads every {refresh} s.</p>
{sections}</body>
</html>
"""
