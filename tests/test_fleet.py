"""A fleet on loopback: three locations (ap runs two shards), four real agent processes,
one real Prometheus with the generated rules, one real Alertmanager with the shipped
inhibit rules. Each location has its own target with a fault switch.

One location broken: its own series move, the fleet's burn rate is past the page's
threshold, and still no page (K of N, K=2). A second location broken: the page fires.
One agent stopped: exactly one JourneymanAgentDown, and the no-data alert of the journey
it ran is muted in Alertmanager by that alert, label for label.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_process import AgentProcess, running_agent
from aiohttp import web
from http_servers import serve_app
from prometheus_server import Prometheus, alertmanager, prometheus

from agent.language.loader import load
from agent.schedule.sharding import Shard
from generators.rules import RulesOptions, build, render

pytestmark = pytest.mark.promtool

ROOT = Path(__file__).resolve().parent.parent
BUDGET, FACTOR = 0.01, 13.44  # 99% over 28d; the 1h&5m page's burn factor
JOURNEY = """\
journey: {id}
business_process: order-to-cash
schedule: {{every: 1s, timeout: 0.45s, retries: 1}}  # a cold first attempt is retried
slo: {{availability: 99%{k}}}
steps:
  - name: home
    http: {{get: "${{env.JOURNEY_SHOP_URL}}/"}}
"""
# ap's two shards split these two journeys; checkout sets K itself, browse takes the default
JOURNEYS = {"browse": "", "checkout": ", min_failing_locations: 2"}
AGENTS = (("eu", None), ("us", None), ("ap", "1/2"), ("ap", "2/2"))
# Short enough for a test of a minute, in the same order as in production: an agent is
# called down (for: 1s) before its journeys are called silent (6s).
OPTIONS = RulesOptions(agent_down_for=1.0, no_data_floor=6.0, locations=3)
PAGE = 'ALERTS{alertname="JourneyAvailabilityBudgetBurn",severity="page"}'


class Target:
    """One location's view of the application: 200, or 503 once ``broken``."""

    def __init__(self) -> None:
        self.broken = False

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(status=503 if self.broken else 200, text="home")


@contextlib.asynccontextmanager
async def targets() -> AsyncIterator[dict[str, tuple[Target, str]]]:
    """A target per location: (its switch, its URL)."""
    made: dict[str, tuple[Target, str]] = {}
    async with contextlib.AsyncExitStack() as stack:
        for location in ("eu", "us", "ap"):
            target = Target()
            app = web.Application()
            app.router.add_get("/", target.handle)
            made[location] = (target, await stack.enter_async_context(serve_app(app)))
        yield made


@contextlib.asynccontextmanager
async def fleet(
    journeys: Path, urls: dict[str, str]
) -> AsyncIterator[list[tuple[str, AgentProcess]]]:
    """The four agents, started side by side: (location, agent)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(location: str, shard: str | None) -> tuple[str, AgentProcess]:
            args = ["--location", location, "--grace", "2", *(["--shard", shard] if shard else [])]
            agent = running_agent([journeys], *args, environ={"JOURNEY_SHOP_URL": urls[location]})
            return location, await stack.enter_async_context(agent)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(start(location, shard)) for location, shard in AGENTS]
        yield [task.result() for task in tasks]


def _by(series: list[tuple[dict[str, str], float]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(metric[label] for label in labels): value for metric, value in series}


def _instance(agent: AgentProcess) -> str:
    return agent.url.removeprefix("http://")


async def _stays_quiet(prom: Prometheus, promql: str, seconds: float) -> None:
    """``promql`` returns nothing at every evaluation for ``seconds`` (rules run every 1s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert await prom.series(promql) == [], promql
        await asyncio.sleep(0.5)


async def _am_alerts(url: str, alertname: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(
            f"{url}/api/v2/alerts", params={"filter": f'alertname="{alertname}"'}
        )
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return alerts


async def _am_until(url: str, alertname: str, labels: dict[str, str]) -> dict[str, Any]:
    """Alertmanager's alert ``alertname`` with ``labels``, once Prometheus has sent it."""
    deadline = time.monotonic() + 30
    while True:
        for alert in await _am_alerts(url, alertname):
            if labels.items() <= alert["labels"].items():
                return alert
        if time.monotonic() > deadline:
            raise AssertionError(f"Alertmanager never got {alertname} {labels}")
        await asyncio.sleep(0.5)


async def test_k_of_n_pages_and_a_lost_agent_is_one_alert(tmp_path: Path) -> None:
    """Per-location series move; one broken location opens a ticket but no page, two page;
    a stopped agent is one JourneymanAgentDown, its journey's no-data muted by it."""
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    for journey, k in JOURNEYS.items():
        (journeys / f"{journey}.yaml").write_text(JOURNEY.format(id=journey, k=k))
    assert [Shard(1, 2).owns(j) for j in JOURNEYS] == [True, False], "one journey per ap shard"
    rules = tmp_path / "rules.yml"
    rules.write_text(render(build([j.journey for j in load([journeys]).journeys], None, OPTIONS)))
    config = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

    async with (
        asyncio.timeout(110),
        targets() as sites,
        fleet(journeys, {loc: url for loc, (_, url) in sites.items()}) as agents,
        alertmanager(tmp_path, config) as am,
        prometheus(
            tmp_path,
            rules,
            [_instance(agent) for _, agent in agents],
            alertmanager=am.removeprefix("http://"),
        ) as prom,
    ):
        ratio5m = 'journey_location:slo_errors:ratio_rate5m{slo="availability"}'
        # Healthy: every journey measured from every location (ap's from either shard).
        await prom.series_until(ratio5m, lambda s: len(s) == 6 and all(v == 0 for _, v in s))
        where = _by(await prom.series("journeyman_agent:location:last_seen_timestamp"), "instance")
        assert sorted(where) == sorted((_instance(a),) for _, a in agents)

        # One location broken: its series move, nobody else's; the fleet burns past the
        # page's factor on both windows with enough bad runs, yet only one location
        # burns on its own, so no page: a ticket, the location's problem.
        sites["eu"][0].broken = True
        fleet_burns = (
            f'journey:slo_errors:ratio_rate1h{{slo="availability"}} / {BUDGET} > {FACTOR} '
            f'and journey:slo_errors:ratio_rate5m{{slo="availability"}} / {BUDGET} > {FACTOR}'
        )
        await prom.until(fleet_burns, lambda v: len(v) == 2)
        own = await prom.series(ratio5m)
        assert {k for k, v in _by(own, "journey", "location").items() if v > 0} == {
            ("browse", "eu"),
            ("checkout", "eu"),
        }
        burning = (
            "count by (journey) ("
            f'journey_location:slo_errors:ratio_rate1h{{slo="availability"}} / {BUDGET} > {FACTOR}'
            f' and journey_location:slo_errors:ratio_rate5m{{slo="availability"}} / {BUDGET}'
            f" > {FACTOR})"
        )
        assert await prom.query(burning) == [1, 1]
        failures = 'sum by (location) (increase(journey_runs_total{outcome="failure"}[1m]))'
        failed = _by(await prom.series(failures), "location")
        assert failed[("us",)] == failed[("ap",)] == 0
        assert failed[("eu",)] >= 2
        await prom.until(
            'ALERTS{alertname="JourneyAvailabilityBudgetBurn",severity="ticket"}',
            lambda v: len(v) == 2,
        )
        await _stays_quiet(prom, PAGE, 3)

        # A second location broken: K=2 of N=3, the page fires for both journeys.
        sites["us"][0].broken = True
        firing = await prom.series_until(
            f'{PAGE[:-1]},alertstate="firing"}}', lambda s: len(s) == 2, within=30
        )
        assert sorted(labels["journey"] for labels, _ in firing) == ["browse", "checkout"]

        # ap's first shard (it runs browse) stops: one agent-down alert naming it, and the
        # no-data of browse from ap carries the same job, instance and location.
        lost = agents[2][1]
        await lost.stop()
        down = await prom.series_until(
            'ALERTS{alertname="JourneymanAgentDown",alertstate="firing"}', bool, within=20
        )
        assert [labels for labels, _ in down] == [
            {
                "__name__": "ALERTS",
                "alertname": "JourneymanAgentDown",
                "alertstate": "firing",
                "severity": "ticket",
                "job": "journeyman",
                "instance": _instance(lost),
                "location": "ap",
            }
        ]
        silent = await prom.series_until(
            'ALERTS{alertname="JourneyNoData",alertstate="firing"}', bool, within=20
        )
        agent_labels = {"job": "journeyman", "instance": _instance(lost), "location": "ap"}
        assert [labels["journey"] for labels, _ in silent] == ["browse"]
        assert agent_labels.items() <= silent[0][0].items()

        # Alertmanager mutes it: inhibited by the agent-down alert, which stays active.
        muted = await _am_until(am, "JourneyNoData", {"journey": "browse", **agent_labels})
        source = await _am_until(am, "JourneymanAgentDown", agent_labels)
        assert muted["status"]["state"] == "suppressed"
        assert muted["status"]["inhibitedBy"] == [source["fingerprint"]]
        assert source["status"]["state"] == "active"
        assert len(await _am_alerts(am, "JourneymanAgentDown")) == 1
