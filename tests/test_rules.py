"""The rules generator: burn-rate arithmetic, stable and deterministic output, the CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from binaries import required_binary

from agent.cli import main
from agent.language.catalog import Catalog
from agent.language.model import Journey
from generators.rules import RulesOptions, build, render
from generators.rules_burn import BURN_ALERTS, arithmetic, effective_window

DAY = 86400.0
CATALOG = Catalog.model_validate(
    {
        "business_processes": [
            {"id": "order-to-cash", "name": "Order to cash", "volume": {"per_hour": 100}},
            {"id": "partner-fulfilment", "name": "Partner fulfilment", "owner": "b2b-team"},
        ]
    }
)


def _journey(journey_id: str, **fields: Any) -> Journey:
    data: dict[str, Any] = {
        "journey": journey_id,
        "business_process": "order-to-cash",
        "schedule": {"every": "60s", "timeout": "20s"},
        "slo": {"availability": "99.5%"},
        "steps": [{"name": "home", "http": {"get": "http://127.0.0.1/"}}],
    }
    return Journey.model_validate(data | fields)


JOURNEYS = [
    _journey(
        "checkout",
        title="Customer buys a {{ product }}",
        owner="web-team",
        criticality="critical",
        slo={"availability": "99.5%", "latency": {"threshold": "3s", "objective": "95%"}},
    ),
    _journey(
        "partner-order",
        persona="partner",
        business_process="partner-fulfilment",
        schedule={"every": "10m", "timeout": "20s"},
        slo={"availability": "99.9%", "window": "7d", "dashboard_url": "https://grafana/d/x"},
    ),
    _journey("browse", slo=None),
]


def test_factors_follow_the_workbook_at_30d_and_scale_with_the_window() -> None:
    """At 30d the factors are 14.4, 6, 3 and 1; at 28d each burns the same budget share."""
    assert [a.factor(30 * DAY) for a in BURN_ALERTS] == [14.4, 6, 3, 1]
    assert [a.factor(28 * DAY) for a in BURN_ALERTS] == [13.44, 5.6, 2.8, 0.933333]


@pytest.mark.parametrize(
    ("objective", "min_bad_runs", "fewest"),
    [(0.999, 1, 1), (0.999, 2, 2), (0.995, 1, 5), (0.995, 2, 5)],
)
def test_fewest_failed_runs_to_page(objective: float, min_bad_runs: int, fewest: int) -> None:
    """A run a minute: at 99.9% one failure in 60 pages (16.7x) unless guarded; 99.5% needs 5."""
    fast = arithmetic(
        BURN_ALERTS[0],
        budget=1 - objective,
        slo_window=30 * DAY,
        every=60,
        locations=1,
        min_bad_runs=min_bad_runs,
    )
    assert (fast.runs_long, fast.runs_short, fast.fewest_bad_runs) == (60, 5, fewest)


def test_sparse_journeys_widen_short_windows() -> None:
    """A journey run every 10m cannot fill 5m: its short window widens to 30m, 1h stays 1h."""
    assert effective_window(300, 600) == 1800
    assert effective_window(3600, 600) == 3600
    assert effective_window(300, 60) == 300


def test_a_low_objective_never_pages_and_says_so() -> None:
    """At 80% (28d) a 5.6x burn means over 100% of runs failing: no page, and a warning."""
    rules = build([_journey("weak", slo={"availability": "80%"})], None)
    assert any("no page can ever fire" in w for w in rules.warnings)
    alerts = [r for g in rules.groups for r in g["rules"] if r.get("alert")]
    severities = {r["labels"]["severity"] for r in alerts if r["alert"] != "JourneyNoData"}
    assert severities == {"ticket"}


def test_one_or_two_failures_that_page_are_warned_about() -> None:
    """partner-order (99.9%, 60 runs in 10h) pages on 2 failures: the generator warns."""
    warnings = build(JOURNEYS, CATALOG).warnings
    assert len(warnings) == 1
    assert warnings[0].startswith("partner-order: availability 99.9%, a run every 10m: 2 bad")


def test_output_is_byte_identical_whatever_the_input_order() -> None:
    """Same journeys, any order, twice: the same bytes."""
    first = render(build(JOURNEYS, CATALOG))
    again = render(build(list(reversed(JOURNEYS)), CATALOG))
    assert first == again


WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "7d"]


def test_rule_names_are_stable() -> None:
    """Each journey's group holds the same record and alert names in the same order."""
    groups = build(JOURNEYS, CATALOG).groups
    assert [g["name"] for g in groups] == [
        "journeyman-journey-browse",
        "journeyman-journey-checkout",
        "journeyman-journey-partner-order",
        "journeyman-agents",
        "journeyman-business-processes",
    ]
    names = [r.get("record") or r["alert"] for r in groups[2]["rules"]]
    assert names == [
        *(f"journey:slo_errors:ratio_rate{w}" for w in WINDOWS),
        # by location, over the pages' windows (a run every 10m: 1h&30m, 6h&30m)
        *(f"journey_location:slo_errors:ratio_rate{w}" for w in ("30m", "1h", "6h")),
        "journey:slo_error_budget:remaining",
        "journey:slo_burn_rate:rate1h",
        "JourneyAvailabilityBudgetBurn",
        "JourneyAvailabilityBudgetBurn",
        "JourneyNoData",
    ]
    assert [r.get("record") or r["alert"] for r in groups[3]["rules"]] == [
        "journeyman_agent:location:last_seen_timestamp",
        "JourneymanAgentDown",
    ]
    assert [r["record"] for r in groups[4]["rules"]] == [
        "business_process:journey_errors:ratio_rate1h",
        "business_process:transactions_at_risk:rate1h",
        "business_process:value_at_risk:rate1h",
    ]


def test_alerts_carry_routing_labels_and_links() -> None:
    """Labels say severity, journey, process, persona and SLO; annotations owner and links."""
    groups = build(JOURNEYS, CATALOG).groups
    page = next(r for r in groups[2]["rules"] if r.get("alert"))
    assert page["labels"] == {
        "severity": "page",
        "journey": "partner-order",
        "business_process": "partner-fulfilment",
        "persona": "partner",
        "slo": "availability",
    }
    assert page["annotations"]["owner"] == "b2b-team"  # from the catalog
    assert page["annotations"]["dashboard_url"] == "https://grafana/d/x"
    assert "99.9% availability budget" in page["annotations"]["summary"]
    no_data = [r for r in groups[1]["rules"] if r.get("alert") == "JourneyNoData"]
    assert no_data[0]["labels"]["severity"] == "page"  # a critical journey


def test_the_guards_join_the_page_condition() -> None:
    """The bad-run guard and K of N join each page pair, not the tickets."""
    options = RulesOptions(min_failed_runs=3, min_failing_locations=2)
    rules = build(JOURNEYS[:1], CATALOG, options).groups[0]["rules"]
    page, ticket = [r["expr"] for r in rules if r.get("alert") == "JourneyAvailabilityBudgetBurn"]
    assert page.count(") >= 3") == 2
    last_run = 'journey_last_run_timestamp_seconds{journey="checkout"}'
    reporting = f"count by (journey) (group by (journey, location) ({last_run}))"
    assert page.count(f">= on (journey) clamp_max({reporting}, 2)") == 2
    # each location on its own, over both windows of the pair
    for w in ("1h", "5m", "6h", "30m"):
        own = f'journey_location:slo_errors:ratio_rate{w}{{journey="checkout",slo="availability"}}'
        assert f"{own} / 0.005 >" in page
    assert ">=" not in ticket


def _page(journey: Journey, options: RulesOptions | None = None) -> str:
    rules = build([journey], None, options).groups[0]["rules"]
    return str(
        next(r["expr"] for r in rules if r.get("alert") and r["labels"]["severity"] == "page")
    )


def test_k_is_the_journeys_else_the_flags() -> None:
    """slo.min_failing_locations sets K for its journey; others take the option (default 2);
    K = 1 adds no location clause."""
    own = _journey("own", slo={"availability": "99.5%", "min_failing_locations": 3})
    assert _page(own, RulesOptions(min_failing_locations=4)).count(", 3)\n)") == 2
    assert _page(_journey("default")).count(", 2)\n)") == 2
    assert _page(_journey("flag"), RulesOptions(min_failing_locations=4)).count(", 4)\n)") == 2
    one = _journey("one", slo={"availability": "99.5%", "min_failing_locations": 1})
    assert "journey_location:" not in _page(one)


def test_k_of_n_arithmetic_counts_each_location_s_own_runs() -> None:
    """3 locations, a run a minute, 99.5% (28d): the 1h&5m page needs 13 bad runs in all;
    K=3 needs 5 from each location (15); one location caps K at 1."""

    def fewest(k: int, locations: int) -> str:
        slo = {"availability": "99.5%", "min_failing_locations": k}
        rules = build([_journey("j", slo=slo)], None, RulesOptions(locations=locations))
        page = render(rules).splitlines()[3]
        assert page.startswith("#     page 1h&5m"), page
        return page.rsplit(": ", 1)[1]

    assert fewest(2, 3) == "fires from 13 bad run(s)"
    assert fewest(3, 3) == "fires from 15 bad run(s)"
    assert fewest(3, 1) == "fires from 5 bad run(s)"


def test_a_lost_agent_is_one_alert_as_severe_as_its_journeys_no_data() -> None:
    """JourneymanAgentDown pages when a journey's no-data would, waits `for:` the option,
    and names the agent (job, instance) and its location, as the no-data alerts do."""
    agents = build(JOURNEYS, CATALOG).groups[3]["rules"]
    down = agents[1]
    assert (down["alert"], down["for"], down["labels"]) == (
        "JourneymanAgentDown",
        "2m",
        {"severity": "page"},
    )
    quiet = build(JOURNEYS[1:], CATALOG, RulesOptions(agent_down_for=5)).groups[-2]["rules"][1]
    assert (quiet["for"], quiet["labels"]) == ("5s", {"severity": "ticket"})
    assert "group_left (location)" in down["expr"]
    no_data = build(JOURNEYS[1:2], None).groups[0]["rules"][-1]
    assert "max by (journey, business_process, persona, location, job, instance)" in no_data["expr"]


@pytest.mark.promtool
def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    """`promtool check rules` passes, template escaping of journey titles included."""
    path = tmp_path / "rules.yml"
    path.write_text(render(build(JOURNEYS, CATALOG)))
    done = subprocess.run(
        [required_binary("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert '{{ "{{" }} product }}' in path.read_text()


def test_operator_format_wraps_the_same_groups() -> None:
    """--format prometheus-operator gives a PrometheusRule whose spec holds the same groups."""
    rules = build(JOURNEYS, CATALOG)
    plain = yaml.safe_load(render(rules))
    operator = yaml.safe_load(render(rules, "prometheus-operator", name="shop-slos"))
    assert operator["kind"] == "PrometheusRule"
    assert operator["metadata"]["name"] == "shop-slos"
    assert operator["spec"] == plain


def test_cli_writes_the_rules_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`journeyman rules DIR -o FILE` writes what the generator renders, warnings on stderr."""
    (tmp_path / "order.yaml").write_text(yaml.safe_dump(JOURNEYS[1].model_dump(mode="json")))
    out = tmp_path / "rules.yml"
    assert main(["rules", str(tmp_path / "order.yaml"), "-o", str(out)]) == 0
    assert out.read_text() == render(build([JOURNEYS[1]], None))
    assert "partner-order: availability 99.9%" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "must be at least 1, got 0"),
        ("true", "must be a whole number, got true"),
        ("1.5", "must be a whole number, got 1.5"),
    ],
)
def test_k_must_be_a_whole_number_of_locations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    """slo.min_failing_locations is strict: 0, true or 1.5 are errors at their line."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "journey: x\nbusiness_process: p\nslo:\n  availability: 99%\n"
        f"  min_failing_locations: {value}\nsteps: [{{name: a, http: {{get: http://h/}}}}]\n"
    )
    assert main(["rules", str(bad), "-o", str(tmp_path / "rules.yml")]) == 2
    assert f"{bad}:5:3: slo.min_failing_locations: {message}" in capsys.readouterr().err


def test_cli_refuses_broken_journeys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A journey file with an error writes no rules, exits 2 and names file, line and field."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("journey: x\nbusiness_process: p\nslo: {availability: 120%}\nsteps: []\n")
    out = tmp_path / "rules.yml"
    assert main(["rules", str(bad), "-o", str(out)]) == 2
    assert not out.exists()
    assert f"{bad}:3:" in capsys.readouterr().err
