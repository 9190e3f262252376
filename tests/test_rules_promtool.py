"""The generated rules under `promtool test rules`: pages, tickets and silence on cue.

Each test writes a promtool unit-test suite: input series as the agent exports them
(one run a minute per location, counters that have been running for a while), the
evaluation times at which an alert must or must not fire, and the exact labels and
business-language annotations expected. Debian's promtool 2.42 compares floats
exactly, so every expected figure is a ratio of whole run counts.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from binaries import required_binary

from agent.language.catalog import Catalog
from agent.language.model import Journey
from generators.rules import AGENT_DOWN, NO_DATA, RulesOptions, build, render

pytestmark = pytest.mark.promtool

PROCESS = "order-to-cash"
VOLUME, VALUE = 120, 40  # expected transactions/hour, EUR per transaction
START = 1000  # counters have been counting long before the test begins
Outcome = Callable[[str, int], str]  # (location, minute) -> ok | fail | slow


def _journey(
    availability: str = "99.5%", latency: dict[str, str] | None = None, k: int | None = None
) -> Journey:
    slo: dict[str, Any] = {"availability": availability, "window": "30d"}
    if latency:
        slo["latency"] = latency
    if k is not None:
        slo["min_failing_locations"] = k
    return Journey.model_validate(
        {
            "journey": "checkout",
            "title": "Checkout",
            "business_process": PROCESS,
            "owner": "web-team",
            "schedule": {"every": "60s", "timeout": "20s"},
            "slo": {**slo, "runbook_url": "https://runbooks.example/checkout"},
            "steps": [{"name": "home", "http": {"get": "http://127.0.0.1/"}}],
        }
    )


CATALOG = Catalog.model_validate(
    {
        "business_processes": [
            {
                "id": PROCESS,
                "name": "Order to cash",
                "volume": {"per_hour": VOLUME},
                "value_per_transaction": VALUE,
            }
        ]
    }
)


def _values(increments: Sequence[int], start: int = START) -> str:
    """promtool's expanding notation for a counter growing by ``increments`` a minute."""
    tokens, value, i = [str(start)], start, 0
    while i < len(increments):
        step, n = increments[i], 1
        while i + n < len(increments) and increments[i + n] == step:
            n += 1
        tokens.append(f"{value + step}+{step}x{n - 1}")
        value += step * n
        i += n
    return " ".join(tokens)


def _series(outcome: Outcome, locations: Sequence[str], minutes: int) -> list[dict[str, str]]:
    """What each location's agent exports for ``minutes`` minutes of one run a minute."""
    series = []
    for loc in locations:
        runs = [outcome(loc, m) for m in range(1, minutes + 1)]
        j = f'journey="checkout",business_process="{PROCESS}",persona="customer",location="{loc}"'
        counters = {
            f'journey_runs_total{{{j},outcome="success"}}': [int(r != "fail") for r in runs],
            f'journey_runs_total{{{j},outcome="failure"}}': [int(r == "fail") for r in runs],
            f"journey_slow_runs_total{{{j}}}": [int(r == "slow") for r in runs],
        }
        series += [{"series": name, "values": _values(inc)} for name, inc in counters.items()]
        series.append(
            {"series": f"journey_last_run_timestamp_seconds{{{j}}}", "values": f"0+60x{minutes}"}
        )
        p = f'business_process="{PROCESS}",location="{loc}"'
        series += [
            {
                "series": f"business_process_expected_transactions_per_hour{{{p}}}",
                "values": f"{VOLUME}+0x{minutes}",
            },
            {
                "series": f'business_process_value_per_transaction{{{p},currency="EUR"}}',
                "values": f"{VALUE}+0x{minutes}",
            },
        ]
    return series


def _labels(severity: str, slo: str | None = "availability", **extra: str) -> dict[str, str]:
    labels = {
        "severity": severity,
        "journey": "checkout",
        "business_process": PROCESS,
        "persona": "customer",
        **extra,
    }
    if slo:
        labels["slo"] = slo
    return labels


def _run_suite(
    tmp_path: Path,
    journey: Journey,
    series: list[dict[str, str]],
    checks: list[dict[str, Any]],
    options: RulesOptions | None = None,
) -> None:
    promtool = required_binary("promtool")
    rules = tmp_path / "rules.yml"
    rules.write_text(render(build([journey], CATALOG, options)))
    suite = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        # Prometheus runs groups side by side; here the business figures go first, so
        # the annotations quote this minute's figures rather than the last minute's.
        "group_eval_order": [
            "journeyman-business-processes",
            "journeyman-agents",
            "journeyman-journey-checkout",
        ],
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }
    path = tmp_path / "suite.yml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False, width=1 << 16))
    done = subprocess.run(
        [promtool, "test", "rules", path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _quiet(alertname: str, *minutes: int) -> list[dict[str, Any]]:
    return [{"eval_time": f"{m}m", "alertname": alertname, "exp_alerts": []} for m in minutes]


def _burn(minute: int, *alerts: dict[str, Any]) -> dict[str, Any]:
    """At ``minute``, exactly ``alerts`` of the availability burn-rate alert fire."""
    return {
        "eval_time": f"{minute}m",
        "alertname": "JourneyAvailabilityBudgetBurn",
        "exp_alerts": list(alerts),
    }


HEAD = "Checkout (customer, order-to-cash)"
LINKS = {"owner": "web-team", "runbook_url": "https://runbooks.example/checkout"}


def _availability_annotations(
    burn: str,
    failing: int,
    of: int,
    window: str,
    at_risk: str,
    value: str,
    severity: str,
    objective: str = "99.5%",
) -> dict[str, str]:
    budget = f"{objective} availability budget"
    return {
        "summary": f"{HEAD} is burning its {budget} {burn}x too fast ({severity})",
        "description": (
            f"{HEAD} has failed runs from {failing} of {of} location(s) in the last {window}; "
            f"its {budget} burns {burn}x too fast. About {at_risk} Order to "
            f"cash transactions/hour are at risk at this hour's normal volume (about {value} "
            "EUR/hour). Owner: web-team."
        ),
        **LINKS,
    }


DAY = 1440  # minutes of healthy history before trouble starts


def test_fast_burn_pages_within_the_expected_minutes(tmp_path: Path) -> None:
    """Two of three locations failing every run page after 7 minutes (13 of 180 runs in 1h)."""

    def outcome(loc: str, minute: int) -> str:
        return "fail" if minute > DAY and loc != "us" else "ok"

    series = _series(outcome, ["eu", "ap", "us"], DAY + 20)
    # 7 minutes in, the 1h window holds 180 runs, 14 failed: 7.8% = 15.6x the 0.5% budget,
    # so 14/180 of the expected 120 orders/hour (about 9) are at risk, 373 EUR/hour.
    fired = {
        "exp_labels": _labels("page"),
        "exp_annotations": _availability_annotations("15.6", 2, 3, "1h", "9", "373", "page"),
    }
    checks = [*_quiet("JourneyAvailabilityBudgetBurn", DAY, DAY + 6), _burn(DAY + 7, fired)]
    _run_suite(tmp_path, _journey(), series, checks, RulesOptions(locations=3))


def _one_location_fails(loc: str, minute: int) -> str:
    return "fail" if minute > DAY and loc == "eu" else "ok"


def test_one_location_failing_never_pages(tmp_path: Path) -> None:
    """One of three locations failing every run burns 14.4x over the whole fleet from 13
    minutes on, but K of N (K=2 by default) keeps it that location's problem: no page;
    a ticket once the slow windows (1d at 2.8x, 2h) see it, at 30 minutes."""
    series = _series(_one_location_fails, ["eu", "ap", "us"], DAY + 30)
    ticket = {
        "exp_labels": _labels("ticket"),
        "exp_annotations": _availability_annotations("1.4", 1, 3, "1d", "20", "800", "ticket"),
    }
    checks = [*_quiet("JourneyAvailabilityBudgetBurn", DAY + 13, DAY + 20), _burn(DAY + 30, ticket)]
    _run_suite(tmp_path, _journey(), series, checks, RulesOptions(locations=3))


def test_one_location_failing_pages_when_k_is_1(tmp_path: Path) -> None:
    """The same failures with slo.min_failing_locations 1 page at 13 minutes (13 of 180)."""
    fired = {
        "exp_labels": _labels("page"),
        "exp_annotations": _availability_annotations("14.4", 1, 3, "1h", "9", "347", "page"),
    }
    checks = [*_quiet("JourneyAvailabilityBudgetBurn", DAY + 12), _burn(DAY + 13, fired)]
    series = _series(_one_location_fails, ["eu", "ap", "us"], DAY + 13)
    _run_suite(tmp_path, _journey(k=1), series, checks, RulesOptions(locations=3))


def test_slow_burn_fires_only_the_ticket(tmp_path: Path) -> None:
    """One failed run in fifty (2%, 4x the budget) opens a ticket and never pages."""

    def outcome(loc: str, minute: int) -> str:
        return "fail" if minute % 50 == 0 else "ok"

    # At 1450m and 1500m the 1d window holds 1440 runs, 29 failed (4.0x); the last hour
    # 2 of 60 failed: 4 of the expected 120 orders/hour at risk, 160 EUR/hour.
    ticket = {
        "exp_labels": _labels("ticket"),
        "exp_annotations": _availability_annotations("4.0", 1, 1, "1d", "4", "160", "ticket"),
    }
    checks = [_burn(m, ticket) for m in (1450, 1500)]
    _run_suite(tmp_path, _journey(), _series(outcome, ["eu"], 1500), checks)


def test_error_ratio_just_under_the_budget_fires_nothing(tmp_path: Path) -> None:
    """One failed run in 250 (0.4% against a 0.5% budget) never alerts in a day and 6 hours."""

    def outcome(loc: str, minute: int) -> str:
        return "fail" if minute % 250 == 0 else "ok"

    minutes = DAY + 360  # the 3d window then holds all of it: still 0.4%
    worst = [m + d for m in range(250, minutes + 1, 250) for d in (0, 1, 5)]
    checks = [
        *_quiet("JourneyAvailabilityBudgetBurn", *worst),
        *_quiet("JourneyLatencyBudgetBurn", *worst[::6]),
    ]
    _run_suite(tmp_path, _journey(), _series(outcome, ["eu"], minutes), checks)


def test_latency_regression_fires_the_latency_slo(tmp_path: Path) -> None:
    """Every run slower than 3s pages on the latency SLO once 44 of 60 runs in 1h were slow."""

    def outcome(loc: str, minute: int) -> str:
        return "slow" if minute > DAY else "ok"

    journey = _journey(latency={"threshold": "3s", "objective": "95%"})
    budget = "latency budget (95% of successful runs within 3s)"
    fired = {
        "exp_labels": _labels("page", slo="latency"),
        "exp_annotations": {
            "summary": f"{HEAD} is burning its {budget} 14.7x too fast (page)",
            "description": (
                f"{HEAD} has slow runs from 1 of 1 location(s) in the last 1h; its {budget} "
                "burns 14.7x too fast. Owner: web-team."
            ),
            **LINKS,
        },
    }
    checks = [
        *_quiet("JourneyLatencyBudgetBurn", DAY + 43),
        {
            "eval_time": f"{DAY + 44}m",
            "alertname": "JourneyLatencyBudgetBurn",
            "exp_alerts": [fired],
        },
        *_quiet("JourneyAvailabilityBudgetBurn", DAY + 44, DAY + 60),
    ]
    _run_suite(tmp_path, journey, _series(outcome, ["eu"], DAY + 60), checks)


def _single_failure(loc: str, minute: int) -> str:
    return "fail" if minute == DAY + 1 else "ok"


def test_one_failed_run_in_five_does_not_page(tmp_path: Path) -> None:
    """At 99.9% one failed run is a 16.7x burn over 1h, but the default guard wants two."""
    quiet = _quiet("JourneyAvailabilityBudgetBurn", *range(DAY + 1, DAY + 6))
    series = _series(_single_failure, ["eu"], DAY + 5)
    _run_suite(tmp_path, _journey("99.9%"), series, quiet)


def test_without_the_guard_one_failed_run_pages(tmp_path: Path) -> None:
    """With --min-failed-runs 1 the same single failure pages: the arithmetic is real."""
    fired = {
        "exp_labels": _labels("page"),
        "exp_annotations": _availability_annotations(
            "16.7", 1, 1, "1h", "2", "80", "page", objective="99.9%"
        ),
    }
    checks = [_burn(DAY + 1, fired)]
    series = _series(_single_failure, ["eu"], DAY + 5)
    _run_suite(tmp_path, _journey("99.9%"), series, checks, RulesOptions(min_failed_runs=1))


def _no_data_annotations(where: str) -> dict[str, str]:
    return {
        "summary": f"{HEAD} has not run for 5m",
        "description": (
            f"No run of {HEAD} reported from {where} for more than 5m (at least 5 runs due, one "
            "every 1m): an agent is down, a shard is lost or a scheduler is stuck. Its SLO "
            "alerts cannot fire while it is silent. Owner: web-team."
        ),
        **LINKS,
    }


def test_a_location_that_stops_reporting_fires_no_data(tmp_path: Path) -> None:
    """A location whose last run was at 29m is reported silent at 35m; the others are not."""
    j = f'journey="checkout",business_process="{PROCESS}",persona="customer"'
    series = [
        {"series": f'journey_last_run_timestamp_seconds{{{j},location="eu"}}', "values": "0+60x29"},
        {"series": f'journey_last_run_timestamp_seconds{{{j},location="us"}}', "values": "0+60x60"},
    ]
    fired = {
        "exp_labels": _labels("ticket", slo=None, location="eu"),
        "exp_annotations": _no_data_annotations("location eu"),
    }
    checks = [
        *_quiet("JourneyNoData", 30, 34),
        {"eval_time": "35m", "alertname": "JourneyNoData", "exp_alerts": [fired]},
    ]
    _run_suite(tmp_path, _journey(), series, checks)


def test_a_journey_never_reported_fires_no_data(tmp_path: Path) -> None:
    """A journey no agent has ever reported is silent everywhere: no-data without a location."""
    series = [
        {"series": 'journey_last_run_timestamp_seconds{journey="other"}', "values": "0+60x10"}
    ]
    fired = {
        "exp_labels": _labels("ticket", slo=None),
        "exp_annotations": _no_data_annotations("any location"),
    }
    checks = [{"eval_time": "10m", "alertname": "JourneyNoData", "exp_alerts": [fired]}]
    _run_suite(tmp_path, _journey(), series, checks)


AGENT = {"job": "journeyman", "instance": "10.0.0.1:9464"}


def _agent_series(instance: str, location: str, up: str, alive: str) -> list[dict[str, str]]:
    """One agent's scrape target: ``up`` as Prometheus records it, and the series it
    exports (build info, journey info, last run: ``alive`` minutes of them, then stale)."""
    target = f'job="journeyman",instance="{instance}"'
    j = f'journey="checkout",business_process="{PROCESS}",persona="customer",location="{location}"'
    return [
        {"series": f"up{{{target}}}", "values": up},
        {
            "series": f'journeyman_build_info{{{target},version="1.0",python="3.11"}}',
            "values": f"1x{alive} stale",
        },
        {"series": f'journey_info{{{target},{j},owner="web-team"}}', "values": f"1x{alive} stale"},
        {
            "series": f"journey_last_run_timestamp_seconds{{{target},{j}}}",
            "values": f"0+60x{alive} stale",
        },
    ]


def test_a_lost_agent_is_one_alert_whose_labels_its_journeys_no_data_share(
    tmp_path: Path,
) -> None:
    """An agent down from 11m fires JourneymanAgentDown at 13m (for: 2m) naming job, instance
    and location; its journey's no-data (16m) carries the same three labels, which is what
    the Alertmanager inhibit rule matches. A down target that never was an agent, or a
    location whose journey moved to another shard, raises nothing."""
    series = [
        *_agent_series(AGENT["instance"], "eu", "1x10 0x10", "10"),
        *_agent_series("10.0.0.2:9464", "us", "1x20", "20"),
        # ap's shard 0 handed the journey to shard 1 at 10m (a reshard): not silent
        *_agent_series("10.0.0.3:9464", "ap", "1x20", "10"),
        *_agent_series("10.0.0.4:9464", "ap", "1x20", "20")[3:],
        {"series": 'up{job="node",instance="db:9100"}', "values": "0x20"},
    ]
    series[-2]["values"] = "_x10 600+60x10"
    description = (
        f"Prometheus cannot scrape the Journeyman agent {AGENT['instance']} (job journeyman) in "
        "location eu: the journeys it runs are not measured from there, and their no-data "
        "alerts are inhibited while this alert fires. Check the agent's process or pod, its "
        "logs and its /readyz."
    )
    down = {
        "exp_labels": {"severity": "ticket", "location": "eu", **AGENT},
        "exp_annotations": {
            "summary": f"Journeyman agent {AGENT['instance']} in location eu is down",
            "description": description,
        },
    }
    no_data = {
        "exp_labels": _labels("ticket", slo=None, location="eu", **AGENT),
        "exp_annotations": _no_data_annotations("location eu"),
    }
    checks = [
        *_quiet("JourneymanAgentDown", 10, 12),
        {"eval_time": "13m", "alertname": "JourneymanAgentDown", "exp_alerts": [down]},
        *_quiet("JourneyNoData", 15),
        {"eval_time": "16m", "alertname": "JourneyNoData", "exp_alerts": [no_data]},
        {"eval_time": "20m", "alertname": "JourneymanAgentDown", "exp_alerts": [down]},
    ]
    _run_suite(tmp_path, _journey(), series, checks)


def test_the_shipped_alertmanager_config_inhibits_with_the_generated_names() -> None:
    """deploy/alertmanager/alertmanager.yml passes `amtool check-config`, and its inhibit
    rule mutes the generator's no-data alert by the generator's agent-down alert on the
    labels both carry."""
    config = Path(__file__).parent.parent / "deploy" / "alertmanager" / "alertmanager.yml"
    done = subprocess.run(
        [required_binary("amtool"), "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rules = yaml.safe_load(config.read_text())["inhibit_rules"]
    assert {
        "source_matchers": [f'alertname="{AGENT_DOWN}"'],
        "target_matchers": [f'alertname="{NO_DATA}"'],
        "equal": ["job", "instance", "location"],
    } in rules
