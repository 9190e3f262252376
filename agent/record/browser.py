"""The recording browser: Chromium opened on the site, its events collected in order.

The page script (``recorder.js``) is added to the context with ``add_init_script`` and
reports through ``expose_binding``, so both outlive every navigation. Chromium is found
and flagged as the agent's pool does it (:func:`~agent.run.browser_pool.find_browser`,
``LEAN_ARGS``), in a fresh profile deleted afterwards. With a remote debugging port it
listens on 127.0.0.1 only, and the address is printed: a person (chrome://inspect over
an SSH tunnel) or a test (``connect_over_cdp``) drives the recorded page through it.

The recording ends when ``stop`` is set (SIGINT, SIGTERM), or the page or the browser is
closed. What was recorded is kept in Python as it happens, so a browser that dies with
Ctrl-C (the terminal signals the whole process group) loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from playwright.async_api import BrowserContext, BrowserType, Page, Response, async_playwright
from playwright.async_api import Error as PlaywrightError

from agent.record.events import ApiCall, PageEvent, from_payload
from agent.run.browser_pool import LEAN_ARGS, BrowserUnavailable, find_browser

__all__ = ["BINDING", "RecordOptions", "Recording", "page_script", "record"]

BINDING = "__journeymanRecord"  # the name recorder.js calls
_CLOSE_TIMEOUT = 5.0
_PORT_FILE_WAIT = 10.0  # seconds for Chromium to say which port it took


@dataclass(frozen=True)
class RecordOptions:
    headless: bool
    debugging_port: int | None  # None: no remote debugging; 0: any free port
    browser_path: str | None


@dataclass
class Recording:
    """What the person did, in order, and the JSON calls the page made meanwhile."""

    events: list[PageEvent] = field(default_factory=list)
    calls: list[ApiCall] = field(default_factory=list)
    page: Page | None = None

    def on_binding(self, source: dict[str, Any], payload: Any) -> None:
        page = self.page
        if page is None or source.get("frame") is not page.main_frame:
            return  # another tab, or a frame: only the recorded page's own document
        event = from_payload(payload)
        if event is not None:
            self.events.append(event)

    def on_response(self, response: Response) -> None:
        request = response.request
        if request.resource_type not in ("fetch", "xhr"):
            return
        types = (response.headers.get("content-type", ""), request.headers.get("content-type", ""))
        if any("json" in t for t in types):
            self.calls.append(ApiCall(request.method, request.url, len(self.events)))


def page_script() -> str:
    return resources.files(__package__).joinpath("recorder.js").read_text(encoding="utf-8")


async def record(url: str, options: RecordOptions, stop: asyncio.Event, out: TextIO) -> Recording:
    """Open ``url`` and record until ``stop`` is set or the page is closed."""
    recording = Recording()
    with tempfile.TemporaryDirectory(prefix="journeyman-record-") as profile:
        try:
            playwright = await async_playwright().start()
        except Exception as error:  # Playwright raises a bare Exception when it exits
            raise BrowserUnavailable(f"Playwright's driver would not start: {error}") from None
        try:
            context = await _launch(playwright.chromium, Path(profile), options)
            try:
                page = await _watch(context, recording, stop)
                if options.debugging_port is not None:
                    port = await _debugging_port(Path(profile))
                    print(f"Recording browser: http://127.0.0.1:{port}", file=out, flush=True)
                try:
                    await page.goto(url)
                except PlaywrightError as error:
                    if not stop.is_set():  # else closed while loading: nothing to say
                        why = _first_line(error)
                        raise BrowserUnavailable(f"could not open {url}: {why}") from None
                await stop.wait()
            finally:
                with contextlib.suppress(PlaywrightError, TimeoutError):
                    async with asyncio.timeout(_CLOSE_TIMEOUT):
                        await context.close()
        finally:
            with contextlib.suppress(Exception):  # a driver killed by Ctrl-C cannot stop
                async with asyncio.timeout(_CLOSE_TIMEOUT):
                    await playwright.stop()
    return recording


async def _launch(chromium: BrowserType, profile: Path, options: RecordOptions) -> BrowserContext:
    path = find_browser(options.browser_path, os.environ, chromium.executable_path)
    args = list(LEAN_ARGS)
    if options.debugging_port is not None:
        args += [
            f"--remote-debugging-port={options.debugging_port}",
            "--remote-debugging-address=127.0.0.1",
        ]
    try:
        return await chromium.launch_persistent_context(
            profile,
            executable_path=path,
            headless=options.headless,
            args=args,
            chromium_sandbox=os.geteuid() != 0,  # as the pool: no sandbox only as root
            no_viewport=not options.headless,  # headed: the window's own size
        )
    except PlaywrightError as error:
        raise BrowserUnavailable(f"{path} would not start: {_first_line(error)}") from None


async def _watch(context: BrowserContext, recording: Recording, stop: asyncio.Event) -> Page:
    """Collect the page's events; closing the page or the browser ends the recording."""
    page = context.pages[0] if context.pages else await context.new_page()
    recording.page = page
    await context.expose_binding(BINDING, recording.on_binding)
    await context.add_init_script(script=page_script())
    page.on("response", recording.on_response)
    page.on("close", lambda _: stop.set())
    context.on("close", lambda _: stop.set())
    return page


async def _debugging_port(profile: Path) -> int:
    """The port Chromium listens on (asked for 0, it picks one and writes it down)."""
    port_file = profile / "DevToolsActivePort"
    async with asyncio.timeout(_PORT_FILE_WAIT):
        while True:
            with contextlib.suppress(OSError, ValueError, IndexError):
                return int(port_file.read_text().split()[0])
            await asyncio.sleep(0.05)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
