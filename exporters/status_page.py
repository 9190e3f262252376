"""The overview (``/``) and its figures as JSON (``/api/status``).

The banner for the whole agent, then every business process worst first: its state,
failing since, what is at risk now (with this hour's normal volume beside it), owner,
services, applications and infrastructure, and per journey its last run and a 24-hour
strip (inline SVG, a mark per half hour with runs: a ``<title>`` to hover, each mark
focusable for the keyboard, heights and colours by outcome, a latency bar below).
Messages are not shown here, only on a journey's page.
"""

from __future__ import annotations

from datetime import tzinfo
from html import escape
from typing import Any
from urllib.parse import quote

from exporters import status_html as h
from exporters.history_queries import Bucket
from exporters.status import BUCKET_SECONDS, BUCKETS, JourneyRow, Overview, ProcessRow
from exporters.status_html import banner_text

__all__ = ["banner_text", "render_missing", "render_overview", "status_json"]


def render_overview(overview: Overview, version: str) -> str:
    """``/``: the banner, then every business process worst first."""
    tz = h.zone(overview.timezone)
    body = ["<h1>Business processes, worst first</h1>", h.history_note(overview)]
    if not overview.processes:
        body.append("<p>No journeys loaded.</p>")
    body.extend(_process(process, overview, tz) for process in overview.processes)
    return h.document(overview, version, "".join(body), title="Status")


def render_missing(overview: Overview, version: str, journey: str) -> str:
    body = (
        f"<h1>No journey {escape(journey)!s} here</h1><p>It is not loaded by this agent. "
        '<a href="/">All business processes</a></p>'
    )
    return h.document(overview, version, body, title="Not found")


def status_json(overview: Overview, version: str) -> dict[str, Any]:
    """``/api/status``: the overview's figures, for the page's script and for machines."""
    return {
        "version": version,
        "generated_at": overview.now,
        "location": overview.location,
        "state": overview.state.css,
        "banner": banner_text(overview),
        "history": None
        if overview.history is None
        else {"available": overview.history.available, "detail": overview.history.detail},
        "in_flight": [{"journey": j, "since": s} for j, s in sorted(overview.in_flight.items())],
        "processes": [
            {
                "business_process": p.id,
                "name": p.name,
                "state": p.state.css,
                "criticality": p.criticality,
                "failing_since": p.failing_since,
                "runs_last_hour": p.runs_hour,
                "failed_runs_last_hour": p.failures_hour,
                "expected_transactions_per_hour": p.expected_per_hour,
                "transactions_at_risk_per_hour": p.at_risk,
                "value_at_risk_per_hour": p.value_at_risk,
                "currency": p.currency if p.value_at_risk is not None else None,
                "journeys": [
                    {
                        "journey": r.journey.journey,
                        "state": r.state.css,
                        "failing_since": r.failing_since,
                        "running_since": r.running_since,
                        "last_outcome": r.last.outcome.value if r.last else None,
                        "last_started_at": r.last.started_at if r.last else None,
                    }
                    for r in p.journeys
                ],
            }
            for p in overview.processes
        ],
    }


def _process(process: ProcessRow, overview: Overview, tz: tzinfo) -> str:
    pid = h.attr(process.id)
    facts: list[tuple[str, str]] = []
    if process.failing_since is not None:
        facts.append(
            (
                "Failing since",
                f"{h.at(process.failing_since, tz)} "
                f"({h.ago(overview.now - process.failing_since)})",
            )
        )
    facts.append(("At risk now", _risk(process)))
    facts.append(("Owner", escape(process.owner or "not set")))
    facts.append(("Criticality", escape(process.criticality)))
    catalog = process.process
    for label, values in (
        ("Services", catalog.services if catalog else []),
        ("Applications", catalog.applications if catalog else []),
        ("Infrastructure", catalog.infrastructure if catalog else []),
    ):
        facts.append((label, escape(", ".join(values)) if values else "not in the catalog"))
    rows = "".join(_journey_row(row, overview, tz) for row in process.journeys)
    return f"""<section id="p-{pid}" class="process {process.state.css}" data-process="{pid}" \
data-state="{process.state.css}" aria-labelledby="h-{pid}">
<h2 id="h-{pid}">{h.state_badge(process.state)} {escape(process.name)}</h2>
{h.facts(facts)}
<div class="scroll" role="region" tabindex="0" aria-label="Journeys of {h.attr(process.name)}">
<table class="journeys">
<caption class="visually-hidden">Journeys of {escape(process.name)}</caption>
<thead><tr><th scope="col">Journey</th><th scope="col">State</th><th scope="col">Last run</th>\
<th scope="col">Failed step and reason</th><th scope="col">Last 24 hours</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
</div>
</section>
"""


def _risk(process: ProcessRow) -> str:
    """Transactions (and value) at risk per hour, with the hour's normal volume beside."""
    if process.runs_hour == 0:
        return "no finished run in the last hour"
    ratio = process.failure_ratio or 0.0
    share = (
        f"{h.percent(ratio)} of the last hour's {h.plural(process.runs_hour, 'run', 'runs')} failed"
    )
    if process.expected_per_hour is None:
        return f"{share} (no volume in the catalog)"
    at_risk = process.at_risk or 0.0
    normal = (
        f"{h.number(process.expected_per_hour)} transactions/hour expected at this hour "
        f"({process.hour}:00 to {process.hour}:59)"
    )
    if process.failures_hour == 0:
        return f'<span data-at-risk="0">none</span>: {share}; {normal}'
    text = (
        f'<span class="risk" data-at-risk="{at_risk:.6g}">'
        f"{h.number(at_risk)} transactions/hour</span>"
    )
    if process.value_at_risk is not None:
        text += (
            f' (<span class="risk" data-value-at-risk="{process.value_at_risk:.6g}">'
            f"{h.money(process.value_at_risk)} {escape(process.currency)}/hour</span>)"
        )
    return f"{text} of {normal}; {share}"


def _journey_row(row: JourneyRow, overview: Overview, tz: tzinfo) -> str:
    journey = row.journey
    jid = h.attr(journey.journey)
    name = escape(journey.title or journey.journey)
    who = f"{escape(journey.journey)} · {escape(journey.persona.value)}"
    last = row.last
    if last is None:
        last_cell, why = "not run yet", ""
    else:
        last_cell = (
            f"{escape(last.outcome.value)} · {h.seconds(last.duration)} · "
            f"{h.at(last.started_at, tz)}"
        )
        why = ""
        if not last.ok and last.reason is not None:
            why = f"{escape(last.failed_step or 'the run')}: {escape(last.reason.value)}"
    if row.failing_since is not None:
        why += (
            f"<br><small>failing since {h.at(row.failing_since, tz)}, "
            f"{h.plural(row.streak, 'failed run', 'failed runs')}</small>"
        )
    return (
        f'<tr class="{row.state.css}" data-journey="{jid}"><th scope="row">'
        f'<a id="j-{jid}" href="/journeys/{quote(journey.journey)}">{name}</a><br>'
        f"<small>{who}</small></th><td>{h.state_badge(row.state)}{h.running(row, overview)}</td>"
        f"<td>{last_cell}</td><td>{why}</td><td>{_strip(row, overview.now, tz)}</td></tr>\n"
    )


def _strip(row: JourneyRow, now: float, tz: tzinfo) -> str:
    """24 hours of one journey: a mark per half hour with runs (height and colour by
    outcome, a latency bar below); each mark's title says the figures."""
    width, gap = 6, 1
    first = int(now // BUCKET_SECONDS) - BUCKETS + 1
    by_index = {b.index: b for b in row.buckets}
    threshold = row.threshold
    slowest = max((b.slowest for b in row.buckets), default=0.0)
    scale = max(slowest, threshold or 0.0) or 1.0
    marks = []
    runs = failures = 0
    for slot in range(BUCKETS):
        x = slot * width
        bucket = by_index.get(first + slot)
        if bucket is None or bucket.successes + bucket.failures == 0:
            marks.append(f'<rect class="empty" x="{x}" y="19" width="{width - gap}" height="1"/>')
            continue
        runs += bucket.successes + bucket.failures
        failures += bucket.failures
        marks.append(_mark(row, bucket, x, width - gap, scale, tz))
    label = (
        f"Last 24 hours of {row.journey.title or row.journey.journey}: "
        f"{h.plural(runs, 'run', 'runs')}, {failures} failed"
    )
    return (
        f'<svg class="strip" role="group" aria-label="{h.attr(label)}" width="{BUCKETS * width}"'
        f' height="40" viewBox="0 0 {BUCKETS * width} 40">{"".join(marks)}</svg>'
    )


def _mark(row: JourneyRow, bucket: Bucket, x: int, width: int, scale: float, tz: tzinfo) -> str:
    runs = bucket.successes + bucket.failures
    if bucket.failures == 0:
        kind, height, outcome = "ok", 7, "all passed"
    elif bucket.successes == 0:
        kind, height, outcome = "bad", 20, "all failed"
    else:
        kind, height, outcome = "some", 14, f"{bucket.failures} failed"
    start = bucket.index * BUCKET_SECONDS
    span = f"{h.clock(start, tz)} to {h.clock(start + BUCKET_SECONDS, tz)}"
    title = f"{span}: {h.plural(runs, 'run', 'runs')}, {outcome}"
    latency = ""
    threshold = row.threshold
    if bucket.successes:
        mean = bucket.total / bucket.successes
        title += f"; slowest {h.seconds(bucket.slowest)}, mean {h.seconds(mean)}"
        slow = threshold is not None and bucket.slowest > threshold
        if threshold is not None:
            title += f" (SLO {h.seconds(threshold)}{', exceeded' if slow else ''})"
        bar = max(1, round(17 * min(1.0, bucket.slowest / scale)))
        latency = (
            f'<rect class="{"slow" if slow else "lat"}" x="{x}" y="{40 - bar}" '
            f'width="{width}" height="{bar}"/>'
        )
    mark_id = f"s-{h.attr(row.journey.journey)}-{bucket.index}"
    return (
        f'<g id="{mark_id}" tabindex="0" role="img" aria-label="{h.attr(title)}">'
        f"<title>{escape(title)}</title>"
        f'<rect class="frame" x="{x}" y="0" width="{width}" height="40"/>'
        f'<rect class="{kind}" x="{x}" y="{20 - height}" width="{width}" height="{height}"/>'
        f"{latency}</g>"
    )
