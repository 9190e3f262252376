"""`journeyman run` as a real process against the demo shop on loopback: metrics after
real runs, chaos shown as a business-process failure, SIGTERM, reload, sharding."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from agent_process import promtool_check_metrics, running_agent, value, wait_for

from agent.demo.server import RunningShop, start_shop

HOME = """\
journey: {id}
title: {title}
business_process: {process}
persona: customer
service: storefront
owner: web-team
schedule: {{every: {every}, timeout: {timeout}}}
slo: {{availability: 99%, latency: {{threshold: 2s, objective: 95%}}}}
variables: {{base: "${{env.JOURNEY_SHOP_URL}}"}}
steps:
  - name: home page
    http: {{get: "${{base}}/"}}
    expect: {{status: 200, body_contains: Welcome}}
"""

INVENTORY = """\
journey: inventory
business_process: inventory-sync
persona: partner
schedule: {every: 1s, timeout: 0.9s}  # room for a busy machine
variables: {base: "${env.JOURNEY_SHOP_URL}"}
secrets: {client_secret: "${env.PARTNER_SECRET}"}
steps:
  - name: get token
    http:
      post: ${base}/api/partner/token
      json: {client_id: acme-logistics, client_secret: "${secret.client_secret}"}
    extract: {token: {json: $.access_token, secret: true}}
  - name: inventory feed
    http: {get: "${base}/api/partner/inventory", auth: {bearer: "${token}"}}
    expect: {json_exists: ["$.items[0].sku"]}
"""


def home(
    journey: str = "home",
    title: str = "Home page",
    every: str = "0.5s",
    timeout: str = "0.4s",
    process: str = "storefront",
) -> str:
    return HOME.format(id=journey, title=title, every=every, timeout=timeout, process=process)


@pytest.fixture
async def shop() -> AsyncIterator[RunningShop]:
    async with await start_shop() as running:
        yield running


async def chaos(shop: RunningShop, target: str, mode: str, delay: str = "2s") -> None:
    async with httpx.AsyncClient() as client:
        body = {"target": target, "mode": mode, "delay": delay}
        response = await client.post(f"{shop.url}/chaos", json=body)
    response.raise_for_status()


def runs(samples: dict, journey: str, outcome: str) -> float:  # type: ignore[type-arg]
    return value(samples, "journey_runs_total", journey=journey, outcome=outcome)


async def test_agent_exports_real_runs_and_passes_promtool(
    shop: RunningShop, tmp_path: Path
) -> None:
    """Series appear after real runs, labelled by business process, and promtool accepts them."""
    (tmp_path / "home.yaml").write_text(home())
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    async with running_agent([tmp_path], "--location", "lab-1", environ=shop.environ()) as agent:
        samples = await wait_for(
            agent,
            lambda s: runs(s, "home", "success") >= 2 and runs(s, "inventory", "success") >= 2,
        )
        assert (
            value(
                samples,
                "journey_success",
                journey="inventory",
                business_process="inventory-sync",
                persona="partner",
                location="lab-1",
            )
            == 1
        )
        assert (
            value(samples, "journey_info", journey="home", service="storefront", owner="web-team")
            == 1
        )
        assert (
            value(
                samples,
                "journey_step_duration_seconds_count",
                journey="inventory",
                step="get token",
            )
            >= 2
        )
        assert value(samples, "journey_http_phase_seconds_total", journey="home", phase="wait") > 0
        assert value(samples, "journeyman_journeys_loaded") == 2
        text = await agent.metrics_text()
        assert shop.credentials.partner_secret not in text
    assert shop.credentials.partner_secret not in agent.stderr
    check = promtool_check_metrics(text)
    assert check.returncode == 0, check.stdout + check.stderr


async def test_chaos_shows_as_a_failure_of_the_business_process(
    shop: RunningShop, tmp_path: Path
) -> None:
    """An inventory feed that answers 200 with no items fails the inventory-sync journey."""
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    async with running_agent([tmp_path], environ=shop.environ()) as agent:
        await wait_for(agent, lambda s: runs(s, "inventory", "success") >= 1)
        await chaos(shop, "partner-inventory", "wrong")
        samples = await wait_for(
            agent,
            lambda s: (
                value(
                    s,
                    "journey_failures_total",
                    journey="inventory",
                    reason="assertion",
                    step="inventory feed",
                    business_process="inventory-sync",
                )
                >= 2
            ),
        )
        assert value(samples, "journey_success", journey="inventory") == 0
        await chaos(shop, "partner-inventory", "off")
        await wait_for(agent, lambda s: value(s, "journey_success", journey="inventory") == 1)
    failed = [
        e
        for e in agent.events
        if e.get("event") == "journey_run" and e.get("reason") == "assertion"
    ]
    assert failed
    assert "$.items[0].sku" in failed[0]["error"]


async def test_sigterm_mid_run_exits_cleanly_and_records_aborted(
    shop: RunningShop, tmp_path: Path
) -> None:
    """SIGTERM while a run hangs on a slow page: exit 0 after the grace, the run is aborted."""
    (tmp_path / "home.yaml").write_text(home(every="10s", timeout="9s"))
    await chaos(shop, "home", "slow", delay="8s")
    async with running_agent([tmp_path], "--grace", "0.5", environ=shop.environ()) as agent:
        await wait_for(agent, lambda s: value(s, "journeyman_runs_in_flight") == 1)
        code = await agent.stop()
    assert code == 0
    aborted = [e for e in agent.events if e.get("event") == "journey_run"]
    assert [e["outcome"] for e in aborted] == ["aborted"]
    assert any(e.get("event") == "agent_stopped" for e in agent.events)


async def test_reload_takes_a_good_edit_and_keeps_the_last_good_version_of_a_broken_one(
    shop: RunningShop, tmp_path: Path
) -> None:
    """A good edit is picked up; a broken edit is reported with file:line and counted, and
    the last good version keeps running."""
    journey_file = tmp_path / "home.yaml"
    journey_file.write_text(home(title="Before"))
    async with running_agent([tmp_path], environ=shop.environ()) as agent:
        await wait_for(
            agent, lambda s: value(s, "journey_info", journey="home", title="Before") == 1
        )
        journey_file.write_text(home(title="After"))
        await wait_for(
            agent, lambda s: value(s, "journey_info", journey="home", title="After") == 1
        )
        journey_file.write_text(home(title="After").replace("every: 0.5s", "every: soon"))
        samples = await wait_for(agent, lambda s: value(s, "journeyman_reload_failures_total") >= 1)
        before = runs(samples, "home", "success")
        await wait_for(agent, lambda s: runs(s, "home", "success") >= before + 2)
    rejected = [e for e in agent.events if e.get("event") == "journey_file_rejected"]
    assert rejected
    assert f"{journey_file}:7:" in str(rejected[0])
    assert "schedule.every" in str(rejected[0])


async def test_two_shards_split_the_journeys_with_none_missing_or_doubled(
    shop: RunningShop, tmp_path: Path
) -> None:
    """Agents with --shard 1/2 and 2/2 run disjoint sets that together cover every journey."""
    ids = [f"journey-{n}" for n in range(8)]
    for name in ids:
        (tmp_path / f"{name}.yaml").write_text(home(journey=name, every="5s", timeout="2s"))
    shards = []
    for shard in ("1/2", "2/2"):
        async with running_agent([tmp_path], "--shard", shard, environ=shop.environ()) as agent:
            samples = await agent.samples()
            shards.append(
                {dict(labels)["journey"] for (name, labels) in samples if name == "journey_info"}
            )
    first, second = shards
    assert first
    assert second
    assert first.isdisjoint(second)
    assert first | second == set(ids)


async def test_a_bad_file_never_stops_the_other_journeys(shop: RunningShop, tmp_path: Path) -> None:
    """The agent starts with one broken file and runs the good ones."""
    (tmp_path / "home.yaml").write_text(home())
    (tmp_path / "broken.yaml").write_text("journey: broken\nsteps: [\n")
    async with running_agent([tmp_path], environ=shop.environ()) as agent:
        await wait_for(agent, lambda s: runs(s, "home", "success") >= 1)
    assert f"{tmp_path / 'broken.yaml'}:" in agent.stderr
