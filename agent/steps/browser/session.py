"""One run's browser context and page, and what the page did during the current step.

A run attempt gets one :class:`BrowserSession` (through ``ctx.resource``). It opens a
context from the agent's pool on the first browser step and keeps it for the next ones,
unless a step asks for a different emulation (then a fresh context, with the run's
cookies). It counts console errors and failed requests per step, carries cookies
between the run's jar and the browser, and reads the page's timing and web vitals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from http.cookiejar import Cookie, CookieJar
from pathlib import Path
from types import TracebackType
from typing import Any

from playwright.async_api import (
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    Response,
    WebError,
)
from playwright.async_api import Error as PlaywrightError

from agent.language.templating import Masker
from agent.run.artifacts import TraceMode
from agent.run.browser_pool import BrowserPool
from agent.steps.browser.model import Emulation, NetworkConditions

__all__ = ["BrowserSession", "StepEvents", "page_answers"]

_PROBE = 0.25  # seconds an idle page takes at most to run a trivial script

# Chrome DevTools' presets (bytes per second, milliseconds).
_NETWORK_PRESETS = {
    "slow-3g": {"latency": 2000.0, "downloadThroughput": 50_000, "uploadThroughput": 50_000},
    "fast-3g": {"latency": 562.5, "downloadThroughput": 180_000, "uploadThroughput": 84_375},
}
_CONSOLE_KEEP = 500  # console lines kept per step for the console log artifact

# Collected in the page from its first script on: paint, LCP, layout shifts (CLS as the
# largest session window), and the slowest interaction (INP's value below 50 interactions).
VITALS_SCRIPT = """(() => {
  const v = {fcp: null, lcp: null, cls: 0, inp: null};
  let win = 0, first = 0, last = 0;
  Object.defineProperty(window, '__journeymanVitals', {value: v});
  const observers = [];
  const observe = (type, each, extra) => {
    try {
      const o = new PerformanceObserver((list) => list.getEntries().forEach(each));
      o.observe(Object.assign({type, buffered: true}, extra || {}));
      observers.push([o, each]);
    } catch (e) {}
  };
  // Entries are delivered to observers in a later task; a read takes the pending ones.
  Object.defineProperty(window, '__journeymanFlush', {
    value: () => observers.forEach(([o, each]) => o.takeRecords().forEach(each)),
  });
  observe('paint', (e) => { if (e.name === 'first-contentful-paint') v.fcp = e.startTime; });
  observe('largest-contentful-paint', (e) => { v.lcp = e.startTime; });
  observe('layout-shift', (e) => {
    if (e.hadRecentInput) return;
    if (win && (e.startTime - last > 1000 || e.startTime - first > 5000)) win = 0;
    if (!win) first = e.startTime;
    win += e.value; last = e.startTime; v.cls = Math.max(v.cls, win);
  });
  // Chromium stops LCP at the first pointerdown or keydown, and an interaction's Event
  // Timing entry comes once the frame after it is presented: after an interaction whose
  // entry is in, a read need not wait for frames. ``seen``: the latest entry's start.
  let input = -1, seen = -1, waiter = null, firstSeen = false;
  const interaction = (e) => {
    if (e.interactionId || e.entryType === 'first-input') v.inp = Math.max(v.inp || 0, e.duration);
    if (e.entryType === 'first-input') firstSeen = true;
    seen = Math.max(seen, e.startTime);
    if (waiter && seen >= input) waiter();
  };
  observe('event', interaction, {durationThreshold: 16});
  observe('first-input', interaction);
  const started = (e) => { if (e.isTrusted) input = e.timeStamp; };
  addEventListener('pointerdown', started, {capture: true, passive: true});
  addEventListener('keydown', started, {capture: true, passive: true});
  // Calls ``done`` once the page's entries are in: at once when the last interaction's
  // entry is; else when it comes, or after the next two frames at the latest (a step may
  // end before its page paints, or before a just-loaded image is: its LCP comes later).
  // The page's first input always gets an entry (first-input), which a busy renderer
  // may deliver after those two frames: that one is waited for, up to a second.
  Object.defineProperty(window, '__journeymanSettle', {value: (done) => {
    if (input >= 0 && seen >= input) return done();
    let called = false;
    const once = () => { if (!called) { called = true; waiter = null; done(); } };
    if (input >= 0) waiter = once;
    if (input >= 0 && !firstSeen) setTimeout(once, 1000);
    else requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(once, 0)));
  }});
})();"""

# Read once the page's entries are in (``__journeymanSettle``; a page without the script,
# after two frames), taking those not yet delivered to observers.
_READ_VITALS = """() => new Promise((resolve) => {
  const read = () => {
    if (window.__journeymanFlush) window.__journeymanFlush();
    const n = performance.getEntriesByType('navigation')[0];
    resolve({vitals: window.__journeymanVitals || null, nav: n ? n.toJSON() : null});
  };
  if (window.__journeymanFlush) window.__journeymanFlush();
  if (window.__journeymanSettle) window.__journeymanSettle(read);
  else requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(read, 0)));
})"""


@dataclass
class StepEvents:
    """What the page did while the current step ran (reset at each step)."""

    console: list[str] = field(default_factory=list)  # masked lines, for the artifact
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)  # "GET url: why"


class BrowserSession:
    """The run's context and page; the context is handed to the pool to close when the
    attempt ends."""

    def __init__(self, pool: BrowserPool, masker: Masker, trace: TraceMode) -> None:
        self._pool = pool
        self._masker = masker
        self.trace = trace  # Playwright tracing, one chunk per step, kept on failure
        self._trace_started = False
        self._screencast = False  # the trace records screencast frames
        self._chunk_open = False
        self.headers_set = False
        self.blocking = False  # the page routes a step's block list
        self._stack = AsyncExitStack()
        self._emulation: Emulation | None = None
        self.context: BrowserContext | None = None
        self.page: Page | None = None
        self.events = StepEvents()
        self.secret_fields: list[Locator] = []  # typed a secret: masked in screenshots
        self.crashed = False
        self._used = False  # cookies were loaded into the context: it may hold some

    async def __aenter__(self) -> BrowserSession:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The run's result need not wait for the context to close (~15 ms): the pool
        # closes it, holding its slot until then.
        self._pool.close_later(self._stack.aclose())

    async def open(self, emulation: Emulation | None) -> Page:
        """The page to drive, in a context with ``emulation`` (a new one if it changed)."""
        if self.page is not None and not self.page.is_closed() and emulation == self._emulation:
            return self.page
        await self._stack.aclose()
        self._stack = AsyncExitStack()
        options = await self._context_options(emulation)
        context = await self._stack.enter_async_context(self._pool.context(**options))
        self.context, self._emulation, self.crashed, self._used = context, emulation, False, False
        await context.add_init_script(VITALS_SCRIPT)
        context.on("console", self._on_console)
        context.on("weberror", self._on_web_error)
        context.on("requestfailed", self._on_request_failed)
        context.on("response", self._on_response)
        self._trace_started = self._chunk_open = self.headers_set = self.blocking = False
        page = await context.new_page()
        page.on("crash", self._on_crash)
        if emulation is not None and emulation.network is not None:
            cdp = await context.new_cdp_session(page)
            await cdp.send("Network.enable")  # conditions apply only with the domain on
            await cdp.send("Network.emulateNetworkConditions", _throttle(emulation.network))
        self.page = page
        self.secret_fields = []
        return page

    async def _context_options(self, emulation: Emulation | None) -> dict[str, Any]:
        if emulation is None:
            return {}
        options: dict[str, Any] = {}
        if emulation.device is not None:
            options.update(await self._pool.device(emulation.device))
        if emulation.viewport is not None:
            options["viewport"] = emulation.viewport.model_dump()
        if emulation.locale is not None:
            options["locale"] = emulation.locale
        if emulation.timezone is not None:
            options["timezone_id"] = emulation.timezone
        return options

    async def begin_step(self, title: str) -> None:
        """Reset the step's counters; start the step's trace chunk.

        A full trace records DOM snapshots and the screencast, a light one neither. A run
        that holds a secret is traced without the screencast: its frames are
        pictures of the page, where a secret typed into a text field or shown by the page
        cannot be masked. The trace keeps its DOM snapshots (masked like any text). A
        secret learnt while the screencast runs (extracted) stops it from the next step.
        """
        self.events = StepEvents()
        if self.trace is TraceMode.OFF or self.context is None:
            return
        tracing = self.context.tracing
        if self._chunk_open:  # left open by a step cut off by its deadline
            await tracing.stop_chunk()
        full = self.trace is TraceMode.FULL
        screencast = full and not self._masker.holds_secrets
        if self._trace_started and self._screencast and not screencast:
            await tracing.stop()
            self._trace_started = False
        if self._trace_started:
            await tracing.start_chunk(title=title)
        else:
            await tracing.start(title=title, screenshots=screencast, snapshots=full)
            self._trace_started, self._screencast = True, screencast
        self._chunk_open = True

    async def end_step(self, keep: Path | None = None) -> None:
        """End the step's trace chunk, writing it to ``keep`` or discarding it."""
        if self._chunk_open and self.context is not None:
            self._chunk_open = False
            await self.context.tracing.stop_chunk(path=keep)

    def _on_console(self, message: ConsoleMessage) -> None:
        line = f"[{message.type}] {self._masker(message.text)}"
        if len(self.events.console) < _CONSOLE_KEEP:
            self.events.console.append(line)
        # Chromium logs each failed resource as a console error too: those are counted
        # once, as failed requests.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.events.console_errors.append(self._masker(message.text))

    def _on_web_error(self, error: WebError) -> None:
        text = self._masker(str(error.error))
        self.events.console.append(f"[uncaught] {text}")
        self.events.console_errors.append(text)

    def _on_request_failed(self, request: Request) -> None:
        failure = request.failure or "failed"
        if "ERR_BLOCKED_BY_CLIENT" in failure or "ERR_ABORTED" in failure:
            return  # blocked on purpose, or cancelled by a navigation: not the app's fault
        self.events.failed_requests.append(
            self._masker(f"{request.method} {request.url}: {failure}")
        )

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.events.failed_requests.append(
                self._masker(f"{response.request.method} {response.url}: HTTP {response.status}")
            )

    def _on_crash(self, page: Page) -> None:
        self.crashed = True

    async def load_cookies(self, jar: CookieJar) -> None:
        """Give the browser the run's cookies (set by HTTP steps, or earlier pages). A
        context this run has not used yet holds none to clear: no round trip for it."""
        assert self.context is not None
        if self._used:
            await self.context.clear_cookies()
        self._used = True
        cookies = [_to_playwright(cookie) for cookie in jar]
        if cookies:
            await self.context.add_cookies(cookies)  # type: ignore[arg-type]

    async def save_cookies(self, jar: CookieJar) -> None:
        """Put the browser's cookies back in the run's jar, for the steps that follow."""
        assert self.context is not None
        cookies = await self.context.cookies()
        jar.clear()
        for cookie in cookies:
            jar.set_cookie(_to_jar(dict(cookie)))

    async def read_timings(self) -> tuple[dict[str, float], dict[str, float]]:
        """(phases, vitals) of the page showing now, in seconds (cls: a score), read after
        its next paint."""
        assert self.page is not None
        data = await self.page.evaluate(_READ_VITALS)
        return _phases(data.get("nav")), _vitals(data.get("nav"), data.get("vitals"))


def _throttle(network: str | NetworkConditions) -> dict[str, Any]:
    conditions: dict[str, Any] = {"offline": False}
    if isinstance(network, str):
        conditions.update(_NETWORK_PRESETS[network])
    else:
        conditions.update(
            latency=network.latency * 1000,
            downloadThroughput=network.download,
            uploadThroughput=network.upload,
        )
    return conditions


def _ms(value: Any) -> float | None:
    return value / 1000 if isinstance(value, int | float) and value > 0 else None


def _phases(nav: Mapping[str, Any] | None) -> dict[str, float]:
    if not nav:
        return {}
    spans = {
        "dns": ("domainLookupStart", "domainLookupEnd"),
        "connect": ("connectStart", "connectEnd"),
        "tls": ("secureConnectionStart", "connectEnd"),
        "request": ("requestStart", "responseStart"),
        "response": ("responseStart", "responseEnd"),
        "dom_content_loaded": ("startTime", "domContentLoadedEventEnd"),
        "load": ("startTime", "loadEventEnd"),
    }
    phases = {}
    for name, (start, end) in spans.items():
        begin, finish = nav.get(start) or 0, nav.get(end) or 0
        if finish > 0 and (begin > 0 or start == "startTime" or name != "tls"):
            phases[name] = max(finish - begin, 0) / 1000
    return phases


def _vitals(nav: Mapping[str, Any] | None, page: Mapping[str, Any] | None) -> dict[str, float]:
    vitals: dict[str, float] = {}
    if nav and (ttfb := _ms(nav.get("responseStart"))) is not None:
        vitals["ttfb"] = ttfb
    for name in ("fcp", "lcp", "inp"):
        if page and (value := _ms(page.get(name))) is not None:
            vitals[name] = value
    if page and isinstance(page.get("cls"), int | float):
        vitals["cls"] = float(page["cls"])
    return vitals


def _to_playwright(cookie: Cookie) -> dict[str, Any]:
    domain = cookie.domain
    if not cookie.domain_specified and domain.endswith(".local") and domain.count(".") == 1:
        domain = domain[: -len(".local")]  # http.cookiejar's name for dotless hosts
    converted: dict[str, Any] = {
        "name": cookie.name,
        "value": cookie.value or "",
        "secure": cookie.secure,
        "httpOnly": cookie.has_nonstandard_attr("HttpOnly"),
        "expires": float(cookie.expires) if cookie.expires else -1,
    }
    if cookie.domain_specified:
        converted.update(domain=domain, path=cookie.path)
    else:  # a host-only cookie: Playwright keeps it host-only when given a URL
        scheme = "https" if cookie.secure else "http"
        converted["url"] = f"{scheme}://{domain}{cookie.path or '/'}"
    return converted


def _to_jar(cookie: Mapping[str, Any]) -> Cookie:
    domain = str(cookie["domain"])
    dotted = domain.startswith(".")
    if not dotted and "." not in domain:
        domain += ".local"
    expires = cookie.get("expires", -1)
    return Cookie(
        version=0,
        name=str(cookie["name"]),
        value=str(cookie["value"]),
        port=None,
        port_specified=False,
        domain=domain,
        domain_specified=dotted,
        domain_initial_dot=dotted,
        path=str(cookie.get("path") or "/"),
        path_specified=True,
        secure=bool(cookie.get("secure")),
        expires=int(expires) if expires and expires > 0 else None,
        discard=not (expires and expires > 0),
        comment=None,
        comment_url=None,
        rest={"HttpOnly": ""} if cookie.get("httpOnly") else {},
    )


async def page_answers(page: Page) -> bool:
    """Whether ``page`` runs a trivial script within ``_PROBE`` seconds: a page whose
    script does not yield (``while (true) {}``) never does. A page that cannot be asked
    (navigating, closed) counts as answering: nothing says it is stuck."""
    try:
        async with asyncio.timeout(_PROBE):
            await page.evaluate("0")
    except TimeoutError:
        return False
    except PlaywrightError:
        return True
    return True
