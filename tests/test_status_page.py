"""The status page in a real Chromium, on a real agent monitoring the demo shop.

The chaos switch breaks the checkout; within one run interval (and without a reload)
the banner changes, the process moves to the top, "failing since" and the money at risk
appear, and the browser journey's evidence link opens its screenshot. A restart on the
same --data-dir keeps the history, the streak and the budget. axe-core checks the pages.
Screenshots for people land in test-output/ (gitignored).
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from agent_process import AgentProcess, running_agent
from browser_support import require_chromium
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout
from test_history import serving
from test_prometheus_samples import CLOCK, catalog, checkout

from agent.demo.server import RunningShop, start_shop
from agent.language.model import Journey
from agent.run.browser_pool import find_browser
from agent.run.results import FailureReason, Measurement, Outcome, RunResult, StepResult
from agent.serve.status_routes import evidence_file
from agent.steps.kind import Unit
from exporters.history import History
from exporters.status import State, StatusBoard
from exporters.status_assets import POLL_SECONDS
from exporters.status_page import banner_text, render_overview

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"
AXE_VERSION = "4.10.2"
AXE_CACHE = ROOT / ".cache" / f"axe-core-{AXE_VERSION}"

HTTP_EVERY, HTTP_TIMEOUT = 3.0, 3.0  # seconds: the HTTP journeys' interval and deadline
BROWSER_EVERY, BROWSER_TIMEOUT = 8.0, 8.0
SLACK = 8.0  # a loaded 2-core machine: scheduling, Chromium, the page's poll
# One run interval as the page sees it: the next run starts within an interval, ends
# within its deadline, and the page polls every POLL_SECONDS.
ONE_INTERVAL = HTTP_EVERY + HTTP_TIMEOUT + 2 * POLL_SECONDS + SLACK

CATALOG = """\
timezone: UTC
business_processes:
  - id: order-to-cash
    name: Order to cash (web shop)
    owner: web-team
    volume: {per_hour: 120}
    value_per_transaction: 42.50
    currency: EUR
    services: [storefront, payments]
    applications: [demo-shop-web, payment-gateway]
    infrastructure: [k8s-eu-west-1, postgres-orders]
  - id: inventory-sync
    name: Inventory sync for partners
    owner: integration-team
    volume: {per_hour: 60}
    services: [partner-api]
    applications: [demo-shop-api]
    infrastructure: [redis-stock]
"""
CHECKOUT = f"""\
journey: customer-checkout
title: Customer buys a teapot <b>now</b>
business_process: order-to-cash
owner: web-team
criticality: medium
schedule: {{every: {HTTP_EVERY}s, timeout: {HTTP_TIMEOUT}s}}
slo: {{availability: 99.5%, latency: {{threshold: 2s, objective: 95%}}}}
variables: {{base: "${{env.JOURNEY_SHOP_URL}}"}}
secrets: {{password: "${{env.SHOP_PASSWORD}}"}}
steps:
  - name: open login form
    http: {{get: "${{base}}/login"}}
    extract: {{csrf: {{regex: 'name="csrf_token" value="([^"]+)"'}}}}
  - name: log in
    http:
      post: ${{base}}/login
      form: {{username: alice, password: "${{secret.password}}", csrf_token: "${{csrf}}"}}
    expect: {{body_contains: Signed in as alice}}
  - name: add to cart
    http:
      post: ${{base}}/cart/add
      form: {{sku: teapot, quantity: 1, csrf_token: "${{csrf}}"}}
  - name: pay
    http:
      post: ${{base}}/checkout
      form: {{card: 4242 4242 4242 4242, csrf_token: "${{csrf}}"}}
    expect: {{body_contains: Thank you}}
"""
BROWSER = f"""\
journey: checkout-browser
title: Customer buys a tea in the browser
business_process: order-to-cash
criticality: medium
schedule: {{every: {BROWSER_EVERY}s, timeout: {BROWSER_TIMEOUT}s, step_timeout: 5s}}
slo: {{availability: 99%}}
variables: {{base: "${{env.JOURNEY_SHOP_URL}}"}}
secrets: {{password: "${{env.SHOP_PASSWORD}}"}}
steps:
  - name: log in
    browser:
      - goto: ${{base}}/login
      - fill: {{"#username": alice, "#password": "${{secret.password}}"}}
      - click: "#login-button"
      - expect_text: {{selector: "#nav-user", text: alice}}
  - name: add to cart
    browser:
      - goto: ${{base}}/
      - click: "#featured [data-test=product-link] >> nth=0"
      - click: "#add-to-cart"
  - name: pay
    browser:
      - goto: ${{base}}/checkout
      - fill: {{"#card": "4242 4242 4242 4242"}}
      - click: "#pay"
      - expect_visible: "#thank-you"
"""
INVENTORY = f"""\
journey: partner-inventory
title: Partner syncs the inventory feed
business_process: inventory-sync
persona: partner
criticality: critical
schedule: {{every: {HTTP_EVERY}s, timeout: {HTTP_TIMEOUT}s}}
variables: {{base: "${{env.JOURNEY_SHOP_URL}}"}}
steps:
  - name: home page
    http: {{get: "${{base}}/"}}
    expect: {{status: 200}}
"""


def axe_script() -> Path:
    """axe-core's browser bundle: from the cache the Makefile fills (``npm pack``), else
    fetched into it now; without npm or the registry it skips, or fails under CI=true."""
    bundle = AXE_CACHE / "axe.min.js"
    if bundle.is_file():
        return bundle
    npm = shutil.which("npm")
    why = "npm is missing (scripts/system-deps installs it)"
    if npm is not None:
        AXE_CACHE.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run(
            [npm, "pack", "--silent", f"axe-core@{AXE_VERSION}"],
            cwd=AXE_CACHE, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        tarball = AXE_CACHE / f"axe-core-{AXE_VERSION}.tgz"
        if packed.returncode == 0 and tarball.is_file():
            subprocess.run(
                ["tar", "-xzf", tarball.name, "--strip-components=1", "package/axe.min.js"],
                cwd=AXE_CACHE, check=True, timeout=60,
            )  # fmt: skip
            tarball.unlink()
            return bundle
        why = f"npm pack axe-core@{AXE_VERSION} failed: {packed.stderr.strip()[-300:]}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and no axe-core: {why}")
    pytest.skip(why)


async def axe_violations(browser: Browser, url: str, axe: Path) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations of the page at ``url`` (in a context that
    lets the injected script past the page's CSP)."""
    context = await browser.new_context(bypass_csp=True)
    try:
        page = await context.new_page()
        await page.goto(url, timeout=15_000)
        await page.add_script_tag(path=axe)
        found: list[dict[str, Any]] = await page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                .map(v => ({id: v.id, impact: v.impact, help: v.help,
                            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
        )
    finally:
        await context.close()
    return [v for v in found if v["impact"] in ("serious", "critical")]


async def _banner(page: Page) -> str:
    return str(await page.inner_text("#banner"))


async def _first_process(page: Page) -> str | None:
    return await page.get_attribute("section.process >> nth=0", "data-process")


async def _wait(
    page: Page, script: str, within: float = ONE_INTERVAL, agent: AgentProcess | None = None
) -> None:
    """Until ``script`` holds in the page; past ``within`` seconds, fail saying what the
    page and the agent showed."""
    try:
        await page.wait_for_function(script, timeout=within * 1000, polling=200)
    except PlaywrightTimeout:
        banner = await page.inner_text("#banner")
        runs = _failures(agent) if agent is not None else "?"
        raise AssertionError(f"not within {within} s: {script}\nbanner: {banner}\n{runs}") from None


@pytest.fixture
async def shop() -> AsyncIterator[RunningShop]:
    async with await start_shop() as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        path = find_browser(None, os.environ, playwright.chromium.executable_path)
        launched = await playwright.chromium.launch(
            executable_path=path, headless=True, chromium_sandbox=os.geteuid() != 0
        )
        try:
            yield launched
        finally:
            await launched.close()


def _journeys(folder: Path) -> Path:
    folder.mkdir()
    files = {"catalog": CATALOG, "customer-checkout": CHECKOUT,
             "checkout-browser": BROWSER, "partner-inventory": INVENTORY}  # fmt: skip
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


async def _chaos(shop: RunningShop, mode: str, target: str = "checkout", **more: Any) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        sent = {"target": target, "mode": mode, **more}
        reply = await http.post(f"{shop.url}/chaos", json=sent)
    reply.raise_for_status()


async def _start(paths: Path, data: Path, artifacts: Path, shop: RunningShop) -> Any:
    args = ("--data-dir", str(data), "--artifacts-dir", str(artifacts), "--grace", "2",
            "--max-browsers", "1", "--location", "lab-1")  # fmt: skip
    # JOURNEY_*: a name journeys may read without --allow-env (docs/security.md)
    environ = {**shop.environ(), "JOURNEY_SHOP_URL": shop.url}
    return running_agent([paths], *args, environ=environ)


@pytest.mark.browser
async def test_the_page_follows_a_broken_checkout_live_and_keeps_it_across_a_restart(
    shop: RunningShop, browser: Browser, tmp_path: Path
) -> None:
    """Healthy: all OK, inventory-sync (critical) first. Chaos on checkout: within one run
    interval, without a reload, the banner says failing, order-to-cash moves to the top
    with "failing since" and the transactions and value at risk; the browser journey's
    evidence link serves its PNG screenshot. A restart on the same --data-dir keeps the
    streak's start, the runs and the spent budget. No page breaks its CSP; axe-core finds
    no serious or critical violation."""
    axe = axe_script()
    OUTPUT.mkdir(exist_ok=True)
    paths = _journeys(tmp_path / "journeys")
    data, artifacts = tmp_path / "data", tmp_path / "artifacts"
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Security Policy" in m.text else None)
    async with await _start(paths, data, artifacts, shop) as agent:
        await page.goto(f"{agent.url}/", timeout=15_000)
        healthy = "() => document.querySelector('#banner').innerText.includes('All 2')"
        await _wait(page, healthy, BROWSER_EVERY + BROWSER_TIMEOUT + SLACK, agent)
        assert await _first_process(page) == "inventory-sync"
        await page.screenshot(path=OUTPUT / "status-page-healthy.png", full_page=True)
        assert await axe_violations(browser, f"{agent.url}/", axe) == []

        await page.evaluate("() => { window.notReloaded = true; }")
        await _chaos(shop, "wrong")
        failing = "() => document.querySelector('#banner').innerText.includes('failing')"
        await _wait(page, failing, agent=agent)
        assert await page.evaluate("() => window.notReloaded === true")  # live, no reload
        assert await _first_process(page) == "order-to-cash"
        section = page.locator("section.process >> nth=0")
        assert "Failing since" in await section.inner_text()
        at_risk = await section.locator("[data-at-risk]").first.get_attribute("data-at-risk")
        assert float(at_risk or 0) > 0
        text = await section.inner_text()
        assert "EUR/hour" in text
        assert "120 transactions/hour expected at this hour" in text

        # The browser journey fails at "pay" and leaves a screenshot; its page links it.
        await page.click("#j-checkout-browser")
        linked = "() => !!document.querySelector('a[data-evidence=screenshot]')"
        await _wait(page, linked, BROWSER_EVERY + BROWSER_TIMEOUT + SLACK, agent)
        await page.screenshot(path=OUTPUT / "status-page-journey-failing.png", full_page=True)
        assert not _password_shown(shop, await page.content())  # messages are masked
        journey_url = page.url
        shot = await page.get_attribute("a[data-evidence=screenshot]", "href")
        assert shot is not None
        evidence = await page.goto(f"{agent.url}{shot}", timeout=15_000)
        assert evidence is not None
        assert evidence.headers["content-type"] == "image/png"
        assert evidence.headers["x-content-type-options"] == "nosniff"
        assert (await evidence.body()).startswith(b"\x89PNG\r\n\x1a\n")
        assert await axe_violations(browser, journey_url, axe) == []

        await page.goto(f"{agent.url}/", timeout=15_000)
        await page.screenshot(path=OUTPUT / "status-page-failing.png", full_page=True)
        # Both journeys have failed by now: the process's streak began with the first.
        since = await page.locator("section.process >> nth=0 >> dd time").first.get_attribute(
            "datetime"
        )
        assert await axe_violations(browser, f"{agent.url}/", axe) == []
        before = await _journey_facts(page, agent)
        assert not _password_shown(shop, await page.content())

    async with await _start(paths, data, artifacts, shop) as agent:
        await page.goto(f"{agent.url}/", timeout=15_000)
        assert await _first_process(page) == "order-to-cash"
        section = page.locator("section.process >> nth=0")
        assert await section.locator("dd time").first.get_attribute("datetime") == since
        after = await _journey_facts(page, agent)
    assert after["runs"] >= before["runs"] > 0
    assert before["newest"] in after["listed"]  # a run from before the restart
    assert after["budget"] < 1.0  # failed runs spent budget, and it is still spent
    assert "Only the last" in after["slo"]  # the history covers less than the window
    assert violations == []
    await context.close()


async def _journey_facts(page: Page, agent: AgentProcess) -> dict[str, Any]:
    """What the customer-checkout page says of its history."""
    await page.goto(f"{agent.url}/journeys/customer-checkout", timeout=15_000)
    listed = await page.eval_on_selector_all(
        "#runs ~ .scroll a[href*='run=']", "links => links.map(a => a.href.split('run=')[1])"
    )
    budget = await page.get_attribute("[data-budget-left] >> nth=0", "data-budget-left")
    return {
        "runs": len(listed),
        "listed": listed,
        "newest": listed[0] if listed else None,
        "budget": float(budget or "nan"),
        "slo": await page.inner_text("section[aria-labelledby=slo]"),
    }


def _password_shown(shop: RunningShop, html: str) -> bool:
    return shop.credentials.password in html


@pytest.mark.browser
async def test_the_page_without_javascript_and_on_a_phone(
    shop: RunningShop, browser: Browser, tmp_path: Path
) -> None:
    """With JavaScript off the page is whole and refreshes itself (noscript); on a
    390-pixel phone nothing scrolls sideways; strip marks take keyboard focus and name
    their figures; runs in flight show."""
    paths = _journeys(tmp_path / "journeys")
    async with await _start(paths, tmp_path / "data", tmp_path / "a", shop) as agent:
        plain = await browser.new_context(java_script_enabled=False)
        page = await plain.new_page()
        for _ in range(int((BROWSER_EVERY + BROWSER_TIMEOUT + SLACK) / 0.5)):
            if "All 2" in await _reload_banner(page, agent):  # reloads: no script to follow
                break
            await asyncio.sleep(0.5)
        assert "All 2 business processes OK" in await _banner(page), _failures(agent)
        assert await page.locator("noscript").count() == 1
        await plain.close()

        phone = await browser.new_context(viewport={"width": 390, "height": 800})
        page = await phone.new_page()
        await page.goto(f"{agent.url}/", timeout=15_000)
        await _chaos(shop, "slow", "home", delay=HTTP_TIMEOUT * 0.7)  # runs stay in flight
        await _wait(page, "() => !!document.querySelector('.running')", agent=agent)
        assert await page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
        await page.screenshot(path=OUTPUT / "status-page-phone.png", full_page=True)
        mark = page.locator("svg.strip g[tabindex='0']").first
        await mark.focus()
        label = await page.evaluate("() => document.activeElement.getAttribute('aria-label')")
        assert label is not None
        assert " runs, " in label or " run, " in label
        title = await mark.locator("title").text_content()
        assert title == label
        await phone.close()


def _failures(agent: AgentProcess) -> list[dict[str, Any]]:
    """The agent's failed runs so far (for an assertion's message)."""
    keys = ("journey", "outcome", "reason", "failed_step", "message")
    return [{k: e.get(k) for k in keys} for e in agent.events
            if e.get("event") == "journey_run" and e.get("outcome") != "success"]  # fmt: skip


async def _reload_banner(page: Page, agent: AgentProcess) -> str:
    await page.goto(f"{agent.url}/", timeout=15_000)
    return await _banner(page)


# -- the board's arithmetic and order, without a browser ------------------------------------


def _run(journey: Journey, i: int, at: float, outcome: Outcome, **fields: Any) -> RunResult:
    failed = outcome is Outcome.FAILURE
    return RunResult(
        journey=journey.journey,
        business_process=journey.business_process,
        persona=journey.persona.value,
        run_id=f"{journey.journey}-{i}",
        trace_id="0" * 32,
        started_at=at,
        duration=fields.pop("duration", 0.5),
        outcome=outcome,
        attempts=1,
        reason=FailureReason.ASSERTION if failed else None,
        failed_step="pay" if failed else None,
        **fields,
    )


def test_at_risk_is_the_rules_arithmetic() -> None:
    """Failed over finished runs of all the process's journeys in the last hour, times this
    hour's volume in the catalog's zone, times the value: 2 of 4 runs at 11:00 Paris
    (120/hour) is 60 transactions and 2,550 EUR per hour at risk. Aborted runs and runs
    older than an hour do not count."""
    browser = checkout(journey="checkout-browser", criticality="high")
    board = StatusBoard(clock=lambda: CLOCK)
    board.set_inventory([checkout(), browser], catalog())
    runs = [
        _run(checkout(), 0, CLOCK - 7200, Outcome.FAILURE),  # two hours ago: not counted
        _run(checkout(), 1, CLOCK - 3000, Outcome.SUCCESS),
        _run(checkout(), 2, CLOCK - 2000, Outcome.FAILURE),
        _run(checkout(), 3, CLOCK - 1000, Outcome.SUCCESS),
        _run(browser, 4, CLOCK - 900, Outcome.FAILURE),
        _run(browser, 5, CLOCK - 100, Outcome.ABORTED),  # measured nothing
    ]
    for result in runs:
        board.export(result)
    (process,) = board.overview().processes
    assert (process.runs_hour, process.failures_hour) == (4, 2)
    assert process.hour == 11
    assert process.expected_per_hour == 120
    assert process.at_risk == 60
    assert process.value_at_risk == 2550
    assert process.state is State.FAILING  # the browser journey's last counted run failed
    assert process.failing_since == CLOCK - 900
    assert process.criticality == "critical"  # the highest of its journeys
    page = render_overview(board.overview(), "v")
    assert "60 transactions/hour</span> (" in page
    assert "2,550.00 EUR/hour" in page
    assert "120 transactions/hour expected at this hour (11:00 to 11:59)" in page


def test_processes_come_worst_first_then_by_criticality() -> None:
    """Failing before degraded before no data before OK; among equals, higher criticality
    first; the banner counts each."""
    journeys = {
        "a-failing": checkout(journey="a", business_process="p-failing", criticality="low"),
        "b-degraded": checkout(journey="b", business_process="p-degraded", criticality="high"),
        "c-ok-critical": checkout(journey="c", business_process="p-ok", criticality="critical"),
        "d-no-data": checkout(journey="d", business_process="p-none", criticality="medium"),
        "e-ok-low": checkout(journey="e", business_process="p-ok-low", criticality="low"),
    }
    board = StatusBoard(clock=lambda: CLOCK)
    board.set_inventory(list(journeys.values()), None)
    j = journeys
    for result in (
        _run(j["a-failing"], 1, CLOCK - 60, Outcome.FAILURE),
        _run(j["b-degraded"], 1, CLOCK - 120, Outcome.FAILURE),
        _run(j["b-degraded"], 2, CLOCK - 60, Outcome.SUCCESS),  # recovered within the hour
        _run(j["c-ok-critical"], 1, CLOCK - 60, Outcome.SUCCESS),
        _run(j["e-ok-low"], 1, CLOCK - 60, Outcome.SUCCESS),
    ):
        board.export(result)
    overview = board.overview()
    assert [p.id for p in overview.processes] == [
        "p-failing", "p-degraded", "p-none", "p-ok", "p-ok-low"
    ]  # fmt: skip
    assert banner_text(overview) == ("1 business process failing · 1 degraded · 1 no data · 2 OK.")


def test_a_slow_last_run_is_degraded_and_a_streak_spans_aborted_runs() -> None:
    """A success slower than the latency SLO is degraded; a failure streak keeps its start
    across aborted and not-started runs and ends at the next success."""
    journey = checkout()  # latency SLO: 1 s
    board = StatusBoard(clock=lambda: CLOCK)
    board.set_inventory([journey], catalog())
    board.export(_run(journey, 1, CLOCK - 5000, Outcome.SUCCESS, duration=1.5))
    assert board.overview().processes[0].journeys[0].state is State.DEGRADED
    for i, outcome in enumerate([Outcome.FAILURE, Outcome.ABORTED, Outcome.NOT_STARTED,
                                 Outcome.FAILURE], start=2):  # fmt: skip
        board.export(_run(journey, i, CLOCK - 500 + i, outcome))
    row = board.overview().processes[0].journeys[0]
    assert (row.state, row.failing_since, row.streak) == (State.FAILING, CLOCK - 498, 2)
    board.export(_run(journey, 9, CLOCK - 10, Outcome.SUCCESS))
    row = board.overview().processes[0].journeys[0]
    assert (row.state, row.failing_since, row.streak) == (State.DEGRADED, None, 0)


async def test_a_restarted_board_takes_its_state_back_from_the_history() -> None:
    """A new board on the same history restores the last runs, the streak's start and
    count, the last hour and the strip, before any new run."""
    journey = checkout()
    history = History(None, clock=lambda: CLOCK)
    await history.start()
    try:
        first = StatusBoard(history, clock=lambda: CLOCK)
        await first.start()
        first.set_inventory([journey], catalog())
        for i in range(12):
            outcome = Outcome.SUCCESS if i < 7 else Outcome.FAILURE
            result = _run(journey, i, CLOCK - 3000 + i * 200, outcome)
            first.export(result)
            history.export(result)
        second = StatusBoard(history, clock=lambda: CLOCK)
        await second.start()
        second.set_inventory([journey], catalog())
        before, after = first.overview(), second.overview()
        page = await second.journey_page("checkout")
    finally:
        await history.close()
    assert after.processes == before.processes
    assert after.processes[0].journeys[0].failing_since == CLOCK - 3000 + 7 * 200
    assert after.processes[0].journeys[0].streak == 5
    assert page is not None
    assert page.figures is not None
    assert (page.figures.successes, page.figures.failures) == (7, 5)
    assert [r.run_id for r in page.runs][:2] == ["checkout-11", "checkout-10"]


async def test_the_board_leaves_whole_runs_to_the_history() -> None:
    """Whole runs are seldom read but walked by every full garbage collection, a pause
    that delays the runs due meanwhile: with a history, which keeps them whole, the board
    keeps only their summaries, at most 20 objects for the collector per journey with 10
    runs of 3 HTTP steps each (50 when it kept the newest two whole). A journey page still
    shows the newest run in full, from the history, or from the history's queue when the
    history cannot be read."""
    journeys = [checkout(journey=f"j{i}") for i in range(100)]
    history = History(None, clock=lambda: CLOCK)
    await history.start()
    try:
        board = StatusBoard(history, clock=lambda: CLOCK)
        await board.start()
        board.set_inventory(journeys, catalog())
        gc.collect()
        before = len(gc.get_objects())
        for journey in journeys:
            for i in range(10):
                result = _run(journey, i, CLOCK - 100 + i, Outcome.SUCCESS, steps=_http_steps())
                board.export(result)
                history.export(result)
        await history.read(lambda connection: None)  # every queued run written
        del result
        gc.collect()
        assert (len(gc.get_objects()) - before) / len(journeys) <= 20
        page = await board.journey_page("j7")
    finally:
        await history.close()
    assert page is not None
    assert page.chosen is not None
    assert page.chosen.run_id == "j7-9"
    assert [step.name for step in page.chosen.steps] == ["home", "cart", "pay"]
    assert page.chosen.steps[2].values("phases") == {"connect": 0.01, "wait": 0.2}
    closed = StatusBoard(history, clock=lambda: CLOCK)  # the history can no longer be read
    closed.set_inventory(journeys, catalog())
    for i in range(3):
        result = _run(journeys[7], 10 + i, CLOCK - 50 + i, Outcome.SUCCESS, steps=_http_steps())
        closed.export(result)
        history.export(result)
    page = await closed.journey_page("j7")
    assert page is not None
    assert page.history_problem is not None
    assert page.chosen is not None
    assert page.chosen.run_id == "j7-12"
    assert len(page.chosen.steps) == 3


def _http_steps() -> tuple[StepResult, ...]:
    """Three HTTP steps as the runner reports them, each its own objects."""
    return tuple(
        StepResult(
            name,
            "http",
            True,
            CLOCK - 5,
            0.21,
            measurements=(
                Measurement("phases", "connect", 0.01, Unit.SECONDS),
                Measurement("phases", "wait", 0.2, Unit.SECONDS),
                Measurement("status_code", "", 200.0, Unit.CODE),
            ),
        )
        for name in ("home", "cart", "pay")
    )


async def test_a_journey_page_escapes_and_shows_masked_messages_only() -> None:
    """Titles and messages with markup render as text; the message shown is the masked
    one the runner gave; an unknown journey is 404."""
    journey = checkout(title="<script>alert('t')</script>")
    board = StatusBoard(clock=lambda: CLOCK)
    board.set_inventory([journey], catalog())
    message = "expected 'Thank you', got <img src=x onerror=alert(1)> for password ***"
    board.export(_run(journey, 1, CLOCK - 10, Outcome.FAILURE, message=message))
    async with serving(board) as http:
        page = await http.get("/journeys/checkout")
        missing = await http.get("/journeys/nope")
        status = (await http.get("/api/status")).json()
    assert page.status_code == 200
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt; for password ***" in page.text
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#x27;t&#x27;)&lt;/script&gt;" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none';")
    assert "script-src 'sha256-" in page.headers["content-security-policy"]
    assert missing.status_code == 404
    assert status["processes"][0]["state"] == "failing"
    assert status["processes"][0]["transactions_at_risk_per_hour"] == 120.0


# -- evidence: from the artifacts folder only ----------------------------------------------


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """An artifacts folder with a run's evidence, a secret beside it and a symlink out."""
    root = tmp_path / "artifacts"
    run = root / "checkout" / "checkout-20270115T080000Z-abc123"
    run.mkdir(parents=True)
    (run / "pay.screenshot.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (run / "pay.html").write_text("<p>page</p><script>alert(1)</script>")
    (run / "pay.trace.zip").write_bytes(b"PK\x03\x04zip")
    (run / "pay.console.log").write_text("[error] boom\n")
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    (run / "out.log").symlink_to(tmp_path / "secret.txt")
    return root


async def _raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (clients normalise dot segments away)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        async with asyncio.timeout(10):
            reply = await reader.read()
    finally:
        writer.close()
    status = int(reply.split(b" ", 2)[1])
    return status, reply


@pytest.mark.parametrize(
    "path",
    ["/evidence/../secret.txt", "/evidence/..%2Fsecret.txt", "/evidence/%2e%2e/secret.txt",
     "/evidence/checkout/../../secret.txt", "/evidence//etc/passwd", "/evidence/%2Fetc%2Fpasswd",
     f"/evidence/{quote(str(Path('/etc/passwd')), safe='')}",
     "/evidence/checkout/checkout-20270115T080000Z-abc123/out.log",
     "/evidence/checkout/checkout-20270115T080000Z-abc123", "/evidence/checkout/missing.png"],
)  # fmt: skip
async def test_evidence_outside_the_artifacts_folder_is_refused(artifacts: Path, path: str) -> None:
    """Dot segments (plain or encoded), absolute paths, a symlink out of the folder, a
    folder and a missing file are all 404, and nothing outside is ever sent."""
    board = StatusBoard()
    async with serving(board, evidence=artifacts) as http:
        status, reply = await _raw_get(str(http.base_url).rstrip("/"), path)
    assert status == 404, reply[:300]
    assert b"TOP-SECRET" not in reply
    assert b"root:" not in reply


async def test_evidence_is_served_with_its_type_nosniff_and_a_sandbox(artifacts: Path) -> None:
    """A screenshot is image/png, a page's HTML text/html under a sandbox policy (its
    script never runs), a trace a zip download, a console log text; all nosniff."""
    board = StatusBoard()
    base = "/evidence/checkout/checkout-20270115T080000Z-abc123"
    async with serving(board, evidence=artifacts) as http:
        got = {name: await http.get(f"{base}/pay.{name}")
               for name in ("screenshot.png", "html", "trace.zip", "console.log")}  # fmt: skip
    types = {name: r.headers["content-type"] for name, r in got.items()}
    assert types == {
        "screenshot.png": "image/png",
        "html": "text/html; charset=utf-8",
        "trace.zip": "application/zip",
        "console.log": "text/plain; charset=utf-8",
    }
    for response in got.values():
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"].startswith("sandbox; default-src 'none'")
    assert got["screenshot.png"].content == b"\x89PNG\r\n\x1a\nfake"
    assert got["trace.zip"].headers["content-disposition"] == 'attachment; filename="pay.trace.zip"'
    assert "content-disposition" not in got["html"].headers


def test_evidence_file_accepts_only_files_inside_the_folder(artifacts: Path) -> None:
    """The path check itself: relative paths inside resolve; the rest is None."""
    run = "checkout/checkout-20270115T080000Z-abc123"
    assert evidence_file(artifacts, f"{run}/pay.html") == (artifacts / run / "pay.html").resolve()
    for bad in ("../secret.txt", "/etc/passwd", f"{run}/out.log",
                f"{run}\\..\\x", "", f"{run}/pay.html\x00"):  # fmt: skip
        assert evidence_file(artifacts, bad) is None, bad
    assert evidence_file(None, f"{run}/pay.html") is None
