"""Browser journeys that pass, in real Chromium: the demo shop's checkout, HTTP and browser
steps sharing a token and cookies, the action vocabulary, web vitals, blocking, emulation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from browser_support import Site, environment, journey, pool, site

from agent.demo.server import start_shop
from agent.language.model import Journey
from agent.run.browser_pool import BrowserPool
from agent.run.context import RunEnvironment
from agent.run.runner import run_journey

pytestmark = pytest.mark.asyncio(loop_scope="module")
__all__ = ["pool", "site"]  # fixtures, imported for pytest

JOURNEYS = Path(__file__).parent.parent / "journeys"


async def test_customer_checkout_in_the_demo_shop(pool: BrowserPool) -> None:
    """The example journey logs in, buys, pays and sees its order: every step passes and
    measures its page."""
    checkout = Journey.model_validate(
        yaml.safe_load((JOURNEYS / "checkout-browser.yaml").read_text())
    )
    async with await start_shop() as shop:
        result = await run_journey(checkout, RunEnvironment(environ=shop.environ(), browser=pool))
        orders = shop.state.counts()
    assert result.ok, (result.failed_step, result.reason, result.message)
    assert [s.name for s in result.steps] == [s.name for s in checkout.steps]
    assert orders.get("orders") == 1
    for step in result.steps:
        assert {"ttfb", "fcp", "lcp"} <= set(step.values("vitals")), step.name
        assert step.value("cls") is not None, step.name
        assert step.values("phases")["load"] > 0
        assert 0 < step.duration < 20


async def test_http_and_browser_steps_share_token_and_cookies(
    pool: BrowserPool, site: Site
) -> None:
    """A token extracted by an HTTP step reaches the browser, the HTTP session cookie signs
    the browser in, and a cookie the page sets reaches the next HTTP step."""
    mixed = journey(
        """
        - name: api login
          http: {post: "${base}/api/login", json: {password: "${secret.password}"}}
          expect: {status: 200}
          extract: {token: {json: "$.token"}}
        - name: account in the browser
          browser:
            - goto: ${base}/account?token=${token}
            - expect_text: {selector: "#hello", text: Hello alice}
            - expect_text: {selector: "#token", text: token ok}
            - click: "#note"
        - name: account over http
          http: {get: "${base}/account"}
          expect: {status: 200, body_contains: ["Hello alice", "seen=1"]}
        """
    )
    result = await run_journey(mixed, environment(site, pool))
    assert result.ok, (result.failed_step, result.reason, result.message)


async def test_action_vocabulary_on_a_form(pool: BrowserPool, site: Site, tmp_path: Path) -> None:
    """select, check, fill, press, hover, extract, wait_for, upload and every expectation do
    what they say on a real page."""
    fixture = tmp_path / "fixture.txt"
    fixture.write_text("fixture body")
    steps = journey(
        f"""
        - name: form
          browser:
            - goto: ${{base}}/form
            - expect_title: Form
            - select: {{"#size": Large}}
            - check: "#terms"
            - extract: {{doc: {{selector: "#doc", attribute: data-id, regex: "A-(\\\\d+)"}}}}
            - fill: {{"#q": "n${{doc}}"}}
            - press: {{"#q": Enter}}
            - expect_text: {{selector: "#out", text: searched n17 l true}}
            - hover: "#hover-me"
            - wait_for: {{text: hovered}}
            - expect_count: {{selector: .item, count: 2}}
            - expect_hidden: "#ghost"
            - expect_visible: "#doc"
        - name: upload
          browser:
            - goto: ${{base}}/upload
            - upload: {{"#file": "{fixture}"}}
            - click: "#send"
            - wait_for: {{url: /upload}}
            - expect_url: /upload
            - expect_text: Got fixture.txt
        """
    )
    allowed = dataclasses.replace(environment(site, pool), uploads_dir=tmp_path)  # --uploads-dir
    result = await run_journey(steps, allowed)
    assert result.ok, (result.failed_step, result.reason, result.message)
    assert site.uploads[-1] == "fixture body"


async def test_web_vitals_of_a_page_with_a_slow_image(pool: BrowserPool, site: Site) -> None:
    """A 900 ms image is the largest paint: LCP and load come after it, TTFB and FCP before."""
    slow = journey(
        """
        - name: slow page
          browser:
            - goto: ${base}/slow-image?ms=900
            - expect_visible: "#pic"
        """
    )
    result = await run_journey(slow, environment(site, pool))
    assert result.ok, result.message
    vitals, phases = result.steps[0].values("vitals"), result.steps[0].values("phases")
    assert 0 < vitals["ttfb"] < 0.5
    assert 0 < vitals["fcp"] < 0.9 <= vitals["lcp"] < 5
    assert result.steps[0].value("cls") == pytest.approx(0, abs=0.05)
    assert 0.9 <= phases["load"] < 5


async def test_a_click_is_measured_as_an_interaction(pool: BrowserPool, site: Site) -> None:
    """A step ending just after a click reports its interaction (inp) beside fcp and lcp:
    the vitals are read once the click's Event Timing entry has come."""
    clicking = journey(
        """
        - name: note
          browser:
            - goto: ${base}/account
            - click: "#note"
        """
    )
    result = await run_journey(clicking, environment(site, pool))
    assert result.ok, result.message
    vitals = result.steps[0].values("vitals")
    assert {"ttfb", "fcp", "lcp", "inp"} <= set(vitals), vitals
    assert 0 < vitals["inp"] < 1


async def test_block_list_keeps_third_party_requests_out(pool: BrowserPool, site: Site) -> None:
    """A blocked host is never contacted and its aborted request is not counted as failed."""
    before = site.tracker_hits
    blocked = journey(
        """
        - name: tracked page
          browser: [{goto: "${base}/tracker"}, {expect_visible: "#p"}]
          block: [localhost]
          fail_on_http_error: true
        """
    )
    result = await run_journey(blocked, environment(site, pool))
    assert result.ok, result.message
    assert site.tracker_hits == before
    assert result.steps[0].value("failed_requests") == 0


async def test_emulation_of_device_locale_timezone_and_network(
    pool: BrowserPool, site: Site
) -> None:
    """The page sees the emulated phone, language and zone; added latency slows the step."""
    phone = journey(
        """
        - name: on a phone
          browser:
            - goto: ${base}/whoami
            - expect_text: {selector: "#me", text: de-DE Asia/Tokyo 412 true}
          emulation:
            device: Pixel 7
            locale: de-DE
            timezone: Asia/Tokyo
            network: {latency: 300ms, download: 1MB, upload: 1MB}
        """
    )
    result = await run_journey(phone, environment(site, pool))
    assert result.ok, result.message
    assert result.steps[0].duration >= 0.3


async def test_journey_browser_defaults_apply_to_every_browser_step_a_step_may_override(
    pool: BrowserPool, site: Site
) -> None:
    """browser_defaults emulate a locale and zone in every browser step; a step's own wins."""
    localised = journey(
        """
        - name: with the defaults
          browser:
            - goto: ${base}/whoami
            - expect_text: {selector: "#me", text: de-DE Asia/Tokyo}
        - name: with its own
          browser:
            - goto: ${base}/whoami
            - expect_text: {selector: "#me", text: fr-FR Europe/Paris}
          emulation: {locale: fr-FR, timezone: Europe/Paris}
        """,
        browser_defaults={"emulation": {"locale": "de-DE", "timezone": "Asia/Tokyo"}},
    )
    result = await run_journey(localised, environment(site, pool))
    assert result.ok, result.message
    assert [step.ok for step in result.steps] == [True, True]
