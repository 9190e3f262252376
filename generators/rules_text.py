"""Alert annotations in the business's language.

Summaries name the journey, its persona and business process and the objective;
descriptions quote, at the moment the alert fires, how many locations see bad runs
and how many of the process's transactions (and how much money) are at risk at this
hour's normal volume. Live figures are Prometheus template queries on the recorded
series, so Alertmanager shows them as they were when the alert fired.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.language.catalog import BusinessProcess
from agent.language.model import Journey
from generators.rules_burn import prom_duration
from generators.rules_promql import SLI, failing_locations, locations

__all__ = [
    "Subject",
    "agent_down_annotations",
    "burn_annotations",
    "no_data_annotations",
    "percent",
]


@dataclass(frozen=True, slots=True)
class Subject:
    """A journey with what the catalog says about its business process."""

    journey: Journey
    process: BusinessProcess | None

    @property
    def headline(self) -> str:
        j = self.journey
        return _literal(f"{j.title or j.journey} ({j.persona}, {j.business_process})")

    @property
    def owner(self) -> str:
        return self.journey.owner or (self.process.owner if self.process else "")

    @property
    def runbook_url(self) -> str | None:
        slo = self.journey.slo
        if slo is not None and slo.runbook_url:
            return slo.runbook_url
        return self.process.runbook_url if self.process else None


def percent(share: float) -> str:
    """0.995 -> 99.5%."""
    return f"{round(share * 100, 6):g}%"


def burn_annotations(
    subject: Subject, sli: SLI, objective: str, window: float, severity: str
) -> dict[str, str]:
    """Annotations of a burn-rate alert; ``$value`` is the burn rate of its long window."""
    latency = subject.journey.slo.latency if subject.journey.slo else None
    if sli.slo == "latency" and latency is not None:
        budget = f"latency budget ({objective} of successful runs within {latency.threshold:g}s)"
        bad = "slow runs"
    else:
        budget = f"{objective} availability budget"
        bad = "failed runs"
    span = prom_duration(window)
    failing = _query(failing_locations(sli, window), "0")
    reporting = _query(locations(sli.journey), "0")
    lines = [
        f"{subject.headline} has {bad} from {failing} of {reporting} location(s) in the "
        f'last {span}; its {budget} burns {{{{ printf "%.1f" $value }}}}x too fast.'
    ]
    if sli.slo == "availability":
        lines.append(_at_risk(subject))
    if subject.owner:
        lines.append(f"Owner: {_literal(subject.owner)}.")
    summary = (
        f"{subject.headline} is burning its {budget} "
        f'{{{{ printf "%.1f" $value }}}}x too fast ({severity})'
    )
    return _with_links(subject, {"summary": summary, "description": " ".join(filter(None, lines))})


def no_data_annotations(subject: Subject, silence: float) -> dict[str, str]:
    every = subject.journey.schedule.every
    due = f"at least {int(silence // every)} runs due, one every {prom_duration(every)}"
    where = "{{ with $labels.location }}location {{ . }}{{ else }}any location{{ end }}"
    description = (
        f"No run of {subject.headline} reported from {where} for more than "
        f"{prom_duration(silence)} ({due}): an agent is down, a shard is lost or a "
        "scheduler is stuck. Its SLO alerts cannot fire while it is silent."
    )
    if subject.owner:
        description += f" Owner: {_literal(subject.owner)}."
    summary = f"{subject.headline} has not run for {prom_duration(silence)}"
    return _with_links(subject, {"summary": summary, "description": description})


def agent_down_annotations() -> dict[str, str]:
    """Annotations of the one alert a lost agent raises (its labels say which agent)."""
    where = "{{ with $labels.location }} in location {{ . }}{{ end }}"
    return {
        "summary": f"Journeyman agent {{{{ $labels.instance }}}}{where} is down",
        "description": (
            "Prometheus cannot scrape the Journeyman agent {{ $labels.instance }} (job "
            f"{{{{ $labels.job }}}}){where}: the journeys it runs are not measured from "
            "there, and their no-data alerts are inhibited while this alert fires. Check the "
            "agent's process or pod, its logs and its /readyz."
        ),
    }


def _at_risk(subject: Subject) -> str:
    process = subject.process
    if process is None or process.volume is None:
        return ""
    series = f'business_process:transactions_at_risk:rate1h{{business_process="{process.id}"}}'
    text = (
        f"About {_query(series, 'an unknown number of', rounded=True)} "
        f"{_literal(process.name)} transactions/hour are at risk at this hour's normal volume"
    )
    if process.value_per_transaction is not None:
        value = f'business_process:value_at_risk:rate1h{{business_process="{process.id}"}}'
        text += f" (about {_query(value, 'an unknown', rounded=True)} {process.currency}/hour)"
    return text + "."


def _with_links(subject: Subject, annotations: dict[str, str]) -> dict[str, str]:
    if subject.owner:
        annotations["owner"] = subject.owner
    if subject.runbook_url:
        annotations["runbook_url"] = subject.runbook_url
    slo = subject.journey.slo
    if slo is not None and slo.dashboard_url:
        annotations["dashboard_url"] = slo.dashboard_url
    return annotations


def _query(promql: str, otherwise: str, *, rounded: bool = False) -> str:
    """A template that prints the first value of ``promql`` (``otherwise`` if none)."""
    shown = '. | first | value | printf "%.0f"' if rounded else ". | first | value"
    return f"{{{{ with query `{promql}` }}}}{{{{ {shown} }}}}{{{{ else }}}}{otherwise}{{{{ end }}}}"


def _literal(text: str) -> str:
    """Text from journey files, safe inside a Go template (no actions start in it)."""
    return text.replace("{{", '{{ "{{" }}')
