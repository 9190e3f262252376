"""The status page's shared HTML: the document around each page, its banner, and the
small formatting every page uses (times in the catalog's zone, durations, figures).

Every value is escaped here or by the caller; states are said in words and a symbol,
never by colour alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from html import escape
from zoneinfo import ZoneInfo

from exporters.status import JourneyRow, Overview, State
from exporters.status_assets import SCRIPT, STYLE

__all__ = [
    "SYMBOL", "ago", "at", "attr", "banner_text", "clock", "document", "duration", "facts",
    "history_note", "money", "number", "percent", "plural", "running", "seconds",
    "shorten", "state_badge", "window", "zone",
]  # fmt: skip

SYMBOL = {State.FAILING: "✖", State.DEGRADED: "▲", State.NO_DATA: "?", State.OK: "✔"}
_MESSAGE_SHOWN = 600  # characters of a message on the page (the rest is in the logs)


def banner_text(overview: Overview) -> str:
    """One sentence for the whole agent."""
    total = len(overview.processes)
    if not total:
        return "No journeys loaded."
    if overview.count(State.OK) == total:
        return f"All {plural(total, 'business process', 'business processes')} OK."
    worst = overview.state
    noun = plural(overview.count(worst), "business process", "business processes")
    first = f"{noun} {worst.word.lower() if worst is not State.NO_DATA else 'without data yet'}"
    rest = [
        f"{overview.count(state)} {state.word.lower() if state is not State.OK else 'OK'}"
        for state in (State.DEGRADED, State.NO_DATA, State.OK)
        if state.rank < worst.rank and overview.count(state)
    ]
    return " · ".join([first, *rest]) + "."


def document(overview: Overview, version: str, main: str, *, title: str) -> str:
    """A whole page around ``main``: header, banner, the inline style and script."""
    tz = zone(overview.timezone)
    state = overview.state
    flying = len(overview.in_flight)
    in_flight = f" · {plural(flying, 'run', 'runs')} in flight" if flying else ""
    banner = f"<strong>{SYMBOL[state]} {escape(banner_text(overview))}</strong>"
    location = escape(overview.location or "this agent")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(state.word)} · {escape(title)} · Journeyman ({location})</title>
<noscript><meta http-equiv="refresh" content="30"></noscript>
<style>{STYLE}</style>
</head>
<body data-version="{attr(version)}">
<header>
<p><a href="/"><strong>Journeyman</strong></a> · location {location}{in_flight}</p>
<p id="live" class="live">As of {at(overview.now, tz)}</p>
</header>
<div id="banner" class="banner {state.css}" role="status">{banner}</div>
<main id="main">
{main}
</main>
<footer><a href="/metrics">Metrics</a> · <a href="/api/status">Status as JSON</a> ·
times in {escape(overview.timezone)}</footer>
<script type="module">{SCRIPT}</script>
</body>
</html>
"""


def history_note(overview: Overview, problem: str | None = None) -> str:
    status = overview.history
    if problem is None and (status is None or status.available):
        return ""
    why = problem or (status.detail if status else "")
    return (
        f'<p class="warning"><strong>History is unavailable</strong>: '
        f"{escape(why)}. Monitoring goes on; past runs, budgets and streaks are not kept "
        "until it is back.</p>"
    )


def running(row: JourneyRow, overview: Overview) -> str:
    if row.running_since is None:
        return ""
    elapsed = max(0.0, overview.now - row.running_since)
    return f' <span class="running">● running now ({seconds(elapsed)})</span>'


def state_badge(state: State) -> str:
    return f'<span class="state {state.css}">{SYMBOL[state]} {escape(state.word)}</span>'


def facts(pairs: Sequence[tuple[str, str]]) -> str:
    items = "".join(f"<div><dt>{escape(k)}</dt><dd>{v}</dd></div>" for k, v in pairs)
    return f'<dl class="facts">{items}</dl>'


def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return UTC


def at(unix: float, tz: tzinfo) -> str:
    moment = datetime.fromtimestamp(unix, tz)
    return (
        f'<time datetime="{datetime.fromtimestamp(unix, UTC).isoformat()}">'
        f"{moment.strftime('%d %b %H:%M:%S %Z')}</time>"
    )


def clock(unix: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(unix, tz).strftime("%H:%M")


def ago(span: float) -> str:
    return f"for {duration(max(0.0, span))}"


def duration(span: float) -> str:
    """12 s, 4 min, 2 h 14 min, 28 days."""
    if span < 90:
        return f"{span:.0f} s"
    if span < 5400:
        return f"{span / 60:.0f} min"
    if span < 2 * 86400:
        hours, minutes = divmod(round(span / 60), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days = span / 86400
    return f"{days:.0f} days" if days >= 10 or days == int(days) else f"{days:.1f} days"


def window(span: float) -> str:
    """28-day, 6-hour: an SLO window as an adjective."""
    if span % 86400 == 0:
        return f"{span / 86400:.0f}-day"
    if span % 3600 == 0:
        return f"{span / 3600:.0f}-hour"
    return duration(span)


def seconds(value: float | None) -> str:
    if value is None:
        return "no run"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def percent(ratio: float, digits: int = 1) -> str:
    return f"{ratio * 100:.{digits}f}%"


def number(value: float) -> str:
    return f"{value:,.1f}" if value < 10 else f"{value:,.0f}"


def money(value: float) -> str:
    return f"{value:,.2f}"


def plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def shorten(text: str) -> str:
    return text if len(text) <= _MESSAGE_SHOWN else text[: _MESSAGE_SHOWN - 1] + "…"


def attr(text: str) -> str:
    return escape(text, quote=True)
