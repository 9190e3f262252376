"""End to end: a real Prometheus with the generated rules scrapes a real agent that
monitors the demo shop; the chaos switch breaks the shop, and the recording rules, the
transactions at risk and the page follow, read back through Prometheus's HTTP API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from agent_process import running_agent
from prometheus_server import prometheus

from agent.cli import main
from agent.demo.server import RunningShop, start_shop

pytestmark = pytest.mark.promtool

VOLUME, VALUE, BUDGET = 120, 10, 0.01  # orders/hour, EUR per order, 1 - 99%
JOURNEY = """\
journey: home
title: Shopper opens the shop
business_process: order-to-cash
owner: web-team
schedule: {every: 0.5s, timeout: 0.24s, retries: 1}  # a slow attempt under load is retried
slo: {availability: 99%}
variables: {base: "${env.JOURNEY_SHOP_URL}"}
steps:
  - name: home page
    http: {get: "${base}/"}
    expect: {status: 200}
"""
CATALOG = f"""\
business_processes:
  - id: order-to-cash
    name: Order to cash
    volume: {{per_hour: {VOLUME}}}
    value_per_transaction: {VALUE}
"""
RATIO_1H = 'journey:slo_errors:ratio_rate1h{journey="home",slo="availability"}'
RATIO_5M = 'journey:slo_errors:ratio_rate5m{journey="home",slo="availability"}'
PROCESS = '{business_process="order-to-cash"}'


@pytest.fixture
async def shop() -> AsyncIterator[RunningShop]:
    async with await start_shop() as running:
        yield running


async def test_chaos_moves_the_recorded_slo_and_orders_at_risk(
    shop: RunningShop, tmp_path: Path
) -> None:
    """Healthy: ratio 0, nothing at risk; broken: ratio x 120 orders/h x 10 EUR at risk, a page."""
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "home.yaml").write_text(JOURNEY)
    (journeys / "catalog.yaml").write_text(CATALOG)
    rules = tmp_path / "rules.yml"
    assert main(["rules", str(journeys), "-o", str(rules)]) == 0

    async with (
        asyncio.timeout(100),
        running_agent(
            [journeys], "--location", "lab-1", environ={"JOURNEY_SHOP_URL": shop.url}
        ) as agent,
        prometheus(tmp_path, rules, agent.url.removeprefix("http://")) as prom,
    ):
        await prom.until(RATIO_5M, lambda v: v == [0.0])
        await prom.until(f"business_process:transactions_at_risk:rate1h{PROCESS}", bool)
        assert await prom.query(f"business_process:transactions_at_risk:rate1h{PROCESS}") == [0]
        assert await prom.query('journey:slo_error_budget:remaining{journey="home"}') == [1]

        async with httpx.AsyncClient() as client:
            flip = {"target": "home", "mode": "error"}
            (await client.post(f"{shop.url}/chaos", json=flip)).raise_for_status()

        page = (
            'ALERTS{alertname="JourneyAvailabilityBudgetBurn",severity="page",alertstate="firing"}'
        )
        await prom.until(page, bool)
        await prom.until(RATIO_5M, lambda v: bool(v) and v[0] > 0.5)

        # One instant, so each group's recorded values come from a single evaluation.
        at = (await prom.query("vector(time())"))[0]
        [ratio] = await prom.query(f"business_process:journey_errors:ratio_rate1h{PROCESS}", at)
        [at_risk] = await prom.query(f"business_process:transactions_at_risk:rate1h{PROCESS}", at)
        [value] = await prom.query(f"business_process:value_at_risk:rate1h{PROCESS}", at)
        assert 0 < ratio < 1
        assert at_risk == pytest.approx(ratio * VOLUME, rel=1e-9)
        assert value == pytest.approx(at_risk * VALUE, rel=1e-9)

        [ratio_1h] = await prom.query(RATIO_1H, at)
        [burn] = await prom.query('journey:slo_burn_rate:rate1h{journey="home"}', at)
        [left] = await prom.query('journey:slo_error_budget:remaining{journey="home"}', at)
        [ratio_28d] = await prom.query(
            'journey:slo_errors:ratio_rate28d{journey="home",slo="availability"}', at
        )
        assert burn == pytest.approx(ratio_1h / BUDGET, rel=1e-9)
        assert left == pytest.approx(1 - ratio_28d / BUDGET, rel=1e-9)
        assert left < 0  # minutes of total failure at 99% overspend the whole budget

        # Against the raw samples scraped from the agent, as the rule saw them when it was
        # evaluated: the failed share of the runs in the window (rate() extrapolates a
        # little at the window's edges, hence the margin).
        [evaluated] = await prom.query(f"timestamp({RATIO_1H})", at)
        response = await prom.client.get(
            f"{prom.url}/api/v1/query",
            params={"query": 'journey_runs_total{journey="home"}[1h]', "time": evaluated},
        )
        grew = {
            series["metric"]["outcome"]: float(series["values"][-1][1])
            - float(series["values"][0][1])
            for series in response.json()["data"]["result"]
        }
        truth = grew["failure"] / (grew["failure"] + grew["success"])
        assert ratio_1h == pytest.approx(truth, abs=0.03)
