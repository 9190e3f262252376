"""Evidence of a browser step for the SRE: screenshot, Playwright trace, page HTML, console log.

Written by the browser kind's finish phase, after the step's clock, within the runner's
evidence budget (``ctx.deadline``). Each piece is best effort under a share of that
budget, so that a slow one cannot starve the others, and each path is recorded as soon
as its file is written: evidence cut off at the budget keeps what was already written.
The order: the console log (no browser needed), the trace chunk ended into a private
scratch folder, the screenshot, the page HTML, then the trace masked into place.

A page that never answers or whose script spins holds every screenshot and read. So
:class:`Rescue` keeps a CDP session attached to the page from before the step's clock
(attaching later waits for the spinning script too), and with it stops a navigation that
never commits and ends a script that does not yield before the page is pictured.

Secrets never reach these files. The trace chunk is ended first, so that nothing done
for the evidence is recorded in it; every member of its zip (actions, DOM snapshots,
network log, resources, gzip streams inflated) passes through the run's masker before
the zip reaches the run's folder, and a run that holds a secret records no screencast
(see ``BrowserSession.begin_step``). The screenshot masks the fields a secret was typed
into and every element whose text or value shows a secret; the HTML and console log pass
through the masker. A crashed page still yields its console log and whatever else can
be had. Files are the agent user's only (see :mod:`agent.run.artifacts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from playwright.async_api import CDPSession, Locator, Page
from playwright.async_api import Error as PlaywrightError

from agent.language.templating import Masker
from agent.run.artifacts import ArtifactStore, private
from agent.run.context import StepContext
from agent.steps.browser.session import BrowserSession, page_answers

__all__ = ["Rescue", "keep_evidence", "mask_zip"]

# Shares of the evidence budget left when each piece starts (the rest is for those after).
_TRACE_SHARE = 0.35  # ending the trace chunk: the driver writes its zip
_SCREENSHOT_SHARE = 0.7
_HTML_SHARE = 0.5  # then masking the trace, until the budget ends


class Rescue:
    """A CDP session on the run's page, attached before the step's clock, to reach a page
    that is stuck: one of the run's resources (``ctx.resource``), ended with the run's
    browser context."""

    def __init__(self) -> None:
        self._page: Page | None = None
        self._cdp: CDPSession | None = None

    async def __aenter__(self) -> Rescue:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # No detach round trip: the session ends with its page's context, which the
        # BrowserSession hands to the pool to close.
        self._cdp = self._page = None

    async def attach(self, session: BrowserSession) -> None:
        """Follow the session's page (a new one after a change of emulation, whose old
        context, closed, took the old session with it)."""
        page, context = session.page, session.context
        if page is self._page or page is None or context is None:
            return
        self._cdp, self._page = await context.new_cdp_session(page), page

    async def stop_loading(self, session: BrowserSession, deadline: float) -> None:
        """Stop a navigation the step gave up on (a page that never answers): until it
        commits, Playwright holds every evaluate, screenshot and content read back."""
        page = session.page
        if self._cdp is None or page is not self._page or page is None or page.is_closed():
            return
        if session.crashed:
            return
        with contextlib.suppress(PlaywrightError, TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self._cdp.send("Page.stopLoading")

    async def unstick(self, session: BrowserSession, deadline: float) -> None:
        """Stop loading, then end a script that does not yield (``while(true){}``): the
        page then answers a screenshot. A page idle within ``_PROBE`` is left alone (an
        end asked of an idle page would end the next script instead: the screenshot's)."""
        await self.stop_loading(session, deadline)
        page = self._page
        if self._cdp is None or page is None or page.is_closed() or session.crashed:
            return
        with contextlib.suppress(PlaywrightError, TimeoutError):
            async with asyncio.timeout_at(deadline):
                if not await page_answers(page):
                    await self._cdp.send("Runtime.terminateExecution")


async def keep_evidence(
    session: BrowserSession, store: ArtifactStore, ctx: StepContext, step: str, trace: bool
) -> None:
    """Write the step's evidence before ``ctx.deadline``, each file's path added to
    ``ctx.record.artifacts`` once written (the trace chunk is ended)."""
    loop = asyncio.get_running_loop()

    def until(share: float) -> float:
        return loop.time() + share * max(ctx.deadline - loop.time(), 0.0)

    async def write(what: str, data: bytes) -> None:
        target = store.path(ctx.journey_id, ctx.run_id, step, what)
        await asyncio.to_thread(store.write, target, data)
        ctx.record.artifacts.append(str(target))

    events = session.events
    log = [*events.console, *(f"[failed request] {line}" for line in events.failed_requests)]
    await write("console.log", ("\n".join(log) + "\n").encode())
    scratch = Path(tempfile.mkdtemp(prefix="journeyman-evidence-"))  # 0700, not served
    try:
        unmasked: Path | None = None
        if trace:
            with _best_effort():
                async with asyncio.timeout_at(until(_TRACE_SHARE)):
                    await session.end_step(keep=scratch / "trace.zip")
                unmasked = scratch / "trace.zip"
        page = session.page
        if page is not None and not page.is_closed() and not session.crashed:
            with _best_effort():
                async with asyncio.timeout_at(end := until(_SCREENSHOT_SHARE)):
                    image = await _masked_screenshot(
                        page, session.secret_fields, ctx.masker, end - loop.time()
                    )
                await write("screenshot.png", image)
            with _best_effort():
                async with asyncio.timeout_at(until(_HTML_SHARE)):
                    html = ctx.masker(await page.content())
                await write("html", html.encode())
        if unmasked is not None:
            target = store.path(ctx.journey_id, ctx.run_id, step, "trace.zip")
            with _best_effort():
                await asyncio.to_thread(mask_zip, unmasked, target, ctx.masker)
                ctx.record.artifacts.append(str(target))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    await asyncio.to_thread(store.prune)


# Marks the elements whose own text, or whose value, shows a secret; or removes the marks.
_MARK_SECRETS = """([patterns, mark]) => {
  const attribute = 'data-journeyman-secret';
  if (!mark) {
    document.querySelectorAll(`[${attribute}]`).forEach((e) => e.removeAttribute(attribute));
    return;
  }
  const found = patterns.flatMap((p) => {
    try { return [new RegExp(p)]; } catch (e) { return []; }
  });
  const shows = (text) => !!text && found.some((r) => r.test(text));
  for (const e of document.querySelectorAll('*')) {
    const own = [...e.childNodes].some((n) => n.nodeType === 3 && shows(n.nodeValue));
    if (own || ('value' in e && typeof e.value === 'string' && shows(e.value)))
      e.setAttribute(attribute, '');
  }
}"""


async def _masked_screenshot(
    page: Page, typed: list[Locator], masker: Masker, seconds: float
) -> bytes:
    """The page with the fields a secret was typed into, and what shows a secret, masked.

    The elements are found in the page with the masker's patterns (sent to the browser,
    never written: the trace chunk has ended) and marked for the screenshot only.
    """
    timeout = max(seconds, 0.001) * 1e3
    if not masker.holds_secrets:
        return await page.screenshot(timeout=timeout)
    await page.evaluate(_MARK_SECRETS, [masker.patterns(), True])
    try:
        shown = page.locator("[data-journeyman-secret]")
        return await page.screenshot(mask=[*typed, shown], timeout=timeout)
    finally:
        with contextlib.suppress(PlaywrightError):
            await page.evaluate(_MARK_SECRETS, [[], False])


@contextlib.contextmanager
def _best_effort() -> Iterator[None]:
    """Skip a piece the page cannot give (crashed, hung); cancellation still propagates."""
    with contextlib.suppress(PlaywrightError, TimeoutError, OSError, zipfile.BadZipFile):
        yield


def mask_zip(unmasked: Path, target: Path, masker: Masker) -> None:
    """Write the zip ``unmasked`` to ``target`` with every secret in its members replaced
    by ``***`` (``target`` appears whole, readable by the agent's user only)."""
    partial = target.with_suffix(".masking")
    with (
        zipfile.ZipFile(unmasked) as source,
        open(partial, "wb", opener=private) as raw,
        zipfile.ZipFile(raw, "w") as out,
    ):
        for item in source.infolist():
            data = _masked(source.read(item), masker)
            if item.filename.endswith(".network"):
                data = _requests_reparsed(data)
            out.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED)
    os.replace(partial, target)


_IMAGES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF")  # JPEG, PNG, GIF, WebP
_GZIP = b"\x1f\x8b"
_MAX_INFLATED = 16 * 1024 * 1024  # bytes: a gzip member inflating further is dropped


def _masked(data: bytes, masker: Masker) -> bytes:
    """A member of the trace with every secret masked: text in any encoding (bytes that
    are not UTF-8 kept as they are around it), gzip streams inflated; images as they are."""
    if data.startswith(_IMAGES):
        return data
    if data.startswith(_GZIP):
        inflated = _inflate(data)
        if inflated is None:
            return b""
        masked = _masked(inflated, masker)
        return data if masked == inflated else gzip.compress(masked, mtime=0)
    return masker(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def _requests_reparsed(data: bytes) -> bytes:
    """The network log with each request's query (and form fields) parsed again from its
    masked URL (and body): Playwright lists them parsed, and a secret put in a URL
    without encoding is split there by its own ``&`` into pieces no masker recognises."""
    lines = []
    for line in data.decode("utf-8", "surrogateescape").splitlines(keepends=True):
        with contextlib.suppress(ValueError, LookupError, AttributeError, TypeError):
            event = json.loads(line)
            request = event["snapshot"]["request"]
            request["queryString"] = _pairs(urlsplit(request["url"]).query)
            posted = request.get("postData") or {}
            if "params" in posted and "urlencoded" in posted.get("mimeType", ""):
                posted["params"] = _pairs(posted["text"])
            line = json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"
        lines.append(line)
    return "".join(lines).encode("utf-8", "surrogateescape")


def _pairs(query: str) -> list[dict[str, str]]:
    return [{"name": n, "value": v} for n, v in parse_qsl(query, keep_blank_values=True)]


def _inflate(data: bytes) -> bytes | None:
    """The gzip stream ``data`` inflated, or None when it is broken or too large."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            inflated = stream.read(_MAX_INFLATED + 1)
    except (OSError, EOFError):
        return None
    return None if len(inflated) > _MAX_INFLATED else inflated
