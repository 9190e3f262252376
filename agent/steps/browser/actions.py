"""Each browser action performed on a page, and Playwright's errors mapped to reasons.

Every action gets Playwright's timeout from the step's remaining budget, so Playwright
reports what it was waiting for before the runner's deadline cuts the step off. A
failure says what was expected, what the page showed, and where (the page's URL).
Values typed by ``fill`` never appear in a message: the selector does, the text not;
page text quoted in a message is masked before it is cut. Each action model has one
handler here, in :data:`HANDLERS`, keyed by the model.

What a journey may reach: ``goto`` opens http and https pages and ``about:blank`` only
(:func:`~agent.language.references.navigation_refusal`); ``upload`` sends files from
``--uploads-dir`` only. Both refusals are ``config``. ``extract``'s regular expression
runs within a time bound.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from agent.language.references import navigation_refusal
from agent.run.context import Mask, StepContext, StepFailed, confined, masked_cut
from agent.run.patterns import PatternTooSlow, search
from agent.run.results import FailureReason
from agent.steps.browser.model import (
    Action,
    BrowserAction,
    Check,
    Click,
    ExpectCountAction,
    ExpectHidden,
    ExpectTextAction,
    ExpectTitle,
    ExpectUrl,
    ExpectVisible,
    Extract,
    Fill,
    Goto,
    Hover,
    Press,
    Select,
    Uncheck,
    Upload,
    WaitFor,
)
from agent.steps.browser.session import BrowserSession, page_answers
from agent.steps.kind import Unit

__all__ = ["HANDLERS", "Budget", "perform"]

_SHOWN = 200  # characters of page text quoted in a failure message
_NET_ERROR = re.compile(r"net::ERR_[A-Z_]+")


@dataclass(frozen=True)
class Budget:
    """The loop time by which Playwright must give up, leaving room for artifacts."""

    deadline: float

    @property
    def ms(self) -> float:
        return max((self.deadline - asyncio.get_running_loop().time()) * 1000, 1.0)


Handler = Callable[[Any, Page, StepContext, BrowserSession, Budget], Awaitable[None]]


async def perform(
    action: Action, page: Page, ctx: StepContext, session: BrowserSession, budget: Budget
) -> None:
    """Do one action; raise StepFailed with a reason when it did not happen."""
    handler, on_timeout = HANDLERS[type(action)]
    if isinstance(action, WaitFor) and (action.wait_for.selector or action.wait_for.text):
        on_timeout = FailureReason.ELEMENT_NOT_FOUND
    allowed = budget.ms / 1000
    try:
        await handler(action, page, ctx, session, budget)
    except PlaywrightTimeout:
        if not await page_answers(page):  # not the element's fault: the page froze
            raise StepFailed(
                FailureReason.TIMEOUT,
                f"{_described(action, ctx)}: not done within {allowed:.3g}s, the page "
                f"stopped answering (a script that does not yield){_at(page)}",
            ) from None
        what = "no element matched" if on_timeout is _ELEMENT else "not done"
        raise StepFailed(
            on_timeout, f"{_described(action, ctx)}: {what} within {allowed:.3g}s{_at(page)}"
        ) from None
    except PlaywrightError as error:
        raise _failure(_described(action, ctx), page, session, error) from None


def _described(action: Action, ctx: StepContext) -> str:
    """The action in words with its templates resolved (the runner masks any secret)."""
    return ctx.template.render(action.describe())


def _failure(what: str, page: Page, session: BrowserSession, error: PlaywrightError) -> StepFailed:
    text = str(error.message or error)
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    context = session.context
    gone = context is None or context.browser is None or not context.browser.is_connected()
    if session.crashed or gone or page.is_closed() or "Target crashed" in text:
        return StepFailed(FailureReason.BROWSER_CRASH, f"{what}: the browser crashed")
    net = _NET_ERROR.search(text)
    if net is not None:
        return StepFailed(FailureReason.NAVIGATION, f"{what}: {net.group(0)}")
    if "strict mode violation" in text:
        return StepFailed(FailureReason.ELEMENT_NOT_FOUND, f"{what}: {first}")
    return StepFailed(FailureReason.NAVIGATION, f"{what}: {first}{_at(page)}")


def _at(page: Page) -> str:
    return "" if page.is_closed() else f" (page: {page.url})"


async def _goto(action: Goto, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget) -> None:
    options = action.options
    url = ctx.template.render(options.url)
    refused = navigation_refusal(url)
    if refused is not None:
        raise StepFailed(FailureReason.CONFIG, refused)
    response = await page.goto(url, wait_until=options.wait_until, timeout=b.ms)
    if response is not None:
        ctx.record.set("status_code", "", response.status, Unit.CODE)
        if response.status >= 400:
            raise StepFailed(
                FailureReason.HTTP_ERROR, f"expected a page at {url}, got HTTP {response.status}"
            )


async def _click(
    action: Click, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    await page.locator(ctx.template.render(action.click)).click(timeout=b.ms)


async def _fill(action: Fill, page: Page, ctx: StepContext, s: BrowserSession, b: Budget) -> None:
    for selector, raw in action.fill.items():
        value = ctx.template.render(raw)
        locator = page.locator(ctx.template.render(selector))
        if ctx.masker(value) != value:
            s.secret_fields.append(locator)  # hidden in screenshots
        await locator.fill(value, timeout=b.ms)


async def _select(
    action: Select, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    for selector, choice in action.select.items():
        wanted = ctx.template.render(choice)
        # A string matches an option's value or its label.
        await page.locator(ctx.template.render(selector)).select_option(wanted, timeout=b.ms)


async def _check(
    action: Check, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    await page.locator(ctx.template.render(action.check)).check(timeout=b.ms)


async def _uncheck(
    action: Uncheck, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    await page.locator(ctx.template.render(action.uncheck)).uncheck(timeout=b.ms)


async def _press(
    action: Press, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    if isinstance(action.press, str):
        await page.keyboard.press(ctx.template.render(action.press))
        return
    for selector, key in action.press.items():
        locator = page.locator(ctx.template.render(selector))
        await locator.press(ctx.template.render(key), timeout=b.ms)


async def _hover(
    action: Hover, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    await page.locator(ctx.template.render(action.hover)).hover(timeout=b.ms)


async def _wait_for(
    action: WaitFor, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    target = action.wait_for
    if target.selector is not None:
        locator = page.locator(ctx.template.render(target.selector)).first
        await locator.wait_for(state=target.state, timeout=b.ms)
    elif target.text is not None:
        await page.get_by_text(ctx.template.render(target.text)).first.wait_for(timeout=b.ms)
    elif target.url is not None:
        wanted = re.compile(re.escape(ctx.template.render(target.url)))
        await page.wait_for_url(wanted, timeout=b.ms)
    else:
        await page.wait_for_load_state("networkidle", timeout=b.ms)


async def _upload(
    action: Upload, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    root = ctx.env.uploads_dir
    for selector, files in action.upload.items():
        paths = [
            confined(ctx.template.render(f), root, what="upload", may="upload files",
                     flag="--uploads-dir")
            for f in ([files] if isinstance(files, str) else files)
        ]  # fmt: skip
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise StepFailed(FailureReason.CONFIG, f"upload: no such file: {', '.join(missing)}")
        await page.locator(ctx.template.render(selector)).set_input_files(paths, timeout=b.ms)


async def _extract(
    action: Extract, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    for name, rule in action.extract.items():
        selector = ctx.template.render(rule.selector)
        locator = page.locator(selector).first
        if rule.attribute is not None:
            found = await locator.get_attribute(rule.attribute, timeout=b.ms)
            if found is None:
                raise StepFailed(
                    FailureReason.EXTRACTION,
                    f"extract {name}: {selector!r} has no attribute {rule.attribute!r}{_at(page)}",
                )
        else:
            found = (await locator.inner_text(timeout=b.ms)).strip()
        if rule.regex is not None:
            try:
                match = await search(rule.regex, found, ctx.remaining())
            except PatternTooSlow as slow:
                raise StepFailed(FailureReason.EXTRACTION, f"extract {name}: {slow}") from None
            if match is None:
                raise StepFailed(
                    FailureReason.EXTRACTION,
                    f"extract {name}: expected {rule.regex!r} to match in {selector!r}, "
                    f"the page showed {_quote(found, ctx.masker)}{_at(page)}",
                )
            found = match.group(1) if match.groups() else match.group(0)
        if rule.secret:
            ctx.masker.add(found)
        ctx.variables[name] = found


async def _expect_text(
    action: ExpectTextAction, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    options = action.options
    text = ctx.template.render(options.text)
    where = ctx.template.render(options.selector) if options.selector else "body"
    place = f"in {where!r}" if options.selector else "on the page"

    async def seen() -> str:
        shown = await _text_of(page, where, ctx.masker)
        return f"expected text {text!r} {place}, the page showed {shown}"

    await _holds(expect(page.locator(where).first).to_contain_text(text, timeout=b.ms), seen, page)


async def _expect_visible(
    action: ExpectVisible, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    selector = ctx.template.render(action.expect_visible)

    async def seen() -> str:
        count = await page.locator(selector).count()
        found = "no element matched" if count == 0 else f"{count} matched, none visible"
        return f"expected {selector!r} to be visible, {found}"

    await _holds(expect(page.locator(selector).first).to_be_visible(timeout=b.ms), seen, page)


async def _expect_hidden(
    action: ExpectHidden, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    selector = ctx.template.render(action.expect_hidden)

    async def seen() -> str:
        shown = await _text_of(page, selector, ctx.masker)
        return f"expected {selector!r} to be hidden, it was visible showing {shown}"

    # no element at all counts as hidden
    await _holds(expect(page.locator(selector).first).to_be_hidden(timeout=b.ms), seen, page)


async def _expect_url(
    action: ExpectUrl, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    wanted = ctx.template.render(action.expect_url)

    async def seen() -> str:
        return f"expected the URL to contain {wanted!r}, it was {page.url!r}"

    pattern = re.compile(re.escape(wanted))
    await _holds(expect(page).to_have_url(pattern, timeout=b.ms), seen, page, where=False)


async def _expect_title(
    action: ExpectTitle, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    wanted = ctx.template.render(action.expect_title)

    async def seen() -> str:
        return f"expected the title to contain {wanted!r}, it was {await page.title()!r}"

    pattern = re.compile(re.escape(wanted))
    await _holds(expect(page).to_have_title(pattern, timeout=b.ms), seen, page)


async def _expect_count(
    action: ExpectCountAction, page: Page, ctx: StepContext, _s: BrowserSession, b: Budget
) -> None:
    selector, count = ctx.template.render(action.expect_count.selector), action.expect_count.count
    locator = page.locator(selector)

    async def seen() -> str:
        return f"expected {count} element(s) matching {selector!r}, found {await locator.count()}"

    await _holds(expect(locator).to_have_count(count, timeout=b.ms), seen, page)


async def _holds(
    assertion: Awaitable[None],
    seen: Callable[[], Awaitable[str]],
    page: Page,
    *,
    where: bool = True,
) -> None:
    """Await a Playwright assertion (it auto-waits); when it does not hold, fail the step
    with what was expected and what the page showed, and where (the page's URL)."""
    try:
        await assertion
    except AssertionError:
        raise StepFailed(
            FailureReason.ASSERTION, await seen() + (_at(page) if where else "")
        ) from None


async def _text_of(page: Page, selector: str, mask: Mask) -> str:
    """A short quote of what the page shows there, for a failure message."""
    try:
        return _quote(await page.locator(selector).first.inner_text(timeout=500), mask)
    except PlaywrightError:
        return "nothing (no such element)"


def _quote(text: str, mask: Mask) -> str:
    """``text`` on one line, masked, then cut (a secret the cut goes through is masked
    whole), quoted."""
    return repr(masked_cut(" ".join(text.split()), _SHOWN, mask))


_ELEMENT, _TIMEOUT = FailureReason.ELEMENT_NOT_FOUND, FailureReason.TIMEOUT
HANDLERS: Mapping[type[BrowserAction], tuple[Handler, FailureReason]] = {
    Goto: (_goto, _TIMEOUT),
    Click: (_click, _ELEMENT),
    Fill: (_fill, _ELEMENT),
    Select: (_select, _ELEMENT),
    Check: (_check, _ELEMENT),
    Uncheck: (_uncheck, _ELEMENT),
    Press: (_press, _ELEMENT),
    Hover: (_hover, _ELEMENT),
    WaitFor: (_wait_for, _TIMEOUT),
    Upload: (_upload, _ELEMENT),
    Extract: (_extract, _ELEMENT),
    ExpectTextAction: (_expect_text, FailureReason.ASSERTION),
    ExpectVisible: (_expect_visible, FailureReason.ASSERTION),
    ExpectHidden: (_expect_hidden, FailureReason.ASSERTION),
    ExpectUrl: (_expect_url, FailureReason.ASSERTION),
    ExpectTitle: (_expect_title, FailureReason.ASSERTION),
    ExpectCountAction: (_expect_count, FailureReason.ASSERTION),
}
