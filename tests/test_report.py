"""`journeyman report`: figures checked against a history of known runs."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import pytest

from agent.cli import main
from agent.language.catalog import Catalog
from agent.language.model import Journey
from agent.run.results import FailureReason, Outcome, RunResult
from exporters.history import History
from exporters.report import read_report
from exporters.report_render import render_html, render_text

S = 1_799_020_800.0  # 2027-01-04 00:00 UTC, 01:00 in Berlin
WEEK = 7 * 86400.0
U = S + WEEK
PROFILE = [30.0] * 24
PROFILE[0], PROFILE[1] = 60.0, 120.0  # orders per hour at 00:00 and 01:00, Berlin time

CATALOG = Catalog.model_validate(
    {
        "timezone": "Europe/Berlin",
        "business_processes": [
            {
                "id": "order-to-cash",
                "name": "Order to cash",
                "owner": "web-team",
                "volume": {"per_hour": PROFILE},
                "value_per_transaction": 10,
                "currency": "EUR",
            },
            {"id": "inventory-sync", "name": "Inventory <sync>", "volume": {"per_hour": 60}},
        ],
    }
)
STEPS = [{"name": "pay", "http": {"get": "https://shop.test/pay"}}]
CHECKOUT = Journey.model_validate(
    {
        "journey": "checkout",
        "title": "Customer buys a teapot",
        "business_process": "order-to-cash",
        "schedule": {"every": "10m"},
        "slo": {"availability": "99%", "latency": {"threshold": "2s", "objective": "90%"}},
        "steps": STEPS,
    }
)
BROWSER = Journey.model_validate(
    {"journey": "browser", "business_process": "order-to-cash", "schedule": {"every": "20m"},
     "steps": STEPS}
)  # fmt: skip
INVENTORY = Journey.model_validate(
    {"journey": "inventory", "business_process": "inventory-sync", "schedule": {"every": "1h"},
     "slo": {"availability": "99.5%"}, "steps": STEPS}
)  # fmt: skip


def _run(journey: Journey, at: float, outcome: Outcome, duration: float = 0.5) -> RunResult:
    failed = outcome is Outcome.FAILURE
    return RunResult(
        journey=journey.journey,
        business_process=journey.business_process,
        persona="customer",
        run_id=f"{journey.journey}-{at:.0f}-{outcome.value}",
        trace_id="0" * 32,
        started_at=at,
        duration=duration,
        outcome=outcome,
        attempts=1,
        reason=FailureReason.ASSERTION if failed else None,
        failed_step="pay" if failed else None,
        message="expected 'Thank you', got <b>Order pending</b>" if failed else "",
    )


def known_runs() -> list[RunResult]:
    """A week: checkout every 10 min (failing at runs 147-152 and the last two; every
    100th run slow), browser every 20 min (always passing), inventory hourly (one failure
    at 10:00 UTC on the first day), an aborted and a not-started run that count for nothing.
    """
    runs = []
    for i in range(1008):
        failed = 147 <= i <= 152 or i >= 1006
        slow = i % 100 == 0
        outcome = Outcome.FAILURE if failed else Outcome.SUCCESS
        runs.append(_run(CHECKOUT, S + i * 600, outcome, 3.0 if slow else 0.5))
    runs += [_run(BROWSER, S + k * 1200, Outcome.SUCCESS, 1.0) for k in range(504)]
    runs += [
        _run(INVENTORY, S + h * 3600, Outcome.FAILURE if h == 10 else Outcome.SUCCESS, 0.1)
        for h in range(168)
    ]
    runs.append(_run(CHECKOUT, S + 88500, Outcome.ABORTED))
    runs.append(_run(CHECKOUT, S + 5000, Outcome.NOT_STARTED))
    runs.append(_run(CHECKOUT, S - 600, Outcome.FAILURE))  # before the period
    return runs


async def _history(folder: Path, runs: list[RunResult]) -> None:
    history = History(folder, location="eu-west-1", clock=lambda: U)
    await history.start()
    history.set_inventory([CHECKOUT, BROWSER, INVENTORY], CATALOG)
    for result in runs:
        history.export(result)
    await history.close()


@pytest.fixture
async def data_dir(tmp_path: Path) -> Path:
    await _history(tmp_path, known_runs())
    return tmp_path


async def test_the_figures_of_a_known_week(data_dir: Path) -> None:
    """Availability, latency, budgets, incidents and what they cost, by hand:

    checkout: 1,000 of 1,008 runs passed (99.21%); 8/1008 over a 1% budget for 7 of 28
    days used 19.84% of the budget; 11 of 1,000 successes slower than 2 s (98.9% within,
    2.75% of the latency budget). Incident 1: 01:30-02:30 Berlin, 6 of the 9 process runs
    failed (browser ran 3 times) over 60 + 15 expected orders: 50 orders, 500 EUR.
    Incident 2, ongoing: 00:40-01:00, 2 of 3 runs over 20 orders: 13.33 orders, 133.33
    EUR. inventory: 1 of 168 failed (99.40%, missing 99.5%, 29.76% of the budget), one
    incident of an hour at 60 per hour: 60 transactions, no value."""
    report = read_report(data_dir, S, U)
    inventory, orders = report.processes  # with incidents first, then least available
    assert (report.location, report.timezone) == ("eu-west-1", "Europe/Berlin")
    assert report.history_from == S - 600

    checkout, browser = sorted(orders.journeys, key=lambda j: j.journey != "checkout")
    assert (checkout.successes, checkout.failures, checkout.slow) == (1000, 8, 11)
    assert checkout.availability == 1000 / 1008
    assert checkout.within_threshold == 989 / 1000
    assert (checkout.p50, checkout.p95) == (0.5, 0.5)
    assert (browser.successes, browser.failures, browser.slo) == (504, 0, None)
    assert (orders.successes, orders.finished) == (1504, 1512)

    first, ongoing = orders.incidents
    assert (first.start, first.end, first.runs, first.failures) == (S + 88200, S + 91800, 9, 6)
    assert first.failed_steps == (("checkout", "pay", FailureReason.ASSERTION),)
    assert first.transactions == pytest.approx(50.0)
    assert first.value == pytest.approx(500.0)
    assert (ongoing.start, ongoing.end, ongoing.runs, ongoing.failures) == (U - 1200, None, 3, 2)
    assert ongoing.transactions == pytest.approx(40 / 3)
    assert ongoing.value == pytest.approx(400 / 3)
    assert orders.transactions == pytest.approx(190 / 3)
    assert orders.value == pytest.approx(1900 / 3)

    (incident,) = inventory.incidents
    assert (incident.start, incident.end, incident.runs, incident.failures) == (
        S + 36000, S + 39600, 1, 1
    )  # fmt: skip
    assert incident.transactions == pytest.approx(60.0)
    assert incident.value is None
    assert inventory.journeys[0].availability == 167 / 168

    text = render_text(report)
    for line in (
        "Journeyman report: 2027-01-04 01:00 CET to 2027-01-11 01:00 CET (7 days), "
        "location eu-west-1",
        "Order to cash [order-to-cash], owner web-team",
        "  Availability 99.47% (1,504 of 1,512 runs succeeded); 2 incidents",
        "  Affected: about 63.3 transactions (633.33 EUR)",
        "  checkout (Customer buys a teapot): 1,008 runs, 8 failed; p50 500 ms, p95 500 ms",
        "    availability 99.21% against 99.00% (met); 19.8% of the 28-day error budget used",
        "    within 2.00 s: 98.90% against 90.00% (met); 2.8% of the 28-day latency budget used",
        "    2027-01-05 01:30 CET to 2027-01-05 02:30 CET (1 h): 6 of 9 runs failed; "
        "affected about 50.0 transactions (500.00 EUR)",
        "      checkout failed at 'pay' (assertion): expected 'Thank you', got <b>Order "
        "pending</b>",
        "    2027-01-11 00:40 CET on, still failing at the end (20 min so far): 2 of 3 runs "
        "failed; affected about 13.3 transactions (133.33 EUR)",
        "Inventory <sync> [inventory-sync]",
        "    availability 99.40% against 99.50% (MISSED); 29.8% of the 28-day error budget used",
        "  Affected: about 60.0 transactions",
    ):
        assert line in text.splitlines(), line
    assert text.index("Inventory <sync>") < text.index("Order to cash")


async def test_the_html_report_escapes_and_says_the_same(data_dir: Path) -> None:
    """The HTML file has the same figures, with names and messages escaped."""
    html = render_html(read_report(data_dir, S, U))
    assert "Inventory &lt;sync&gt;" in html
    assert "<sync>" not in html
    assert "&lt;b&gt;Order pending&lt;/b&gt;" in html
    assert "about 63.3 transactions (633.33 EUR)" in html
    assert '<span class="miss">missed: </span>99.40% (99.50%)' in html
    assert "<script" not in html


async def test_the_command_writes_text_and_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`journeyman report --data-dir D --since 7d` prints the report; `--format html -o F`
    writes it; a folder without a history is exit 2 with one line."""
    now = time.time()
    shift = now - U + 60  # the known week, ending a minute ago
    runs = [replace(r, started_at=r.started_at + shift) for r in known_runs()]
    await _history(tmp_path / "data", [r for r in runs if r.started_at < now - 3600])
    assert main(["report", "--data-dir", str(tmp_path / "data"), "--since", "7d"]) == 0
    out = capsys.readouterr().out
    assert "Order to cash [order-to-cash], owner web-team" in out
    assert "1 incident" in out  # the last hour's failures were left out
    html = tmp_path / "report.html"
    args = ["report", "--data-dir", str(tmp_path / "data"), "--format", "html", "-o", str(html)]
    assert main(args) == 0
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", "--data-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"journeyman report: no history at {tmp_path / 'none' / 'history.sqlite3'}"
        f" (start the agent with --data-dir {tmp_path / 'none'})\n"
    )
    assert main(["report", "--data-dir", str(tmp_path), "--since", "soon"]) == 2


def test_budget_used_is_the_share_of_the_window_budget() -> None:
    """8 bad runs of 1,008 over 7 days at 99% for 28 days: 19.84% of the budget."""
    from exporters.report import budget_used

    assert budget_used(8, 1008, 0.99, WEEK, 4 * WEEK) == pytest.approx(8 / 1008 / 0.01 / 4)
    assert budget_used(0, 0, 0.99, WEEK, 4 * WEEK) == 0.0
    assert math.isclose(budget_used(1, 168, 0.995, WEEK, 4 * WEEK), 0.2976190476190476)
