"""The demo shop, driven over real HTTP on loopback: storefront, partner API, chaos switch."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agent.demo import ChaosMode, ChaosSetting, Limits, RunningShop, parse_chaos_spec, start_shop
from agent.language.loader import load
from agent.run.context import RunEnvironment
from agent.run.results import FailureReason, Outcome
from agent.run.runner import run_journey
from agent.steps.http.model import HttpStep

JOURNEYS = Path(__file__).parent.parent / "journeys"
CARD = "4242 4242 4242 4242"
SHOP_ENVIRON = {"JOURNEY_SHOP_URL", "SHOP_PASSWORD", "PARTNER_SECRET"}


@pytest.fixture
async def shop() -> AsyncIterator[RunningShop]:
    async with await start_shop() as running:
        yield running


@pytest.fixture
async def client(shop: RunningShop) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shop.url, follow_redirects=True, timeout=10) as http:
        yield http


async def csrf_token(client: httpx.AsyncClient) -> str:
    page = await client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the login form carries a CSRF token"
    return match.group(1)


async def log_in(client: httpx.AsyncClient, shop: RunningShop) -> str:
    token = await csrf_token(client)
    form = {"username": "alice", "password": shop.credentials.password, "csrf_token": token}
    response = await client.post("/login", data=form)
    assert "Signed in as alice" in response.text
    return token


async def partner_token(client: httpx.AsyncClient, shop: RunningShop) -> dict[str, str]:
    response = await client.post(
        "/api/partner/token",
        json={"client_id": "acme-logistics", "client_secret": shop.credentials.partner_secret},
    )
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def set_chaos(client: httpx.AsyncClient, target: str, mode: str, delay: str = "") -> None:
    response = await client.post("/chaos", json={"target": target, "mode": mode, "delay": delay})
    assert response.status_code == 200


# --- storefront -------------------------------------------------------------------------


async def test_checkout_with_csrf_and_cookie_ends_in_thank_you(
    shop: RunningShop, client: httpx.AsyncClient
) -> None:
    """Home, log in (CSRF + cookie), add to cart, checkout, pay: a confirmation with an
    order number that the order page then shows as paid."""
    assert "Welcome" in (await client.get("/")).text
    token = await log_in(client, shop)
    added = await client.post(
        "/cart/add", data={"sku": "teapot", "quantity": "2", "csrf_token": token}
    )
    assert added.url.path == "/cart"
    assert "Blue teapot" in added.text
    checkout = await client.get("/checkout")
    assert 'id="card"' in checkout.text
    assert "Pay €69.00" in checkout.text
    paid = await client.post("/checkout", data={"card": CARD, "csrf_token": token})
    assert paid.status_code == 200
    assert "Thank you" in paid.text
    number = re.search(r'id="order-number"[^>]*>([^<]+)<', paid.text)
    assert number, "the confirmation shows an order number"
    tracking = await client.get(f"/orders/{number.group(1)}")
    assert 'data-test="order-status">paid<' in tracking.text
    assert "Your cart is empty" in (await client.get("/cart")).text


async def test_login_with_a_wrong_csrf_token_is_refused(
    shop: RunningShop, client: httpx.AsyncClient
) -> None:
    """A login whose CSRF token does not match the session's is refused with 403."""
    await csrf_token(client)
    form = {"username": "alice", "password": shop.credentials.password, "csrf_token": "forged"}
    response = await client.post("/login", data=form)
    assert response.status_code == 403
    assert "Signed in as" not in (await client.get("/")).text


async def test_login_without_the_session_cookie_is_refused(
    shop: RunningShop, client: httpx.AsyncClient
) -> None:
    """The right token from another session (no cookie) does not log in."""
    token = await csrf_token(client)
    client.cookies.clear()
    form = {"username": "alice", "password": shop.credentials.password, "csrf_token": token}
    assert (await client.post("/login", data=form)).status_code == 403


async def test_wrong_password_is_refused(client: httpx.AsyncClient) -> None:
    """A wrong password answers 401 with the login form and an error."""
    token = await csrf_token(client)
    form = {"username": "alice", "password": "guess", "csrf_token": token}
    response = await client.post("/login", data=form)
    assert response.status_code == 401
    assert 'id="login-error"' in response.text


async def test_checkout_sends_an_anonymous_visitor_to_the_login(client: httpx.AsyncClient) -> None:
    """GET /checkout without logging in ends on the login form, which returns to checkout."""
    response = await client.get("/checkout")
    assert response.url.path == "/login"
    assert 'name="next" value="/checkout"' in response.text


@pytest.mark.parametrize(
    ("card", "status", "message"),
    [("1234 5678", 422, "not valid"), ("4000 0000 0000 0002", 402, "declined")],
)
async def test_bad_cards_are_refused_on_the_checkout_page(
    shop: RunningShop, client: httpx.AsyncClient, card: str, status: int, message: str
) -> None:
    """An invalid or declined card shows the checkout page again with the reason."""
    token = await log_in(client, shop)
    await client.post("/cart/add", data={"sku": "mug", "quantity": "1", "csrf_token": token})
    response = await client.post("/checkout", data={"card": card, "csrf_token": token})
    assert response.status_code == status
    assert message in response.text
    assert len(shop.state.orders) == 0


async def test_add_to_cart_answers_json_for_the_page_script(
    shop: RunningShop, client: httpx.AsyncClient
) -> None:
    """With Accept: application/json, add-to-cart answers the new cart count."""
    token = await log_in(client, shop)
    response = await client.post(
        "/cart/add",
        data={"sku": "mug", "quantity": "3", "csrf_token": token},
        headers={"Accept": "application/json"},
    )
    assert response.json() == {"ok": True, "count": 3}


async def test_search_escapes_what_the_visitor_typed(client: httpx.AsyncClient) -> None:
    """A search for markup finds nothing and shows the query escaped, never as HTML."""
    response = await client.get("/search", params={"q": "<script>x</script>"})
    assert "<script>x" not in response.text
    assert "&lt;script&gt;x" in response.text
    assert "Blue teapot" in (await client.get("/search", params={"q": "teapot"})).text


# --- partner API ------------------------------------------------------------------------


async def test_partner_submits_an_order_and_reads_its_status_and_inventory(
    shop: RunningShop, client: httpx.AsyncClient
) -> None:
    """Token, order (201 with an id), status, inventory; the order shows in the storefront."""
    auth = await partner_token(client, shop)
    order = {"reference": "PO-7", "lines": [{"sku": "kettle", "quantity": 2}]}
    submitted = await client.post("/api/partner/orders", json=order, headers=auth)
    assert submitted.status_code == 201
    assert submitted.json()["status"] == "accepted"
    order_id = submitted.json()["id"]
    status = await client.get(f"/api/partner/orders/{order_id}", headers=auth)
    assert status.json()["lines"] == [{"sku": "kettle", "quantity": 2}]
    feed = await client.get("/api/partner/inventory", headers=auth)
    assert {item["sku"] for item in feed.json()["items"]} >= {"teapot", "kettle"}
    page = await client.get(f"/orders/{order_id}")
    assert "PO-7" in page.text
    assert 'data-test="order-source">partner<' in page.text


async def test_partner_api_refuses_a_wrong_secret_and_a_missing_token(
    client: httpx.AsyncClient,
) -> None:
    """A wrong client secret and a call without a token both answer 401."""
    bad = {"client_id": "acme-logistics", "client_secret": "nope"}
    assert (await client.post("/api/partner/token", json=bad)).status_code == 401
    no_token = await client.get("/api/partner/inventory")
    assert no_token.status_code == 401
    assert "Bearer" in no_token.headers["WWW-Authenticate"]


async def test_partner_order_errors_name_the_field(
    shop: RunningShop, client: httpx.AsyncClient
) -> None:
    """An order with an unknown SKU answers 422 naming lines[1].sku; garbage answers 400."""
    auth = await partner_token(client, shop)
    order = {
        "reference": "PO-8",
        "lines": [{"sku": "mug", "quantity": 1}, {"sku": "x", "quantity": 1}],
    }
    response = await client.post("/api/partner/orders", json=order, headers=auth)
    assert response.status_code == 422
    assert response.json()["field"] == "lines[1].sku"
    garbage = await client.post("/api/partner/orders", content=b"\xff{", headers=auth)
    assert garbage.status_code == 400


# --- chaos switch -----------------------------------------------------------------------


async def test_chaos_slow_delays_the_target_until_switched_off(client: httpx.AsyncClient) -> None:
    """slow holds the answer back by at least its delay, and still answers correctly."""
    await set_chaos(client, "home", "slow", "300ms")
    started = time.perf_counter()
    response = await client.get("/")
    assert time.perf_counter() - started >= 0.3
    assert "Welcome" in response.text
    await set_chaos(client, "home", "off")
    assert (await client.get("/chaos")).json()["home"]["mode"] == "off"


async def test_chaos_error_answers_500(shop: RunningShop, client: httpx.AsyncClient) -> None:
    """error makes a page answer 500 HTML and an API endpoint 500 JSON; off restores both."""
    auth = await partner_token(client, shop)
    await set_chaos(client, "home", "error")
    await set_chaos(client, "partner-inventory", "error")
    assert (await client.get("/")).status_code == 500
    failed = await client.get("/api/partner/inventory", headers=auth)
    assert failed.status_code == 500
    assert failed.json() == {"error": "internal server error"}
    await set_chaos(client, "all", "off")
    assert (await client.get("/")).status_code == 200
    assert (await client.get("/api/partner/inventory", headers=auth)).status_code == 200


async def test_chaos_wrong_answers_200_without_what_the_customer_needed(
    shop: RunningShop, client: httpx.AsyncClient
) -> None:
    """wrong: pay answers 200 without "Thank you" and the inventory feed is empty; off
    restores both."""
    token = await log_in(client, shop)
    auth = await partner_token(client, shop)
    await client.post("/cart/add", data={"sku": "teapot", "quantity": "1", "csrf_token": token})
    await set_chaos(client, "checkout", "wrong")
    await set_chaos(client, "partner-inventory", "wrong")
    paid = await client.post("/checkout", data={"card": CARD, "csrf_token": token})
    assert paid.status_code == 200
    assert "Thank you" not in paid.text
    feed = await client.get("/api/partner/inventory", headers=auth)
    assert feed.status_code == 200
    assert feed.json()["items"] == []
    await set_chaos(client, "all", "off")
    assert (
        "Thank you"
        in (await client.post("/checkout", data={"card": CARD, "csrf_token": token})).text
    )
    assert (await client.get("/api/partner/inventory", headers=auth)).json()["items"]


async def test_chaos_switch_rejects_unknown_targets_and_modes(client: httpx.AsyncClient) -> None:
    """A bad target, mode or delay answers 400 naming the field."""
    for body, field in [
        ({"target": "payroll", "mode": "slow"}, "target"),
        ({"target": "home", "mode": "broken"}, "mode"),
        ({"target": "home", "mode": "slow", "delay": "1y"}, "delay"),
        ({"target": "home", "mode": "slow", "delay": "1h"}, "delay"),
    ]:
        response = await client.post("/chaos", json=body)
        assert (response.status_code, response.json()["field"]) == (400, field), body


async def test_chaos_switch_takes_json_labelled_as_a_form(client: httpx.AsyncClient) -> None:
    """`curl -d '{json}'` sends JSON as a form; the switch still reads it as JSON."""
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    body = b'{"target": "checkout", "mode": "wrong"}'
    response = await client.post("/chaos", content=body, headers=form_type)
    assert response.json()["checkout"]["mode"] == "wrong"


async def test_chaos_panel_form_flips_a_target(client: httpx.AsyncClient) -> None:
    """The HTML panel's form sets a target and comes back to the panel showing it."""
    response = await client.post("/chaos", data={"target": "cart", "mode": "wrong", "delay": "2s"})
    assert response.url.path == "/chaos/panel"
    assert re.search(r'data-target="cart">.*?class="mode-wrong">wrong<', response.text, re.S)


async def test_chaos_flags_set_the_initial_state() -> None:
    """--chaos specs parse to settings, and a shop started with them serves broken."""
    assert parse_chaos_spec("checkout=slow:3s") == ("checkout", ChaosSetting(ChaosMode.SLOW, 3.0))
    with pytest.raises(ValueError, match="unknown target 'nope'"):
        parse_chaos_spec("nope=slow")
    with pytest.raises(ValueError, match="TARGET=MODE"):
        parse_chaos_spec("checkout")
    async with (
        await start_shop(chaos=dict([parse_chaos_spec("home=error")])) as shop,
        httpx.AsyncClient() as http,
    ):
        assert (await http.get(f"{shop.url}/")).status_code == 500


# --- bounds and the command line --------------------------------------------------------


async def test_state_stays_bounded_under_many_sessions_orders_and_tokens() -> None:
    """Past the caps the oldest sessions, orders and tokens are forgotten; carts are capped."""
    limits = Limits(sessions=3, orders=3, tokens=3, cart_lines=2)
    async with (
        await start_shop(limits=limits) as shop,
        httpx.AsyncClient(base_url=shop.url, follow_redirects=True) as client,
    ):
        order_ids = []
        for _ in range(8):
            client.cookies.clear()  # a new visitor each time
            token = await log_in(client, shop)
            auth = await partner_token(client, shop)
            order = {"reference": "PO", "lines": [{"sku": "mug", "quantity": 1}]}
            submitted = await client.post("/api/partner/orders", json=order, headers=auth)
            order_ids.append(submitted.json()["id"])
        counts = (await client.get("/healthz")).json()
        assert counts == {"ok": True, "sessions": 3, "orders": 3, "tokens": 3}
        assert (await client.get(f"/orders/{order_ids[0]}")).status_code == 404
        assert (await client.get(f"/orders/{order_ids[-1]}")).status_code == 200
        for sku, status in [("mug", 200), ("kettle", 200), ("teapot", 409)]:
            form = {"sku": sku, "quantity": "1", "csrf_token": token}
            assert (await client.post("/cart/add", data=form)).status_code == status, sku


async def test_python_m_agent_demo_serves_until_interrupted() -> None:
    """`python -m agent.demo --port 0` prints its URL, serves, and exits 0 on Ctrl-C."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.demo", "--port", "0", "--chaos", "search=wrong",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        url = first.split()[-1]
        assert url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient() as http:
            assert "Welcome" in (await http.get(url)).text
            assert (await http.get(f"{url}chaos")).json()["search"]["mode"] == "wrong"
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_example_journeys_load_and_only_need_what_the_shop_provides() -> None:
    """journeys/ loads with no error or warning when given just RunningShop.environ()'s
    variables, and its catalog names every journey's business process."""
    loaded = load([JOURNEYS], environ=dict.fromkeys(SHOP_ENVIRON, "set"))
    assert [str(p) for p in (*loaded.errors, *loaded.warnings)] == []
    assert loaded.catalog is not None
    ids = {j.journey.journey for j in loaded.journeys}
    assert ids >= {"customer-checkout", "partner-order", "partner-inventory"}


async def test_example_http_journeys_pass_and_chaos_fails_them_as_assertions(
    shop: RunningShop, client: httpx.AsyncClient
) -> None:
    """The example HTTP journeys pass against the shop; under "wrong" chaos (200s with the
    wrong content) checkout fails at pay and the inventory sync at its feed."""
    assert set(shop.environ()) == SHOP_ENVIRON
    env = RunEnvironment(environ=shop.environ())
    journeys = {
        j.journey.journey: j.journey
        for j in load([JOURNEYS]).journeys
        if all(isinstance(step, HttpStep) for step in j.journey.steps)
    }
    for journey in journeys.values():
        result = await run_journey(journey, env)
        assert result.outcome is Outcome.SUCCESS, (journey.journey, result.message)
    await set_chaos(client, "checkout", "wrong")
    await set_chaos(client, "partner-inventory", "wrong")
    for journey_id, step in [("customer-checkout", "pay"), ("partner-inventory", "inventory feed")]:
        result = await run_journey(journeys[journey_id], env)
        assert (result.reason, result.failed_step) == (FailureReason.ASSERTION, step)
        assert shop.credentials.password not in result.message


@pytest.mark.browser
async def test_ctrl_c_on_the_demo_stops_the_browser_in_order(tmp_path: Path) -> None:
    """Ctrl-C in a terminal (SIGINT to the whole process group: the agent, Playwright's
    node driver and Chromium at once) once a browser journey ran: the demo exits 0 within
    its bound, saying nothing of a driver future never retrieved, and no traceback."""
    from browser_support import require_chromium

    require_chromium()
    browser = (JOURNEYS / "checkout-browser.yaml").read_text()
    sooner = re.sub(r"schedule: \{[^}]*\}", "schedule: {every: 10s, timeout: 9s}", browser)
    (tmp_path / "checkout-browser.yaml").write_text(sooner)  # first run within 10 s
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "demo", str(tmp_path),
        "--shop-port", "0", "--listen", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )  # fmt: skip
    assert process.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(120):
            while not any("checkout-browser" in line for line in seen):
                line = (await process.stdout.readline()).decode()
                assert line, "".join(seen)
                seen.append(line)
        os.killpg(process.pid, signal.SIGINT)
        async with asyncio.timeout(30):
            rest = (await process.stdout.read()).decode()
            code = await process.wait()
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    assert code == 0, rest
    assert "Future exception was never retrieved" not in rest, rest
    assert "Traceback" not in rest, rest
