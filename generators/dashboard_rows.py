"""The panels of the dashboard: an overview of the business processes, a row per
process, a row on the agents.

Every journey series is filtered by the ``$journey`` and ``$location`` variables, and each
process row by its own process. The at-risk figures and SLO series are recording rules of
``journeyman rules`` (:data:`RECORDED`); they sum over locations, so the location
filter does not narrow them. The agents' own series have no location label: they are
kept for the agents (``instance``) that report a chosen location.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.language.catalog import BusinessProcess
from agent.language.model import Journey
from agent.steps import KINDS_BY_NAME
from generators import dashboard_json as g
from generators.rules_burn import BURN_ALERTS
from generators.rules_text import percent

__all__ = ["RECORDED", "Process", "agent_row", "overview", "process_row"]

RATE = "$__rate_interval"
WHERE = 'journey=~"$journey",location=~"$location"'  # every journey series has both labels

AT_RISK = "business_process:transactions_at_risk:rate1h"
VALUE_AT_RISK = "business_process:value_at_risk:rate1h"
BUDGET_LEFT = "journey:slo_error_budget:remaining"
BURN_RATE = "journey:slo_burn_rate:rate1h"
RECORDED = (AT_RISK, VALUE_AT_RISK, BUDGET_LEFT, BURN_RATE)
"""Series of ``journeyman rules`` the dashboard reads (summed over locations)."""

_STATE_MAPPINGS = [
    {"type": "value", "options": {
        "0": {"color": "green", "index": 0, "text": "ok"},
        "1": {"color": "red", "index": 2, "text": "failing"},
    }},
    {"type": "range", "options": {
        "from": 1e-9, "to": 0.999999999,
        "result": {"color": "orange", "index": 1, "text": "degraded"},
    }},
]  # fmt: skip
_STATE_COLOURS = g.thresholds("green", (1e-9, "orange"), (1, "red"))
_STATE_HELP = (
    "Share of the journeys (per location) whose last run failed: ok (none), degraded "
    "(some), failing (all), no data (no run yet)."
)

_RECORDED_NOTE = (
    "From the recording rules of `journeyman rules`, over all locations (the location "
    "filter does not apply)."
)


@dataclass(frozen=True, slots=True)
class Process:
    """A business process with journeys: its catalog entry (if any) and what it exports."""

    id: str
    entry: BusinessProcess | None
    journeys: tuple[Journey, ...]

    @property
    def title(self) -> str:
        return f"{self.entry.name} · {self.id}" if self.entry else self.id

    @property
    def metrics(self) -> frozenset[str]:
        """The metric families its journeys' step kinds export."""
        return frozenset(
            measure.metric
            for journey in self.journeys
            for step in journey.steps
            for measure in KINDS_BY_NAME[step.kind_name].measures
        )

    @property
    def slos(self) -> list[Journey]:
        return [j for j in self.journeys if j.slo is not None]

    def selector(self) -> str:
        return f'business_process="{self.id}",{WHERE}'


def overview(layout: g.Layout, processes: list[Process]) -> None:
    layout.row("overview", "All business processes")
    chosen = 'business_process=~"$business_process"'
    state = f"1 - avg by (business_process) (journey_success{{{chosen},{WHERE}}})"
    layout.add("overview/state", g.stat(
        "State", _STATE_HELP, [g.target(state, "{{business_process}}")],
        unit="none", limits=_STATE_COLOURS, mappings=_STATE_MAPPINGS,
    ), 6, 6)  # fmt: skip
    at_risk = "The failed share of the process's runs over 1h x this hour's normal volume"
    if any(p.entry and p.entry.volume for p in processes):
        layout.add("overview/at-risk", g.stat(
            "Transactions at risk per hour", f"{at_risk}. {_RECORDED_NOTE}",
            [g.target(f"{AT_RISK}{{{chosen}}}", "{{business_process}}")],
            unit="short", bars=True, min_max=(0, None),
            limits=g.thresholds("green", (1e-9, "red")),
        ), 6, 6)  # fmt: skip
    if any(p.entry and p.entry.volume and p.entry.value_per_transaction for p in processes):
        layout.add("overview/value-at-risk", g.stat(
            "Value at risk per hour",
            f"{at_risk} x the value of one transaction. {_RECORDED_NOTE}",
            [g.target(f"{VALUE_AT_RISK}{{{chosen}}}", "{{business_process}} ({{currency}})")],
            unit="short", bars=True, min_max=(0, None),
            limits=g.thresholds("green", (1e-9, "red")),
        ), 6, 6)  # fmt: skip
    if any("journey_tls_cert_expiry_timestamp_seconds" in p.metrics for p in processes):
        expiry = "min by (business_process, journey, step) "
        expiry += f"(journey_tls_cert_expiry_timestamp_seconds{{{chosen},{WHERE}}})"
        layout.add("overview/certificates", g.stat(
            "Certificates expire in", "Time left on the server certificate each step saw, "
            "soonest first (https and TLS steps only: empty when there are none).",
            [g.target(f"sort({expiry} - time())", "{{journey}} / {{step}}")], unit="s", bars=True,
            limits=g.thresholds("red", (7 * 86400, "orange"), (21 * 86400, "green")),
        ), 6, 6)  # fmt: skip


def process_row(layout: g.Layout, process: Process) -> None:
    key = f"process/{process.id}"
    sel = process.selector()
    layout.row(key, process.title)
    layout.add(f"{key}/about", g.text("About", _about(process)), 6, 6)
    state = f"1 - avg(journey_success{{{sel}}})"
    layout.add(f"{key}/state", g.stat(
        "State", _STATE_HELP, [g.target(state, "state")],
        unit="none", limits=_STATE_COLOURS, mappings=_STATE_MAPPINGS,
    ), 4, 6)  # fmt: skip
    _at_risk_stats(layout, key, process)
    if process.slos:
        recorded = f'business_process="{process.id}",journey=~"$journey"'
        layout.add(f"{key}/budget", g.stat(
            "Error budget left", "1 = untouched, 0 = spent, below 0 = overspent, over each "
            "SLO's window. " + _RECORDED_NOTE,
            [g.target(f"{BUDGET_LEFT}{{{recorded}}}", "{{journey}} {{slo}}")],
            unit="percentunit", bars=True, min_max=(-1, 1),
            limits=g.thresholds("red", (0, "orange"), (0.25, "green")),
        ), 5, 6)  # fmt: skip
    _slo_and_latency(layout, key, process)
    _failures_and_timings(layout, key, process)


def _about(process: Process) -> str:
    entry = process.entry
    lines = [_md(entry.description), ""] if entry and entry.description else []
    if entry:
        for label, values in (
            ("Owner", [entry.owner] if entry.owner else []),
            ("Services", entry.services),
            ("Applications", entry.applications),
            ("Infrastructure", entry.infrastructure),
        ):
            if values:
                lines.append(f"**{label}:** {_md(', '.join(values))}  ")
    lines.append("**Journeys:**")
    for journey in process.journeys:
        slo = journey.slo
        goal = f", {percent(slo.availability)} available" if slo and slo.availability else ""
        title = f" {_md(journey.title)}" if journey.title else ""
        lines.append(f"- `{journey.journey}`{title} ({journey.persona}{goal})")
    return "\n".join(lines)


def _md(text: str) -> str:
    """Text shown as itself in markdown (a title with markup stays text)."""
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)


def _at_risk_stats(layout: g.Layout, key: str, process: Process) -> None:
    entry = process.entry
    if entry is None or entry.volume is None:
        return
    where = f'{{business_process="{process.id}"}}'
    expected = f"max(business_process_expected_transactions_per_hour{where})"
    layout.add(f"{key}/at-risk", g.stat(
        "Transactions at risk per hour", "At risk: the failed share of the process's runs "
        "over 1h x this hour's normal volume; beside it, that volume (from the catalog). "
        + _RECORDED_NOTE,
        [g.target(f"{AT_RISK}{where}", "at risk"), g.target(expected, "normal this hour")],
        unit="short", decimals=1,
    ), 5, 6)  # fmt: skip
    if entry.value_per_transaction is not None:
        layout.add(f"{key}/value-at-risk", g.stat(
            "Value at risk per hour", "Transactions at risk x the value of one transaction "
            f"({entry.value_per_transaction:g} {entry.currency}). " + _RECORDED_NOTE,
            [g.target(f"{VALUE_AT_RISK}{where}", "at risk")],
            unit=f"suffix: {entry.currency}/h", decimals=0,
            limits=g.thresholds("green", (1e-9, "red")),
        ), 4, 6)  # fmt: skip


def _slo_and_latency(layout: g.Layout, key: str, process: Process) -> None:
    sel = process.selector()
    runs = f"journey_runs_total{{{sel},outcome"
    success = (
        f'sum by (journey) (rate({runs}="success"}}[{RATE}]))\n/\n'
        f'sum by (journey) (rate({runs}=~"success|failure"}}[{RATE}]))'
    )
    layout.add(f"{key}/success", g.timeseries(
        "Successful runs", "Successful runs among finished ones (aborted and not started "
        "runs count for neither), over all locations.",
        [g.target(success, "{{journey}}")], unit="percentunit", min_max=(0, 1),
    ), 8, 8)  # fmt: skip
    if process.slos:
        windows = {j.slo.window for j in process.slos if j.slo is not None}
        page = min(BURN_ALERTS[0].factor(w) for w in windows)
        recorded = f'business_process="{process.id}",journey=~"$journey"'
        layout.add(f"{key}/burn", g.timeseries(
            "Error budget burn rate (1h)", "How fast each SLO's error budget burns: 1x "
            f"spends it exactly over the SLO window; a page needs {page:g}x over 1h (and "
            "5m). " + _RECORDED_NOTE,
            [g.target(f"{BURN_RATE}{{{recorded}}}", "{{journey}} {{slo}}")],
            unit="suffix:x", min_max=(0, None),
            limits=g.thresholds("green", (1, "orange"), (page, "red")),
        ), 8, 8)  # fmt: skip
    duration = "journey_duration_seconds"
    targets = [
        g.target(_quantile(q, duration, "journey", sel), f"{{{{journey}}}} p{q * 100:g}")
        for q in (0.5, 0.95, 0.99)
    ]
    if any(j.slo and j.slo.latency for j in process.journeys):
        threshold = f"max by (journey) (journey_latency_threshold_seconds{{{sel}}})"
        targets.append(g.target(threshold, "{{journey}} SLO threshold"))
    layout.add(f"{key}/duration", g.timeseries(
        "Journey duration", "Percentiles of the end-to-end duration of successful runs, "
        "from the histogram (bucket resolution), over all locations.",
        targets, unit="s",
    ), 8, 8)  # fmt: skip


def _quantile(q: float, metric: str, by: str, sel: str) -> str:
    buckets = f"rate({metric}_bucket{{{sel}}}[{RATE}])"
    return f"histogram_quantile({q:g}, sum by ({by}, le) ({buckets}))"


def _failures_and_timings(layout: g.Layout, key: str, process: Process) -> None:
    sel = process.selector()
    steps = _quantile(0.95, "journey_step_duration_seconds", "journey, step", sel)
    layout.add(f"{key}/steps", g.timeseries(
        "Step duration p95", "95th percentile of successful steps' durations.",
        [g.target(steps, "{{journey}} / {{step}}")], unit="s",
    ), 12, 8)  # fmt: skip
    failed = (
        f"sum by (journey, step, reason) (increase(journey_failures_total{{{sel}}}[$__range])) > 0"
    )
    layout.add(f"{key}/failures", g.table(
        "Failed runs by reason and step", "Failed runs in the time range, by failure reason "
        "and failed step (step is empty when the run failed outside a step).",
        g.target(failed, instant=True), columns=["journey", "step", "reason"], value="Failed runs",
    ), 12, 8)  # fmt: skip
    metrics = process.metrics
    for metric, title in (
        ("journey_http_phase_seconds_total", "HTTP"),
        ("journey_tcp_phase_seconds_total", "TCP"),
    ):
        if metric in metrics:
            layout.add(f"{key}/{title.lower()}-phases", _phases(metric, title, sel), 12, 8)
    if "journey_web_vital_seconds" in metrics:
        _browser_panels(layout, key, sel)


def _phases(metric: str, kind: str, sel: str) -> g.Panel:
    """Mean seconds per phase of each step; stacked, they add up to a run's time there."""
    per_phase = f"sum by (journey, step, phase) (rate({metric}{{{sel}}}[{RATE}]))"
    steps = f"sum by (journey, step) (rate(journey_step_duration_seconds_count{{{sel}}}[{RATE}]))"
    return g.timeseries(
        f"{kind} time by step and phase",
        f"Mean seconds per successful {kind} step in each phase; stacked, the time one run "
        "spends there.",
        [g.target(f"{per_phase}\n/ ignoring (phase) group_left\n{steps}",
                  "{{step}} {{phase}}")],
        unit="s", stack=True,
    )  # fmt: skip


def _browser_panels(layout: g.Layout, key: str, sel: str) -> None:
    vitals = _quantile(0.75, "journey_web_vital_seconds", "vital", sel)
    layout.add(f"{key}/vitals", g.timeseries(
        "Web vitals p75", "75th percentile of each web vital of browser steps (TTFB, FCP, "
        "LCP, INP); the dashed lines are the good and poor limits of LCP.",
        [g.target(vitals, "{{vital}}")], unit="s",
        limits=g.thresholds("green", (2.5, "orange"), (4, "red")),
    ), 8, 8)  # fmt: skip
    cls = _quantile(0.75, "journey_web_vital_cls", "journey", sel)
    layout.add(f"{key}/cls", g.stat(
        "Layout shift p75", "75th percentile of cumulative layout shift (good <= 0.1, "
        "poor > 0.25).",
        [g.target(cls, "{{journey}}")], unit="none", decimals=3,
        limits=g.thresholds("green", (0.1, "orange"), (0.25, "red")),
    ), 4, 8)  # fmt: skip
    errors = [
        g.target(f"sum by (journey, step) (increase({metric}{{{sel}}}[{RATE}]))",
                 f"{{{{step}}}} {what}")
        for metric, what in (
            ("journey_console_errors_total", "console errors"),
            ("journey_failed_requests_total", "failed requests"),
        )
    ]  # fmt: skip
    layout.add(f"{key}/browser-errors", g.timeseries(
        "Browser console errors and failed requests", "Seen by browser steps.",
        errors, unit="short", bars=True,
    ), 12, 8)  # fmt: skip


def _at_agents(expr: str) -> str:
    """``expr`` (per instance) kept for the agents that report the chosen locations."""
    return f'{expr}\nand on (instance)\ngroup by (instance) (journey_info{{location=~"$location"}})'


def agent_row(layout: g.Layout, browsers: bool) -> None:
    layout.row("agent", "Agents")
    lag = _at_agents(
        f"sum by (instance, le) (rate(journeyman_scheduler_lag_seconds_bucket[{RATE}]))"
    )
    panels = [
        ("lag", "Scheduler lag p99", "How late runs start against their due time.",
         [g.target(f"histogram_quantile(0.99, {lag})", "{{instance}}")], "s"),
        ("in-flight", "Runs in flight", "Runs in progress, and journeys scheduled.",
         [g.target(_at_agents("sum by (instance) (journeyman_runs_in_flight)"),
                   "{{instance}} in flight"),
          g.target(_at_agents("sum by (instance) (journeyman_journeys_loaded)"),
                   "{{instance}} journeys")], "short"),
    ]  # fmt: skip
    if browsers:
        wait = _at_agents(
            f"sum by (instance, le) (rate(journeyman_browser_wait_seconds_bucket[{RATE}]))"
        )
        panels.append((
            "browser-wait", "Browser wait p95", "Time browser steps waited for the agent's "
            "browser (a slot, a launch, a context) before their clock started: the agent's "
            "time, never the target's.",
            [g.target(f"histogram_quantile(0.95, {wait})", "{{instance}}")], "s",
        ))  # fmt: skip
    skipped = (
        "sum by (journey) (increase(journeyman_skipped_runs_total{business_process=~"
        f'"$business_process",{WHERE}}}[{RATE}]))'
    )
    exporters = "sum by (instance, exporter, operation) "
    exporters += f"(increase(journeyman_exporter_errors_total[{RATE}]))"
    reloads = f"sum by (instance) (increase(journeyman_reload_failures_total[{RATE}]))"
    panels += [
        ("skipped", "Skipped runs", "Runs not started because the journey's previous run "
         "was still in flight.", [g.target(skipped, "{{journey}}")], "short"),
        ("exporter-errors", "Exporter errors", "Exporter calls that raised or timed out.",
         [g.target(_at_agents(exporters), "{{instance}} {{exporter}} {{operation}}")],
         "short"),
        ("reload-failures", "Rejected journey files", "Journey files a reload rejected "
         "(their last good version kept running).",
         [g.target(_at_agents(reloads), "{{instance}}")], "short"),
    ]  # fmt: skip
    for name, title, description, targets, unit in panels:
        layout.add(f"agent/{name}", g.timeseries(title, description, targets, unit=unit), 8, 8)
