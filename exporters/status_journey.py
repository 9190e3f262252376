"""A journey's page (``/journeys/<id>``): SLO attainment and error budget over the SLO
window from the history (saying plainly what part of the window it covers), p50 and p95
over the last hour and day, the last runs with their masked messages, and one run step
by step with its measurements (HTTP phases, web vitals) and links to its evidence."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from html import escape
from pathlib import Path
from urllib.parse import quote

from agent.run.results import StepResult
from agent.steps.kind import Unit
from exporters import status_html as h
from exporters.status import JourneyPage

__all__ = ["evidence_path", "render_journey"]


def render_journey(page: JourneyPage, version: str, evidence_root: Path | None) -> str:
    """``/journeys/<id>``: SLOs, latency, last runs, one run step by step."""
    overview, row, process = page.overview, page.row, page.process
    tz = h.zone(overview.timezone)
    journey = row.journey
    title = journey.title or journey.journey
    state = h.state_badge(row.state)
    since = ""
    if row.failing_since is not None:
        since = (
            f"; failing since {h.at(row.failing_since, tz)} "
            f"({h.ago(overview.now - row.failing_since)}, "
            f"{h.plural(row.streak, 'failed run', 'failed runs')})"
        )
    running = h.running(row, overview)
    facts = h.facts(
        [
            ("Business process", f'<a href="/#p-{h.attr(process.id)}">{escape(process.name)}</a>'),
            ("Persona", escape(journey.persona.value)),
            ("Owner", escape(journey.owner or process.owner or "not set")),
            ("Criticality", escape(journey.criticality)),
            ("Runs", f"every {h.duration(journey.schedule.every)}"),
            ("Service", escape(journey.service or "not set")),
            ("Application", escape(journey.application or "not set")),
        ]
    )
    parts = [
        '<p><a href="/">← All business processes</a></p>',
        f"<h1>{escape(title)} <small>({escape(journey.journey)})</small></h1>",
        f'<p class="headline">{state} {escape(row.state.meaning)}{since}.{running}</p>',
        facts,
        h.history_note(overview, page.history_problem),
        _slo_section(page, tz),
        _latency_section(page),
        f'<section aria-labelledby="runs"><h2 id="runs">Last runs</h2>{_runs_table(page, tz)}'
        "</section>",
        _chosen_run(page, tz, evidence_root),
    ]
    return h.document(overview, version, "".join(parts), title=title)


def evidence_path(path: str, root: Path | None) -> str | None:
    """The path of an evidence file relative to the artifacts folder (as the evidence
    route takes it), or None when it is not inside it."""
    if root is None:
        return None
    try:
        relative = Path(path).resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return relative.as_posix()


def _slo_section(page: JourneyPage, tz: tzinfo) -> str:
    slo = page.row.journey.slo
    head = '<section aria-labelledby="slo"><h2 id="slo">Service level</h2>'
    if slo is None:
        return head + "<p>This journey has no SLO.</p></section>"
    figures = page.figures
    if figures is None:
        return head + "<p>No history to measure it against.</p></section>"
    window = h.window(slo.window)
    if figures.covered_from is None:
        return head + f"<p>No finished run in the {window} SLO window yet.</p></section>"
    covered = figures.covered
    if covered < slo.window * 0.99:
        scope = (
            f"Only the last {h.duration(covered)} of the {window} SLO window are in the "
            f"history (its first run there started {h.at(figures.covered_from, tz)}): "
            "these figures cover that time, not the whole window."
        )
    else:
        scope = f"Over the whole {window} SLO window."
    rows = []
    finished = figures.successes + figures.failures
    if slo.availability is not None and finished:
        achieved = figures.successes / finished
        rows.append(
            _slo_row(
                "Availability (runs that succeeded)",
                slo.availability,
                achieved,
                f"{figures.successes} of {finished} runs",
            )
        )
    if slo.latency is not None and figures.successes:
        within = (figures.successes - figures.slow) / figures.successes
        rows.append(
            _slo_row(
                f"Latency (successful runs within {h.seconds(slo.latency.threshold)})",
                slo.latency.objective,
                within,
                f"{figures.successes - figures.slow} of {figures.successes} runs",
            )
        )
    table = (
        (
            '<table><thead><tr><th scope="col">Objective</th><th scope="col">Target</th>'
            '<th scope="col">Achieved</th><th scope="col">Error budget left</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
        if rows
        else "<p>No run to count yet.</p>"
    )
    return f'{head}<p data-covered="{covered:.0f}">{scope}</p>{table}</section>'


def _slo_row(name: str, objective: float, achieved: float, counts: str) -> str:
    budget = 1.0 - objective
    left = 1.0 - (1.0 - achieved) / budget if budget > 0 else (1.0 if achieved >= 1 else -math.inf)
    state = "ok" if left > 0.25 else "degraded" if left > 0 else "failing"
    if math.isinf(left):
        shown = "none (no error allowed)"
    elif left < 0:
        shown = f"overspent: {h.percent(1.0 - left, 0)} of it used"
    else:
        shown = f"{h.percent(left)} left"
    return (
        f'<tr><th scope="row">{escape(name)}</th><td>{h.percent(objective, 2)}</td>'
        f"<td>{h.percent(achieved, 2)} <small>({escape(counts)})</small></td>"
        f'<td><span class="state {state}" data-budget-left="{left:.6g}">{shown}</span>'
        "</td></tr>"
    )


def _latency_section(page: JourneyPage) -> str:
    head = '<section aria-labelledby="latency"><h2 id="latency">Latency of successful runs</h2>'
    figures = page.figures
    if figures is None:
        return head + "<p>No history to compute it from.</p></section>"
    cells = []
    for label, share in (("p50 (median)", 0.5), ("p95", 0.95)):
        hour, day = figures.latency(3600, share), figures.latency(86400, share)
        cells.append(
            f'<tr><th scope="row">{label}</th><td>{h.seconds(hour)}</td>'
            f"<td>{h.seconds(day)}</td></tr>"
        )
    cells.append(
        f'<tr><th scope="row">runs</th><td>{figures.count(3600)}</td>'
        f"<td>{figures.count(86400)}</td></tr>"
    )
    return (
        f'{head}<table><thead><tr><th scope="col"></th><th scope="col">Last hour</th>'
        f'<th scope="col">Last 24 hours</th></tr></thead><tbody>{"".join(cells)}</tbody>'
        "</table></section>"
    )


def _runs_table(page: JourneyPage, tz: tzinfo) -> str:
    if not page.runs:
        return "<p>No run yet.</p>"
    chosen = page.chosen.run_id if page.chosen else None
    base = f"/journeys/{quote(page.row.journey.journey)}"
    rows = []
    for run in page.runs:
        message = h.shorten(run.message)
        current = ' aria-current="true"' if run.run_id == chosen else ""
        link = f'<a href="{base}?run={quote(run.run_id)}#run"{current}>steps</a>'
        rows.append(
            f'<tr class="{escape(run.outcome.value)}"><td>{h.at(run.started_at, tz)}</td>'
            f"<td>{escape(run.outcome.value)}</td><td>{h.seconds(run.duration)}</td>"
            f"<td>{run.attempts}</td><td>{escape(run.failed_step or '')}</td>"
            f"<td>{escape(run.reason.value if run.reason and not run.ok else '')}</td>"
            f'<td class="message">{escape(message)}</td><td>{link}</td></tr>'
        )
    head = "".join(
        f'<th scope="col">{h}</th>'
        for h in (
            "Started",
            "Outcome",
            "Duration",
            "Attempts",
            "Failed step",
            "Reason",
            "Message (secrets masked)",
            "Run",
        )
    )
    return (
        '<div class="scroll" role="region" tabindex="0" aria-label="Last runs">'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _chosen_run(page: JourneyPage, tz: tzinfo, root: Path | None) -> str:
    run = page.chosen
    head = '<section id="run" aria-labelledby="run-title">'
    if run is None:
        return f'{head}<h2 id="run-title">A run step by step</h2><p>No run to show.</p></section>'
    title = f"The run of {h.at(run.started_at, tz)}, step by step"
    summary = (
        f"{escape(run.outcome.value)} in {h.seconds(run.duration)} after "
        f"{h.plural(run.attempts, 'attempt', 'attempts')}; run id "
        f"<code>{escape(run.run_id)}</code>, trace id <code>{escape(run.trace_id)}</code>"
    )
    if not run.steps:
        return (
            f'{head}<h2 id="run-title">{title}</h2><p>{summary}.</p>'
            "<p>The steps of this run are no longer kept (older than the history's detail"
            " age).</p></section>"
        )
    rows = "".join(_step_row(step, root) for step in run.steps)
    extra = _evidence(run.artifacts, root, exclude=_step_artifacts(run.steps))
    head_cells = "".join(
        f'<th scope="col">{h}</th>'
        for h in ("Step", "Kind", "Result", "Duration", "Timings and measurements", "Evidence")
    )
    return (
        f'{head}<h2 id="run-title">{title}</h2><p>{summary}.</p>'
        '<div class="scroll" role="region" tabindex="0" aria-label="Steps of the run">'
        f"<table><thead><tr>{head_cells}</tr></thead><tbody>{rows}"
        f"</tbody></table></div>{f'<p>Evidence of the run: {extra}</p>' if extra else ''}"
        "</section>"
    )


def _step_row(step: StepResult, root: Path | None) -> str:
    result = "passed" if step.ok else f"failed: {step.reason.value if step.reason else 'error'}"
    message = (
        f'<div class="message">{escape(h.shorten(step.message))}</div>' if step.message else ""
    )
    return (
        f'<tr class="{"success" if step.ok else "failure"}"><th scope="row">{escape(step.name)}'
        f"</th><td>{escape(step.kind)}</td><td>{escape(result)}{message}</td>"
        f"<td>{h.seconds(step.duration)}</td><td>{_measurements(step)}</td>"
        f"<td>{_evidence(step.artifacts, root) or '<small>none</small>'}</td></tr>"
    )


def _measurements(step: StepResult) -> str:
    groups: dict[str, list[str]] = {}
    for m in step.measurements:
        groups.setdefault(m.group, []).append(
            (f"{escape(m.name)} " if m.name else "") + _value(m.value, m.unit)
        )
    if not groups:
        return "<small>none</small>"
    return "<br>".join(
        f"<b>{escape(g.replace('_', ' '))}</b> {' · '.join(v)}" for g, v in groups.items()
    )


def _value(value: float, unit: Unit) -> str:
    if unit is Unit.SECONDS:
        return h.seconds(value)
    if unit is Unit.TIMESTAMP:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d")
    if unit is Unit.SCORE:
        return f"{value:.3g}"
    return f"{value:g}"


def _step_artifacts(steps: Sequence[StepResult]) -> set[str]:
    return {path for step in steps for path in step.artifacts}


def _evidence(paths: Iterable[str], root: Path | None, exclude: set[str] | None = None) -> str:
    links = []
    for path in paths:
        if exclude and path in exclude:
            continue
        name = Path(path).name
        relative = evidence_path(path, root)
        label = _evidence_label(name)
        if relative is None:
            links.append(f"<small>{escape(label)} (not served)</small>")
        else:
            links.append(
                f'<a href="/evidence/{quote(relative)}" data-evidence="{h.attr(label)}">'
                f"{escape(label)}</a>"
            )
    return " · ".join(links)


def _evidence_label(name: str) -> str:
    for suffix, label in (
        (".screenshot.png", "screenshot"),
        (".trace.zip", "trace"),
        (".html", "page HTML"),
        (".console.log", "console log"),
    ):
        if name.endswith(suffix):
            return label
    return name
