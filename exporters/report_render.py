"""The report as text (for a terminal or an e-mail) and as one HTML file (no script, no
external resource, every value escaped)."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from exporters.report import Incident, JourneyReport, ProcessReport, Report, budget_used
from exporters.status_html import window

__all__ = ["render_html", "render_text"]


def render_text(report: Report) -> str:
    zone = ZoneInfo(report.timezone)
    lines = [_title(report, zone), _coverage(report, zone), ""]
    if not report.processes:
        lines.append("No runs in this period.")
    for process in report.processes:
        lines.extend(_process_text(process, report, zone))
    return "\n".join(lines).rstrip() + "\n"


def render_html(report: Report) -> str:
    zone = ZoneInfo(report.timezone)
    sections = "".join(_process_html(p, report, zone) for p in report.processes)
    if not report.processes:
        sections = "<p>No runs in this period.</p>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(_title(report, zone))}</title>
<style>
body {{ font: 16px/1.45 system-ui, sans-serif; max-width: 70em; margin: 0 auto; padding: 1em; }}
table {{ border-collapse: collapse; width: 100%; margin: 0.5em 0 1em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3em 0.5em; text-align: left; }}
.miss {{ color: #a4001d; font-weight: 600; }}
section {{ border-top: 2px solid #ccc; margin-top: 1.5em; }}
</style>
</head>
<body>
<header><h1>{escape(_title(report, zone))}</h1><p>{escape(_coverage(report, zone))}</p></header>
<main>{sections}</main>
</body>
</html>
"""


# -- text ------------------------------------------------------------------------------


def _title(report: Report, zone: ZoneInfo) -> str:
    where = f", location {report.location}" if report.location else ""
    return (
        f"Journeyman report: {_when(report.since, zone)} to {_when(report.until, zone)} "
        f"({_span(report.period)}){where}"
    )


def _coverage(report: Report, zone: ZoneInfo) -> str:
    if report.history_from is None:
        return "The history holds no run."
    if report.history_from > report.since:
        return (
            f"The history begins {_when(report.history_from, zone)}: the period is covered "
            f"from then on only."
        )
    return f"The history covers the whole period (it begins {_when(report.history_from, zone)})."


def _process_text(process: ProcessReport, report: Report, zone: ZoneInfo) -> list[str]:
    owner = f", owner {process.process.owner}" if process.process and process.process.owner else ""
    lines = [f"{process.name} [{process.id}]{owner}"]
    availability = process.availability
    runs = f"{process.successes:,} of {process.finished:,} runs succeeded"
    lines.append(
        f"  Availability {_pct(availability)} ({runs}); "
        f"{_plural(len(process.incidents), 'incident', 'incidents')}"
    )
    lines.append(f"  Affected: {_affected(process.transactions, process.value, process)}")
    for journey in process.journeys:
        lines.extend("  " + line for line in _journey_lines(journey, report))
    if process.incidents:
        lines.append("  Incidents:")
        for incident in process.incidents:
            lines.extend(
                "    " + line for line in _incident_lines(incident, process, zone, report.until)
            )
    lines.append("")
    return lines


def _journey_lines(journey: JourneyReport, report: Report) -> list[str]:
    name = journey.journey + (f" ({journey.title})" if journey.title else "")
    latency = f"p50 {_secs(journey.p50)}, p95 {_secs(journey.p95)}"
    slo = journey.slo
    lines = [f"{name}: {journey.finished:,} runs, {journey.failures:,} failed; {latency}"]
    if slo is None:
        lines.append("  no SLO")
        return lines
    if slo.availability is not None:
        used = budget_used(
            journey.failures, journey.finished, slo.availability, report.period, slo.window
        )
        lines.append(
            f"  availability {_pct(journey.availability)} against {_pct(slo.availability)}"
            f"{_verdict(journey.availability, slo.availability)}; "
            f"{_pct(used, 1)} of the {window(slo.window)} error budget used"
        )
    if slo.latency is not None:
        objective = slo.latency.objective
        used = budget_used(journey.slow, journey.successes, objective, report.period, slo.window)
        lines.append(
            f"  within {_secs(slo.latency.threshold)}: {_pct(journey.within_threshold)} against "
            f"{_pct(objective)}{_verdict(journey.within_threshold, objective)}; "
            f"{_pct(used, 1)} of the {window(slo.window)} latency budget used"
        )
    return lines


def _incident_lines(
    incident: Incident, process: ProcessReport, zone: ZoneInfo, until: float
) -> list[str]:
    if incident.end is not None:
        span = f"to {_when(incident.end, zone)} ({_span(incident.end - incident.start)})"
    else:
        span = f"on, still failing at the end ({_span(until - incident.start)} so far)"
    affected = _affected(incident.transactions, incident.value, process)
    lines = [
        f"{_when(incident.start, zone)} {span}: {incident.failures:,} of "
        f"{incident.runs:,} runs failed; affected {affected}"
    ]
    for streak in incident.streaks:
        step = f"at '{streak.failed_step}'" if streak.failed_step else "before any step"
        reason = streak.reason.value if streak.reason else "unknown"
        message = f": {_short(streak.message)}" if streak.message else ""
        lines.append(f"  {streak.journey} failed {step} ({reason}){message}")
    return lines


def _affected(transactions: float | None, value: float | None, process: ProcessReport) -> str:
    if transactions is None:
        return "unknown (no volume in the catalog)"
    text = f"about {_amount(transactions)} transactions"
    if value is not None and process.process is not None:
        text += f" ({value:,.2f} {process.process.currency})"
    return text


# -- HTML ------------------------------------------------------------------------------


def _process_html(process: ProcessReport, report: Report, zone: ZoneInfo) -> str:
    owner = process.process.owner if process.process and process.process.owner else "not set"
    rows = []
    for journey in process.journeys:
        rows.append(_journey_row(journey, report))
    incidents = "".join(
        "<li>"
        + "<br>".join(escape(line) for line in _incident_lines(i, process, zone, report.until))
        + "</li>"
        for i in process.incidents
    )
    return (
        f'<section aria-labelledby="p-{escape(process.id)}"><h2 id="p-{escape(process.id)}">'
        f"{escape(process.name)} <small>({escape(process.id)})</small></h2>"
        f"<p>Owner: {escape(owner)}. Availability {_pct(process.availability)} "
        f"({process.successes:,} of {process.finished:,} runs succeeded). Affected: "
        f"{escape(_affected(process.transactions, process.value, process))}.</p>"
        '<table><thead><tr><th scope="col">Journey</th><th scope="col">Runs</th>'
        '<th scope="col">Availability (SLO)</th><th scope="col">Budget used</th>'
        '<th scope="col">Within threshold (SLO)</th><th scope="col">Budget used</th>'
        '<th scope="col">p50 / p95</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        f"<h3>Incidents</h3>{f'<ol>{incidents}</ol>' if incidents else '<p>None.</p>'}"
        "</section>"
    )


def _journey_row(journey: JourneyReport, report: Report) -> str:
    slo = journey.slo
    cells = [escape(journey.journey), f"{journey.finished:,}"]
    if slo is not None and slo.availability is not None:
        used = budget_used(
            journey.failures, journey.finished, slo.availability, report.period, slo.window
        )
        miss = _missed(journey.availability, slo.availability)
        cells += [
            f"{miss}{_pct(journey.availability)} ({_pct(slo.availability)})",
            _pct(used, 1),
        ]
    else:
        cells += [_pct(journey.availability), "no SLO"]
    if slo is not None and slo.latency is not None:
        objective = slo.latency.objective
        used = budget_used(journey.slow, journey.successes, objective, report.period, slo.window)
        miss = _missed(journey.within_threshold, objective)
        cells += [
            f"{miss}{_pct(journey.within_threshold)} within {_secs(slo.latency.threshold)} "
            f"({_pct(objective)})",
            _pct(used, 1),
        ]
    else:
        cells += ["no latency SLO", ""]
    cells.append(f"{_secs(journey.p50)} / {_secs(journey.p95)}")
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _missed(achieved: float | None, objective: float) -> str:
    return (
        '<span class="miss">missed: </span>'
        if achieved is not None and achieved < objective
        else ""
    )


# -- formatting ------------------------------------------------------------------------


def _verdict(achieved: float | None, objective: float) -> str:
    if achieved is None:
        return ""
    return " (met)" if achieved >= objective else " (MISSED)"


def _when(unix: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(unix, zone).strftime("%Y-%m-%d %H:%M %Z")


def _span(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        days = int(seconds // 86400)
        return f"{days} day" if days == 1 else f"{days} days"
    if seconds >= 3600:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _pct(ratio: float | None, digits: int = 2) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:.{digits}f}%"


def _secs(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _amount(value: float) -> str:
    return f"{value:,.1f}"


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
