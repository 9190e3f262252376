"""The recorder's page script in a real Chromium: its selector choice (the first
strategy that names one element: role + name, label, test id, text, CSS; Playwright's
own engines find exactly that element with it) and what it sends for each action."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from browser_support import pool
from playwright.async_api import FilePayload, Page

from agent.record.browser import BINDING, page_script
from agent.run.browser_pool import BrowserPool

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]
__all__ = ["pool"]  # the module's one warm Chromium (a fixture)

PAGE = """<!doctype html><html><head><title>Form</title></head><body>
<nav><a href="/a" id="home">Home</a> <a href="/b">Home</a> <a href="/c">Help <b>me</b></a></nav>
<main>
  <h1 id="title">Your order</h1>
  <label for="user">User name</label><input id="user" name="user">
  <label for="pw">Password</label><input id="pw" type="password">
  <label>Password</label><input id="pw2" type="password" aria-label="Repeat password">
  <input id="search" type="search" aria-label="Search">
  <button id="go">Pay &euro;13.00</button>
  <button id="hidden" style="display:none">Pay &euro;13.00</button>
  <span id="count" data-test="cart-count">2</span>
  <span id="note" data-testid="order note">thanks</span>
  <span id="twin1" class="twin">same</span><span id="twin2" class="twin">same</span>
  <ul><li>first</li><li>second item</li></ul>
  <div><span>same</span></div>
  <input type="submit" value="Send it">
  <select id="size" name="size"><option>S</option><option>L</option></select>
  <p id="echo">Expect this text</p>
  <form><input id="terms" type="checkbox"><label for="terms">I agree</label>
  <label>Colour <select id="colour"><option value="g">Green</option><option value="b">Black</option>
  </select></label><label>Photo <input id="photo" type="file"></label>
  <label>Qty <input id="qty" value="3"> items</label>
  <button id="buy">Buy <input value="7"> now</button></form>
</main></body></html>"""

EXPECTED = {
    "[href='/c']": 'role=link[name="Help me"]',
    "#title": 'role=heading[name="Your order"]',
    "#user": 'role=textbox[name="User name"]',
    "#pw": 'internal:label="Password"s',
    "#pw2": 'internal:label="Repeat password"s',
    "#search": 'role=searchbox[name="Search"]',
    "#go": 'role=button[name="Pay €13.00"]',
    "#count": "data-test=cart-count",
    "#note": 'internal:testid=[data-testid="order note"s]',
    "li >> nth=1": 'internal:text="second item"s',
    "[type=submit]": 'role=button[name="Send it"]',
    "#qty": 'role=textbox[name="Qty items"]',  # its own value left out of its label
    "#buy": 'role=button[name="Buy 7 now"]',  # a field's value inside a name counts
    "#twin2": "#twin2",  # same text as its twin, no role: its id
    "#home": "#home",  # "Home" twice
    "main > div > span": "body > main > div > span",  # no id: a path
}
UNIQUE_ANYHOW = ["#size", "#pw + label"]


@pytest.fixture(scope="module")
def sent() -> list[Any]:
    """What the page script sent to the recorder's binding."""
    return []


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page(pool: BrowserPool, sent: list[Any]) -> AsyncIterator[Page]:
    """A page holding the recorder's script, as the recorder's pages do."""
    async with pool.context() as context:
        await context.expose_binding(BINDING, lambda _source, event: sent.append(event))
        tab = await context.new_page()
        await tab.set_content(PAGE)
        await tab.add_script_tag(content=page_script())
        yield tab


async def chosen(page: Page, where: str) -> str:
    selector: str = await page.locator(where).evaluate("e => window.__journeymanSelector(e)")
    return selector


@pytest.mark.parametrize("where", [*EXPECTED, *UNIQUE_ANYHOW])
async def test_the_chosen_selector_finds_that_element_alone(page: Page, where: str) -> None:
    """Each element's selector matches exactly that element under Playwright's engines."""
    selector = await chosen(page, where)
    assert await page.locator(selector).count() == 1, selector
    same = await page.locator(selector).evaluate(
        "(e, other) => e === other", await page.locator(where).element_handle()
    )
    assert same, f"{selector} found another element than {where}"


@pytest.mark.parametrize(("where", "expected"), EXPECTED.items())
async def test_the_first_strategy_naming_one_element_wins(
    page: Page, where: str, expected: str
) -> None:
    """Role and name first, then label, test id, text, CSS: the recommended order."""
    assert await chosen(page, where) == expected


async def test_the_overlay_is_never_counted(page: Page) -> None:
    """The overlay's own button saying the same text does not make a page's text
    ambiguous: the replay has no overlay."""
    assert await page.locator("#jm-expect-text").inner_text() == "Expect this text"
    assert await chosen(page, "#echo") == 'internal:text="Expect this text"s'


async def test_a_picked_field_sends_no_value(page: Page, sent: list[Any]) -> None:
    """Picking a password field for a check sends its selector, never what it holds."""
    await page.fill("#pw", "hunter2-typed")
    await page.click("#jm-expect-text")
    await page.click("#pw")
    await page.wait_for_function(
        "document.querySelector('journeyman-recorder').dataset.pending === '0'"
    )
    assert sent[-1] == {
        "type": "expect_text", "selector": 'internal:label="Password"s', "value": "",
        "hints": ["pw"], "field_type": "password",
    }  # fmt: skip
    assert "hunter2-typed" not in str(sent[-1])


async def test_choices_boxes_and_files_are_sent_as_such(page: Page, sent: list[Any]) -> None:
    """A label's click is the box's check (not also a click), a choice is the option's
    value, a file input the files' names."""
    before = len(sent)
    await page.click("text=I agree")
    await page.select_option("#colour", "b")
    photo: FilePayload = {"name": "cat.png", "mimeType": "image/png", "buffer": b"png"}
    await page.set_input_files("#photo", files=[photo])
    await page.wait_for_function(
        "document.querySelector('journeyman-recorder').dataset.pending === '0'"
    )
    assert [(e["type"], e["selector"], e.get("values")) for e in sent[before:]] == [
        ("check", 'role=checkbox[name="I agree"]', None),
        ("select", 'role=combobox[name="Colour"]', ["b"]),
        ("upload", 'internal:label="Photo"s', ["cat.png"]),
    ]
