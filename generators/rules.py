"""Journey SLOs -> Prometheus recording and alerting rules (``journeyman rules``).

One rule group per journey: the error ratios of each SLO over the windows the alerts
need and over the SLO window (all locations together, and by location for the pages'
windows), the error budget remaining, the current burn rate, the multi-window
multi-burn-rate alerts (page and ticket) and a no-data alert. A page needs the journey
burning from K locations, each on its own (K of N: ``slo.min_failing_locations``, else
``RulesOptions.min_failing_locations``; K is capped at the N locations reporting). One
group raises ``JourneymanAgentDown`` once per lost agent; one more turns each business
process's failure ratio into transactions and value at risk.

The output is a pure function of the input: journeys are sorted, nothing depends on
the clock or on dict order, so the same journeys give a byte-identical file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from agent.language.catalog import Catalog
from agent.language.model import Journey
from generators import rules_promql as q
from generators.rules_burn import (
    BURN_ALERTS,
    RECORDED_WINDOWS,
    AlertArithmetic,
    arithmetic,
    prom_duration,
)
from generators.rules_text import (
    Subject,
    agent_down_annotations,
    burn_annotations,
    no_data_annotations,
    percent,
)

__all__ = [
    "AGENT_DOWN",
    "FORMATS",
    "NO_DATA",
    "RuleSet",
    "RulesOptions",
    "SLOReport",
    "build",
    "render",
]

FORMATS = ("prometheus", "prometheus-operator")
AGENT_DOWN = "JourneymanAgentDown"
NO_DATA = "JourneyNoData"
_ALERT_NAMES = {
    "availability": "JourneyAvailabilityBudgetBurn",
    "latency": "JourneyLatencyBudgetBurn",
}


@dataclass(frozen=True, slots=True)
class RulesOptions:
    """Choices the SRE makes once for all journeys (``journeyman rules`` flags)."""

    min_failed_runs: int = 2  # guard: a page needs at least this many bad runs
    min_failing_locations: int = 2  # K of N, for journeys whose slo sets none
    no_data_intervals: int = 3  # "no data" after this many missed runs
    locations: int = 1  # how many locations run each journey (only for the arithmetic)
    # Not flags: fixed for production, short in tests of a live Prometheus.
    no_data_floor: float = 300.0  # never call a journey silent sooner (scrapes 1m apart)
    agent_down_for: float = 120.0  # `for:` of JourneymanAgentDown: a restart is not a loss

    def failing_locations(self, journey: Journey) -> int:
        """K: how many locations must see the journey burn for it to page."""
        own = journey.slo.min_failing_locations if journey.slo else None
        return own or self.min_failing_locations


@dataclass(frozen=True, slots=True)
class SLOReport:
    """The arithmetic of one journey SLO: what each of its alerts takes to fire."""

    journey: str
    slo: str
    objective: str
    every: float
    failing_locations: int  # K
    alerts: tuple[AlertArithmetic, ...]

    @property
    def fewest_to_page(self) -> int | None:
        counts = [
            a.fewest_bad_runs
            for a in self.alerts
            if a.severity == "page" and a.fewest_bad_runs is not None
        ]
        return min(counts, default=None)

    def warning(self) -> str | None:
        fewest = self.fewest_to_page
        where = (
            f"{self.journey}: {self.slo} {self.objective}, a run every {prom_duration(self.every)}"
        )
        if fewest is None:
            return f"{where}: no page can ever fire (objective too low for the burn factors)"
        if fewest <= 2:
            return (
                f"{where}: {fewest} bad run(s) can page; raise --min-failed-runs or "
                "slo.min_failing_locations, run it more often or from more locations"
            )
        return None


@dataclass(frozen=True, slots=True)
class RuleSet:
    groups: tuple[dict[str, Any], ...]
    reports: tuple[SLOReport, ...] = field(default=())
    options: RulesOptions = field(default_factory=RulesOptions)

    @property
    def warnings(self) -> list[str]:
        return [w for w in (r.warning() for r in self.reports) if w is not None]


def build(
    journeys: Iterable[Journey], catalog: Catalog | None, options: RulesOptions | None = None
) -> RuleSet:
    """Rules for ``journeys`` (their SLOs, volumes and owners from ``catalog``)."""
    options = options or RulesOptions()
    groups: list[dict[str, Any]] = []
    reports: list[SLOReport] = []
    pages = False  # does any journey's no-data alert page (then so does a lost agent)
    for journey in sorted(journeys, key=lambda j: j.journey):
        process = catalog.process(journey.business_process) if catalog else None
        subject = Subject(journey, process)
        rules: list[dict[str, Any]] = []
        for slo_kind, objective in _objectives(journey):
            report = _report(journey, slo_kind, objective, options)
            reports.append(report)
            rules += _slo_rules(subject, slo_kind, objective, report, options)
        rules.append(_no_data_alert(subject, options))
        groups.append({"name": f"journeyman-journey-{journey.journey}", "rules": rules})
        pages |= journey.criticality in ("high", "critical")
    groups.append({"name": "journeyman-agents", "rules": _agent_rules(pages, options)})
    groups.append({"name": "journeyman-business-processes", "rules": q.at_risk_rules()})
    return RuleSet(tuple(groups), tuple(reports), options)


def render(rules: RuleSet, fmt: str = "prometheus", name: str = "journeyman-slos") -> str:
    """The rules file (or a PrometheusRule object), headed by the arithmetic as comments."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    document: dict[str, Any] = {"groups": list(rules.groups)}
    if fmt == "prometheus-operator":
        document = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "journeyman"}},
            "spec": document,
        }
    body = yaml.dump(document, Dumper=_dumper(), sort_keys=False, allow_unicode=True, width=1 << 16)
    return _header(rules) + body


def _objectives(journey: Journey) -> list[tuple[str, float]]:
    slo = journey.slo
    if slo is None:
        return []
    kinds = [("availability", slo.availability)]
    if slo.latency is not None:
        kinds.append(("latency", slo.latency.objective))
    return [(kind, objective) for kind, objective in kinds if objective is not None]


def _report(journey: Journey, slo_kind: str, objective: float, options: RulesOptions) -> SLOReport:
    assert journey.slo is not None
    every = journey.schedule.every
    k = options.failing_locations(journey)
    alerts = tuple(
        arithmetic(
            alert,
            budget=1 - objective,
            slo_window=journey.slo.window,
            every=every,
            locations=options.locations,
            min_bad_runs=options.min_failed_runs if alert.severity == "page" else 1,
            failing_locations=min(k, options.locations) if alert.severity == "page" else 1,
        )
        for alert in BURN_ALERTS
    )
    return SLOReport(journey.journey, slo_kind, percent(objective), every, k, alerts)


def _slo_rules(
    subject: Subject, slo_kind: str, objective: float, report: SLOReport, options: RulesOptions
) -> list[dict[str, Any]]:
    journey = subject.journey
    assert journey.slo is not None
    sli = q.sli(journey.journey, slo_kind)
    budget = 1 - objective
    window = journey.slo.window
    # The journey label is in every result already; as a static label it also tells
    # promtool's duplicate-rule lint that each journey's rules are distinct.
    labels = {"journey": journey.journey, "slo": slo_kind}
    rules: list[dict[str, Any]] = [
        {
            "record": f"journey:slo_errors:ratio_rate{prom_duration(w)}",
            "expr": q.error_ratio(sli, w),
            "labels": labels,
        }
        for w in sorted({*RECORDED_WINDOWS, window})
    ]
    # By location, over the windows the pages read: which locations see the burn.
    page_windows = {w for a in report.alerts if a.severity == "page" for w in (a.long, a.short)}
    rules += [
        {
            "record": f"journey_location:slo_errors:ratio_rate{prom_duration(w)}",
            "expr": q.error_ratio(sli, w, by_location=True),
            "labels": labels,
        }
        for w in sorted(page_windows)
    ]
    rules.append(
        {
            "record": "journey:slo_error_budget:remaining",
            "expr": q.budget_remaining(sli, window, budget),
            "labels": labels,
        }
    )
    rules.append(
        {
            "record": "journey:slo_burn_rate:rate1h",
            "expr": f"{q.ratio_series(sli, 3600.0)} / {q.number(budget)}",
            "labels": labels,
        }
    )
    for severity in ("page", "ticket"):
        pairs = [
            a for a in report.alerts if a.severity == severity and a.fewest_bad_runs is not None
        ]
        if not pairs:
            continue
        conditions = [_pair_condition(sli, a, budget, options, report) for a in pairs]
        rules.append(
            {
                "alert": _ALERT_NAMES[slo_kind],
                "expr": "\nor\n".join(f"(\n{c}\n)" for c in conditions),
                "labels": _alert_labels(journey, severity, slo_kind),
                "annotations": burn_annotations(
                    subject, sli, percent(objective), pairs[0].long, severity
                ),
            }
        )
    return rules


def _pair_condition(
    sli: q.SLI, alert: AlertArithmetic, budget: float, options: RulesOptions, report: SLOReport
) -> str:
    """Both windows burn (all locations together), past the guard; a page also needs
    K locations burning on their own."""
    parts = [
        q.burn_above(sli, alert.long, budget, alert.factor),
        q.burn_above(sli, alert.short, budget, alert.factor),
    ]
    guard = options.min_failed_runs if alert.severity == "page" else 1
    if guard > 1:
        parts.append(f"on (journey) {q.bad_runs_at_least(sli, alert.long, guard)}")
    k = report.failing_locations
    if alert.severity == "page" and k > 1:
        burning = q.locations_burning_at_least(
            sli, alert.long, alert.short, budget, alert.factor, k
        )
        parts.append(f"on (journey) (\n{burning}\n)")
    return "\nand ".join(parts)


def _no_data_alert(subject: Subject, options: RulesOptions) -> dict[str, Any]:
    journey = subject.journey
    silence = max(options.no_data_intervals * journey.schedule.every, options.no_data_floor)
    severity = "page" if journey.criticality in ("high", "critical") else "ticket"
    labels = _alert_labels(journey, severity, None)
    return {
        "alert": NO_DATA,
        "expr": q.no_data(journey.journey, silence),
        "labels": labels,
        "annotations": no_data_annotations(subject, silence),
    }


def _agent_rules(pages: bool, options: RulesOptions) -> list[dict[str, Any]]:
    """Where each agent reports from, and one alert per agent lost: it pages when any
    journey's no-data alert would (those alerts are inhibited while it fires)."""
    return [
        {"record": q.AGENT_LOCATION, "expr": q.agent_location()},
        {
            "alert": AGENT_DOWN,
            "expr": q.agent_down(),
            "for": prom_duration(options.agent_down_for),
            "labels": {"severity": "page" if pages else "ticket"},
            "annotations": agent_down_annotations(),
        },
    ]


def _alert_labels(journey: Journey, severity: str, slo_kind: str | None) -> dict[str, str]:
    labels = {
        "severity": severity,
        "journey": journey.journey,
        "business_process": journey.business_process,
        "persona": str(journey.persona),
    }
    if slo_kind is not None:
        labels["slo"] = slo_kind
    return labels


def _header(rules: RuleSet) -> str:
    o = rules.options
    lines = [
        "# Generated by `journeyman rules` from the journey files: edit those, not this.",
        f"# Sparse-data arithmetic: runs counted from {o.locations} location(s); a page needs "
        f">= {o.min_failed_runs} bad run(s), burning from K of the N locations reporting "
        f"(K = min(K, N); K = slo.min_failing_locations, else {o.min_failing_locations}).",
    ]
    for report in rules.reports:
        lines.append(
            f"#   {report.journey} {report.slo} {report.objective}, "
            f"a run every {prom_duration(report.every)}, K={report.failing_locations}:"
        )
        lines += [f"#     {alert.explain()}" for alert in report.alerts]
    return "\n".join(lines) + "\n"


def _dumper() -> type[yaml.SafeDumper]:
    """A YAML dumper that writes multi-line PromQL as literal blocks."""

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # no &anchors: each rule reads on its own

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return Dumper
