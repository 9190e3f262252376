"""`journeyman record` as a person uses it: a real Chromium recording a real demo shop,
driven over the recorder's remote debugging address; the file it writes validates,
replays green, keeps the password out, and fails where the shop breaks."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from browser_support import require_chromium
from playwright.async_api import Page, async_playwright

from agent.demo import ChaosMode, ChaosSetting, RunningShop, start_shop

pytestmark = pytest.mark.browser

ENV_VAR = "RECORDED_CHECKOUT_PASSWORD"
ADDRESS = re.compile(r"Recording browser: (http://127\.0\.0\.1:\d+)")


@pytest.fixture
async def shop() -> AsyncIterator[RunningShop]:
    async with await start_shop() as running:
        yield running


async def journeyman(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def all_recorded(page: Page) -> None:
    """Wait until the recorder has taken every event the page sent (the overlay's count)."""
    await page.wait_for_function(
        "document.querySelector('journeyman-recorder')?.dataset.pending === '0'"
    )


async def shop_as_a_customer(page: Page, shop: RunningShop) -> None:
    """Log in (typing the password, then Enter), add two teas, check the cart count with
    the overlay, pay, and check the thank-you heading with the overlay."""
    await page.click("#nav-login")
    await page.fill("#username", "alice")
    await page.locator("#password").press_sequentially(shop.credentials.password)
    await page.locator("#password").press("Enter")  # submits by clicking #login-button
    await page.wait_for_selector("#nav-user")
    await page.click("#featured [data-test=product-link] >> nth=0")
    await page.fill("#quantity", "2")
    await page.click("#add-to-cart")
    await page.wait_for_selector("#cart-count:text-is('2')")
    await page.click("#jm-expect-text")  # the overlay's button, then the element
    await page.click("#cart-count")
    await page.click("#nav-cart")
    await page.click("#checkout-link")
    await page.fill("#card", "4242 4242 4242 4242")
    await page.click("#pay")
    await page.wait_for_selector("#thank-you")
    await page.click("#jm-expect-element")
    await page.click("#thank-you")
    await all_recorded(page)


def listening(port: int) -> set[str]:
    """The addresses (hex, as Linux lists them) with a socket listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if int(port_hex, 16) == port and fields[3] == "0A":
                found.add(address)
    return found


async def record(shop: RunningShop, output: Path) -> str:
    """Record the customer's visit through the recorder's debugging address; its stderr."""
    recorder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "record", f"{shop.url}/", "-o", str(output),
        "--headless", "--remote-debugging-port", "0", "--journey", "recorded-checkout",
        "--business-process", "order-to-cash", "--persona", "customer", "--interval", "5m",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert recorder.stdout is not None
        assert recorder.stderr is not None
        line = await asyncio.wait_for(recorder.stdout.readline(), 30)
        address = ADDRESS.search(line.decode())
        assert address, f"the recorder prints its debugging address, got {line!r}"
        assert listening(int(address.group(1).rsplit(":", 1)[1])) == {"0100007F"}  # 127.0.0.1
        async with async_playwright() as playwright:
            browser = await playwright.chromium.connect_over_cdp(address.group(1))
            page = browser.contexts[0].pages[0]
            await page.wait_for_selector("#jm-expect-text")  # the shop, with the overlay
            await shop_as_a_customer(page, shop)
            await page.close()  # the person closes the page: the recording ends
        await asyncio.wait_for(recorder.wait(), 30)
        err = (await recorder.stderr.read()).decode()
        assert recorder.returncode == 0, err
        return err
    finally:
        if recorder.returncode is None:
            recorder.kill()
            await recorder.wait()


async def test_a_recorded_checkout_validates_replays_and_fails_where_the_shop_breaks(
    shop: RunningShop, tmp_path: Path
) -> None:
    """The recording validates, replays green with run --once, declares the typed password
    as a secret and never writes it, uses role/label/test id selectors, notes the JSON
    call, and its replay fails at the checkout step once the chaos switch breaks paying."""
    require_chromium()
    output = tmp_path / "recorded.yaml"
    err = await record(shop, output)
    text = output.read_text()
    password = shop.credentials.password
    assert password not in text
    assert password not in err
    assert f"set {ENV_VAR}" in err
    journey = yaml.safe_load(text)
    assert journey["secrets"] == {"password": f"${{env.{ENV_VAR}}}"}
    assert journey["business_process"] == "order-to-cash"
    assert journey["schedule"] == {"every": "5m", "timeout": "30s", "step_timeout": "10s"}
    actions = [a for step in journey["steps"] for a in step["browser"]]
    assert {"click": 'role=link[name="Log in"]'} in actions
    assert {"press": {'internal:label="Password"s': "Enter"}} in actions
    assert {"click": 'role=button[name="Log in"]'} not in actions  # Enter's doing, not hers
    assert {"click": 'role=button[name="Add to cart"]'} in actions
    assert {
        "fill": {
            'role=textbox[name="User name"]': "alice",
            'internal:label="Password"s': "${secret.password}",
        }
    } in actions
    assert {"expect_text": {"selector": "data-test=cart-count", "text": "2"}} in actions
    assert {"expect_url": "/checkout/confirmation/"} in actions
    assert {"expect_visible": 'role=heading[name="Thank you for your order!"]'} in actions
    assert "# The page called POST ${base}/cart/add (JSON)" in text
    assert not any("wait" in next(iter(a)) for a in actions), "waits are expectations"

    code, out, _ = await journeyman("validate", str(output))
    assert code == 0, out
    code, out, err = await journeyman("run", "--once", str(output), env={ENV_VAR: password})
    assert code == 0, out + err
    assert password not in out + err

    shop.chaos.set("checkout", ChaosSetting(ChaosMode.WRONG))  # paying "works", no order
    # A failing expectation waits out its step: 3 s instead of the recorded 10 s.
    output.write_text(text.replace("step_timeout: 10s", "step_timeout: 3s"))
    junit = tmp_path / "junit.xml"
    code, out, err = await journeyman(
        "run", "--once", str(output), "--junit", str(junit), env={ENV_VAR: password}
    )
    assert code == 1, out + err
    failure = ET.parse(junit).find("testcase/failure")
    assert failure is not None, out
    assert failure.get("message", "").startswith("assertion at step 'Checkout':"), out


async def test_ctrl_c_in_the_terminal_ends_the_recording_and_writes_what_was_done(
    shop: RunningShop, tmp_path: Path
) -> None:
    """SIGINT to the whole process group (the terminal's Ctrl-C, which also reaches the
    browser and Playwright's driver) still writes the journey recorded so far; an
    address typed by the person is a goto."""
    require_chromium()
    output = tmp_path / "partial.yaml"
    recorder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "record", f"{shop.url}/", "-o", str(output),
        "--headless", "--remote-debugging-port", "0",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert recorder.stdout is not None
        address = ADDRESS.search((await asyncio.wait_for(recorder.stdout.readline(), 30)).decode())
        assert address
        async with async_playwright() as playwright:
            browser = await playwright.chromium.connect_over_cdp(address.group(1))
            page = browser.contexts[0].pages[0]
            await page.wait_for_selector("#jm-expect-text")
            await page.click("#nav-products")
            await page.wait_for_url("**/products")
            await page.goto(f"{shop.url}/cart")  # as if typed into the address bar
            await all_recorded(page)
            os.killpg(recorder.pid, signal.SIGINT)
            _, err = await asyncio.wait_for(recorder.communicate(), 30)
    finally:
        if recorder.returncode is None:
            recorder.kill()
            await recorder.wait()
    assert recorder.returncode == 0, err.decode()
    journey = yaml.safe_load(output.read_text())
    assert journey["journey"] == "partial"  # from the file's name: no flag, no terminal
    assert journey["business_process"] == "unassigned"
    assert "business_process: unassigned (not given, no terminal to ask)" in err.decode()
    assert [step["browser"] for step in journey["steps"]] == [
        [
            {"goto": "${base}/"},
            {"click": 'role=link[name="Products"]'},
            {"expect_url": "/products"},
        ],
        [{"goto": "${base}/cart"}],  # typed, not opened by the page: a goto
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://x/", "-o", "x.yaml"], "must be an http:// or https:// URL"),
        (["http://127.0.0.1:9/", "-o", "x.yaml", "--journey", "Bad Id"], "must be lowercase"),
        (["http://127.0.0.1:9/", "-o", "x.yaml", "--interval", "often"], "--interval"),
        (["http://127.0.0.1:9/", "-o", "no/such/folder/x.yaml"], "does not exist"),
        (["http://127.0.0.1:9/", "-o", "x.yaml", "--browser-path", "/no/chromium"], "not an"),
    ],
)
async def test_what_cannot_work_exits_2_with_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """A bad option, a missing folder or browser: exit 2, saying why, nothing written."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "record", *args, "--headless", "--journey", "j",
        "--business-process", "b", "--persona", "customer",
        cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert message in err.decode()
    assert not (tmp_path / "x.yaml").exists()
