"""Runs a browser step: its actions in a real Chromium, measured, with evidence on failure.

The run's cookies go into the browser before the actions and come back after, so HTTP
and browser steps share a session. The step records its duration (actions only, not
the evidence written after: that is :func:`finish`, on the runner's evidence budget,
after the step's clock), the page's Navigation Timing phases and web vitals,
console errors and failed requests; ``fail_on_console_error`` / ``fail_on_http_error``
turn those into failures. Reasons: browser_unavailable, browser_crash, navigation,
element_not_found, assertion, extraction, timeout, console_error, http_error, config.

What the page may reach (:class:`_Guard`, a route on the run's browser context, so
popups and frames too, when ``--allow-hosts``/``--deny-hosts`` are given: routing slows
every page, so it is not on by default): every request's host is checked against the
egress policy (the
name's rules, then its addresses, resolved once per run with the loop's resolver), and
every navigation of a frame against :func:`~agent.language.references.navigation_refusal`
(``file:`` requests are routed; a frame that navigates where no route sees, such as
``chrome:``, is seen when it commits). A refused request is aborted and the step fails
as ``config``, naming the rule, whatever else it then met.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from fnmatch import fnmatch
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, Frame, Page, Route
from playwright.async_api import Error as PlaywrightError

from agent.language.references import navigation_refusal
from agent.run.artifacts import ArtifactStore, TraceMode
from agent.run.browser_pool import BrowserPool, BrowserUnavailable
from agent.run.context import StepContext, StepFailed
from agent.run.egress import EgressPolicy, EgressRefused
from agent.run.results import FailureReason
from agent.steps.browser.actions import Budget, perform
from agent.steps.browser.evidence import Rescue, keep_evidence
from agent.steps.browser.model import BrowserStep
from agent.steps.browser.session import BrowserSession
from agent.steps.kind import Unit

__all__ = ["finish", "prepare", "run"]

_READ_TIMEOUT = 1.0  # seconds to read cookies and timings back after the actions
_MARGIN = 0.05  # seconds left to the runner between our end and its deadline


def _reserve(remaining: float) -> float:
    """Time kept back from Playwright's waits so that stopping a hung page and reading
    timings and cookies back end before the step's deadline (evidence comes after it)."""
    return min(1.0, remaining * 0.2)


async def prepare(step: BrowserStep, ctx: StepContext) -> None:
    """The agent's part, before the step's clock: a browser slot, the browser (launched on
    first use), the run's context and page, this step's trace chunk, cookies and routes."""
    pool = ctx.env.browser
    if pool is None:
        raise StepFailed(
            FailureReason.BROWSER_UNAVAILABLE,
            "this agent runs without a browser, so browser steps cannot run",
        )
    session = await _session(step, ctx)
    page = await _open(session, step, pool)
    try:
        rescue = await ctx.resource(Rescue, Rescue)
        await _together(
            rescue.attach(session),
            session.begin_step(step.name),
            session.load_cookies(ctx.cookies),
            _prepare(page, step, ctx, session),
        )
    except PlaywrightError as error:
        raise StepFailed(
            FailureReason.BROWSER_CRASH, f"the browser failed: {error.message}"
        ) from None


async def run(step: BrowserStep, ctx: StepContext) -> None:
    """The actions, timed; then timings and cookies read back, before the deadline."""
    session = await _session(step, ctx)
    page = session.page
    assert page is not None, "prepare() opens the page"
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    # Playwright gives up at the budget; reading back must end before the step's
    # deadline, so that the step's own message is kept.
    end = ctx.deadline - _MARGIN
    budget = Budget(end - _reserve(ctx.remaining()))
    guard = await _guard(ctx)
    failure: StepFailed | None = None
    try:
        for action in step.browser:
            await perform(action, page, ctx, session, budget)
            if guard.refused:
                break
        _check_health(step, session)
    except StepFailed as error:
        failure = error
    finally:
        if guard.refused:  # the cause of whatever failed after it
            failure = StepFailed(FailureReason.CONFIG, guard.refused[0])
        ctx.record.set("console_errors", "", len(session.events.console_errors), Unit.COUNT)
        ctx.record.set("failed_requests", "", len(session.events.failed_requests), Unit.COUNT)
    ctx.record.duration = time.perf_counter() - started
    if failure is not None:
        rescue = await ctx.resource(Rescue, Rescue)
        await rescue.stop_loading(session, min(loop.time() + _READ_TIMEOUT, end))
    await _read_back(session, ctx, min(loop.time() + _READ_TIMEOUT, end))
    if failure is not None:
        raise failure


async def finish(step: BrowserStep, ctx: StepContext, failed: bool) -> None:
    """After the step's clock, within ``ctx.deadline`` (the runner's evidence budget): the
    evidence of a failed step (or of every step, ``artifacts: always``), else the step's
    trace chunk discarded. A failed page still loading is stopped and a spinning script
    ended first, so that the page can be pictured."""
    session = await _session(step, ctx)
    store = _store(step, ctx)
    if store is None or not (failed or step.artifacts == "always"):
        return  # the trace chunk is discarded by the next step's begin or the context's close
    if failed:
        rescue = await ctx.resource(Rescue, Rescue)
        loop = asyncio.get_running_loop()
        await rescue.unstick(session, loop.time() + (ctx.deadline - loop.time()) / 3)
    await keep_evidence(session, store, ctx, step.name, session.trace is not TraceMode.OFF)


def _store(step: BrowserStep, ctx: StepContext) -> ArtifactStore | None:
    return ctx.env.artifacts if step.artifacts != "never" else None


async def _session(step: BrowserStep, ctx: StepContext) -> BrowserSession:
    """The run's browser session (one per attempt, shared by its browser steps)."""
    pool = ctx.env.browser
    assert pool is not None
    store = _store(step, ctx)
    trace = store.trace if store is not None else TraceMode.OFF
    return await ctx.resource(BrowserSession, lambda: BrowserSession(pool, ctx.masker, trace))


async def _open(session: BrowserSession, step: BrowserStep, pool: BrowserPool) -> Page:
    try:
        return await session.open(step.emulation)
    except BrowserUnavailable as error:
        raise StepFailed(FailureReason.BROWSER_UNAVAILABLE, str(error)) from None
    except LookupError as error:
        raise StepFailed(FailureReason.CONFIG, f"emulation: {error.args[0]}") from None
    except PlaywrightError as error:
        raise StepFailed(
            FailureReason.BROWSER_CRASH, f"could not open a page: {error.message}"
        ) from None


class _Guard:
    """What the run's pages may reach: one per run attempt, routed on its browser
    context; ``refused`` holds the current step's refusals."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self.refused: list[str] = []
        self.context: BrowserContext | None = None  # the context routed
        self.page: Page | None = None  # the page whose frames are watched
        self._hosts: dict[tuple[str, int], str | None] = {}  # refusal by host, this run

    async def watch(self, page: Page) -> None:
        """Route ``page``'s context and watch its frames (once per context and page)."""
        if self.context is not page.context:
            # Routing pauses every request of the page in the driver (measured: a page of
            # 60 images loaded ~2x slower), time the target would be charged for; so the
            # pages are routed only when the agent was given egress rules. Without them,
            # goto and the frames' navigations are still checked, and Chromium itself
            # refuses local files to web pages.
            if self.policy.allow or self.policy.deny:
                await page.context.route("**/*", self._route)
            self.context = page.context
        if self.page is not page:
            page.on("framenavigated", self._navigated)
            self.page = page

    async def _route(self, route: Route) -> None:
        request = route.request
        refused = None
        if request.is_navigation_request():
            subframe = request.frame.parent_frame is not None
            refused = navigation_refusal(request.url, subframe=subframe)
        if refused is None:
            refused = await self._egress(request.url)
        with contextlib.suppress(PlaywrightError):  # the page may have gone meanwhile
            if refused is None:
                await route.fallback()
                return
            self.refused.append(refused)
            await route.abort("blockedbyclient")

    async def _egress(self, url: str) -> str | None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
            return None  # data: and blob: hold what the page made; file: is a navigation
        secure = parts.scheme in ("https", "wss")
        try:
            key = (parts.hostname, parts.port or (443 if secure else 80))
        except ValueError:  # a port out of range: the browser refuses it itself
            return None
        if key not in self._hosts:
            try:
                await self.policy.addresses(*key)
                self._hosts[key] = None
            except EgressRefused as refused:
                self._hosts[key] = refused.message
            except (OSError, UnicodeError):  # not resolvable: the browser says so itself
                self._hosts[key] = None
        return self._hosts[key]

    def _navigated(self, frame: Frame) -> None:
        refused = navigation_refusal(frame.url, subframe=frame.parent_frame is not None)
        if refused is not None and not frame.url.startswith("chrome-error:"):
            self.refused.append(refused)


async def _guard(ctx: StepContext) -> _Guard:
    return await ctx.resource(_Guard, lambda: contextlib.nullcontext(_Guard(ctx.env.egress)))


async def _prepare(
    page: Page, step: BrowserStep, ctx: StepContext, session: BrowserSession
) -> None:
    """What the page may reach; this step's extra headers and block list (each step
    states its own)."""
    guard = await _guard(ctx)
    guard.refused.clear()
    await guard.watch(page)
    headers = ctx.template.render(step.headers)
    if headers or session.headers_set:
        await page.set_extra_http_headers(headers)
        session.headers_set = bool(headers)
    if session.blocking:  # the previous step's block list
        await page.unroute_all()
        session.blocking = False
    if step.block:
        patterns = tuple(step.block)

        async def block(route: Route) -> None:
            host = urlsplit(route.request.url).hostname or ""
            if any(fnmatch(host, pattern) for pattern in patterns):
                await route.abort("blockedbyclient")
            else:
                await route.fallback()

        await page.route("**/*", block)
        session.blocking = True


def _check_health(step: BrowserStep, session: BrowserSession) -> None:
    events = session.events
    if step.fail_on_console_error and events.console_errors:
        raise StepFailed(
            FailureReason.CONSOLE_ERROR,
            f"expected no console errors, got {len(events.console_errors)}, the first: "
            f"{events.console_errors[0][:300]}",
        )
    if step.fail_on_http_error and events.failed_requests:
        raise StepFailed(
            FailureReason.HTTP_ERROR,
            f"expected every request to succeed, {len(events.failed_requests)} failed, the "
            f"first: {events.failed_requests[0][:300]}",
        )


async def _read_back(session: BrowserSession, ctx: StepContext, deadline: float) -> None:
    """Timings of the page showing now, and the browser's cookies back into the run's jar:
    together, each on its own (the cookies come while the page's entries are awaited)."""
    if session.crashed:
        return

    async def cookies() -> None:
        with contextlib.suppress(PlaywrightError):
            await session.save_cookies(ctx.cookies)

    async def timings() -> None:
        with contextlib.suppress(PlaywrightError):
            phases, vitals = await session.read_timings()
            for name, seconds in phases.items():
                ctx.record.set("phases", name, seconds, Unit.SECONDS)
            for name, value in vitals.items():
                if name == "cls":
                    ctx.record.set("cls", "", value, Unit.SCORE)
                else:
                    ctx.record.set("vitals", name, value, Unit.SECONDS)

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(deadline):
            await asyncio.gather(cookies(), timings())


async def _together(*calls: Awaitable[None]) -> None:
    """Await ``calls`` at once (independent round trips to the driver, ~2-5 ms each); once
    all have ended, raise the first error, in the order given."""
    for outcome in await asyncio.gather(*calls, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome
