"""One warm Chromium per agent, a fresh context per run, relaunched when it dies.

The entry point builds one :class:`BrowserPool` and passes it down in the
``RunEnvironment``. A run asks for a context with ``async with pool.context(...)``: at
most ``max_contexts`` are open at once (the rest wait), each is closed shielded from
cancellation and within ``close_timeout``. The browser is launched on first use; a browser
that crashed (disconnected) or hung (a context would not close) is killed and
relaunched on the next request, so one bad run never takes the agent down.

A launch has a deadline of its own, ``launch_timeout`` (10 s: a cold launch takes
0.2-2 s), and runs as a task of the pool, so a run cut off by its own deadline while
waiting never cancels it (the next run finds the browser ready). A launch that fails or
hangs past its deadline makes the browser known unavailable: until a launch succeeds,
every run fails at once with ``BrowserUnavailable`` (reason ``browser_unavailable``)
while the pool tries again in the background, instead of each run waiting out its whole
budget and ending as ``timeout`` or ``agent_busy``.

A run need not wait for its context to close: it hands the close to the pool
(:meth:`BrowserPool.close_later`) and publishes its result meanwhile. The context keeps
its slot until it is closed, so at most ``max_contexts`` are open or closing at once;
:meth:`BrowserPool.settled` waits for those closes, and :meth:`BrowserPool.close` does
first.

:meth:`BrowserPool.close` shuts down in order: the closes handed over, the contexts
still open, the browser,
then Playwright's node driver, each within ``close_timeout``; an error the driver's
connection met (the driver died first, as Ctrl-C in a terminal kills it) is read, so
asyncio never reports it as "never retrieved".

Finding the browser, in order: the configured path (``--browser-path`` or
``JOURNEYMAN_BROWSER``), Playwright's own download, the system's Chromium.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

# Playwright's error class from the module that defines it: 3 ms, where its public API
# costs ~70 ms and ~8 MB at start-up. The API loads with the first browser run.
from playwright._impl._errors import Error as PlaywrightError

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Playwright

__all__ = [
    "LEAN_ARGS",
    "LEAN_DISABLED_FEATURES",
    "SYSTEM_BROWSERS",
    "BrowserPool",
    "BrowserUnavailable",
    "descendant_pids",
    "find_browser",
]

SYSTEM_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LEAN_ARGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Three minutes after launch Chromium starts an on-device AI model service to rate
    # the machine for its built-in models, and keeps it (a 7th process, ~47 MB RSS): the
    # child that the soak saw appear. Its performance class given up front (1: "error",
    # no on-device model, as this machine would find anyway) means it never starts.
    "--optimization-guide-performance-class=1",
)
# Debian's Chromium preloads a hidden omnibox renderer per context: ~30% CPU, ~37 MB each.
LEAN_DISABLED_FEATURES = (
    "WebUIOmniboxPopup",
    "WebUIOmniboxFullPopup",
    "WebUIOmniboxAimPopup",
    "PreloadTopChromeWebUI",
)
_FEATURES_FLAG = "--disable-features="
_log = structlog.get_logger("journeyman.browser")


class BrowserUnavailable(Exception):
    """No usable browser: none found, or it would not start. The message says which."""


def find_browser(
    configured: str | None, environ: Mapping[str, str], playwright_download: str | None
) -> str:
    """The browser executable to launch, or BrowserUnavailable listing what was tried."""
    tried: list[str] = []
    for source, path in (
        ("--browser-path", configured),
        ("JOURNEYMAN_BROWSER", environ.get("JOURNEYMAN_BROWSER")),
    ):
        if path:
            if os.access(path, os.X_OK) and Path(path).is_file():
                return path
            raise BrowserUnavailable(f"{source} names {path!r}, which is not an executable file")
    if playwright_download:
        if os.access(playwright_download, os.X_OK):
            return playwright_download
        tried.append(f"Playwright's download ({playwright_download})")
    for name in SYSTEM_BROWSERS:
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            return found
    tried.append(f"{', '.join(SYSTEM_BROWSERS)} on PATH")
    raise BrowserUnavailable(
        "no Chromium found (tried " + "; ".join(tried) + "): install the chromium package, "
        "or set --browser-path / JOURNEYMAN_BROWSER"
    )


def descendant_pids(root: int) -> list[int]:
    """Every live process below ``root`` (Linux /proc), children before grandchildren."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    queue = [root]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _browser_mains() -> dict[int, list[str]]:
    """Our Chromium main processes (launched over Playwright's pipe), by pid."""
    mains = {}
    for pid in descendant_pids(os.getpid()):
        args = _cmdline(pid)
        if "--remote-debugging-pipe" in args and not any(a.startswith("--type=") for a in args):
            mains[pid] = args
    return mains


class BrowserPool:
    """The agent's Chromium: launched once, shared by runs, one fresh context per run."""

    def __init__(
        self,
        *,
        executable: str | None = None,
        environ: Mapping[str, str] | None = None,
        max_contexts: int = 2,
        launch_timeout: float = 10.0,
        close_timeout: float = 3.0,
        open_timeout: float = 5.0,
        on_wait: Callable[[float], None] | None = None,
        headless: bool = True,
        slow_mo: float = 0.0,
    ) -> None:
        self._configured = executable
        self._headless = headless  # False: a window to watch (run --once --headed)
        self._slow_mo = slow_mo  # milliseconds Playwright waits before each operation
        self._environ = dict(os.environ if environ is None else environ)
        self._slots = asyncio.Semaphore(max_contexts)
        self._launch_timeout = launch_timeout
        self._close_timeout = close_timeout
        self._open_timeout = open_timeout  # a context not open by then: the browser hung
        self._lock = asyncio.Lock()
        self._launching: asyncio.Task[Browser] | None = None  # shared by every waiting run
        self._launch_ends = 0.0  # loop time: the launch in progress must be done by then
        self._unavailable: str | None = None  # why the last launch failed, until one works
        self._contexts: set[BrowserContext] = set()  # open now: closed first on shutdown
        self._closing: set[asyncio.Task[None]] = set()  # closes handed over by runs
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._pid: int | None = None
        self._suspect = False  # a context would not close: the browser may be hung
        self._features_flag: str | None = None  # Playwright's own --disable-features=...
        self._on_wait = on_wait  # seconds a run waited for a context: the agent's time
        self.open_contexts = 0
        self.launches = 0

    @property
    def pid(self) -> int | None:
        """The Chromium main process, when one is running."""
        return self._pid

    async def device(self, name: str) -> dict[str, Any]:
        """Playwright's descriptor of device ``name`` (viewport, user agent, touch...)."""
        devices = (await self._driver()).devices
        if name not in devices:
            raise LookupError(f"unknown device {name!r} (see Playwright's list of devices)")
        return dict(devices[name])

    async def __aenter__(self) -> BrowserPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def context(self, **options: Any) -> AsyncIterator[BrowserContext]:
        """A fresh browser context (Playwright ``new_context`` options), always closed.

        The time until it is open (a free slot, a launch on first use or after a crash, the
        context itself) is reported to ``on_wait``, also when the wait is cut off."""
        began = time.monotonic()
        try:
            await self._slots.acquire()
            try:
                context = await self._new_context(options)
            except BaseException:
                self._slots.release()
                raise
        finally:
            if self._on_wait is not None:
                self._on_wait(time.monotonic() - began)
        try:
            self.open_contexts += 1
            self._contexts.add(context)
            try:
                yield context
            finally:
                await self._close_shielded(context)
        finally:
            self._slots.release()

    def close_later(self, closing: Coroutine[Any, Any, None]) -> None:
        """Run ``closing`` (a run's exit from :meth:`context`) as a task of the pool, so
        that the run's result does not wait for it; :meth:`settled` and :meth:`close`
        await it. Bounded: the context holds its slot until closed, each close takes at
        most ``close_timeout``."""
        task = asyncio.ensure_future(closing)
        self._closing.add(task)
        task.add_done_callback(self._closed)

    def _closed(self, task: asyncio.Task[None]) -> None:
        self._closing.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            _log.warning("browser_context_close_failed", error=repr(error))

    async def settled(self) -> None:
        """Until every close handed to :meth:`close_later` has ended."""
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def _new_context(self, options: dict[str, Any]) -> BrowserContext:
        """A new context; a browser that died or hung since its last use is replaced once."""
        for attempt in (1, 2):
            browser = await self._ensure_browser()
            try:
                async with asyncio.timeout(self._open_timeout):
                    return await browser.new_context(**options)
            except asyncio.CancelledError:
                self._suspect = True  # a healthy browser opens a context in milliseconds
                raise
            except (PlaywrightError, TimeoutError) as error:
                self._suspect = True
                if attempt == 2:
                    why = (
                        _first_line(error)
                        if isinstance(error, PlaywrightError)
                        else (f"no answer within {self._open_timeout:g}s")
                    )
                    raise BrowserUnavailable(f"could not open a browser context: {why}") from None
        raise AssertionError("unreachable")

    async def _close_shielded(self, context: BrowserContext) -> None:
        closing = asyncio.ensure_future(self._close_context(context))
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            await closing
            raise

    async def _close_context(self, context: BrowserContext) -> None:
        try:
            async with asyncio.timeout(self._close_timeout):
                await context.close()
        except TimeoutError:
            self._suspect = True  # hung: kill and relaunch before the next run
        except PlaywrightError:
            pass  # already gone with a crashed browser; relaunch is decided on next use
        finally:
            if context in self._contexts:  # closed once, by its run or by close()
                self._contexts.discard(context)
                self.open_contexts -= 1

    async def _ensure_browser(self) -> Browser:
        """The running browser, or one launched now. A run that waits for the launch may
        be cut off by its own deadline; the launch goes on for the runs after it."""
        browser = self._browser
        if browser is not None and browser.is_connected() and not self._suspect:
            return browser
        if self._launching is None:
            self._launching = asyncio.create_task(self._relaunch(), name="browser-launch")
            self._launching.add_done_callback(self._launch_done)
        if self._unavailable is not None:  # known down: fail now, the launch is a retry
            raise BrowserUnavailable(self._unavailable)
        return await asyncio.shield(self._launching)

    def _launch_done(self, task: asyncio.Task[Browser]) -> None:
        self._launching = None
        if not task.cancelled():
            task.exception()  # read: a launch nobody waited for is no "never retrieved"

    async def _relaunch(self) -> Browser:
        """Replace the browser within ``launch_timeout``; remember why it failed, if so."""
        async with self._lock:
            await self._discard_browser()
            loop = asyncio.get_running_loop()
            self._launch_ends = loop.time() + self._launch_timeout
            try:
                # Playwright's own launch timeout ends a hung launch (and kills what it
                # started) at the deadline; this one bounds a driver that hangs as well.
                async with asyncio.timeout(self._launch_timeout + self._close_timeout):
                    browser = await self._launch()
            except (TimeoutError, BrowserUnavailable) as error:
                await self._discard_browser()
                why = str(error) if isinstance(error, BrowserUnavailable) else ""
                if loop.time() >= self._launch_ends:
                    why = f"the browser did not start within {self._launch_timeout:g}s" + (
                        f" ({why})" if why else ""
                    )
                self._unavailable = why
                raise BrowserUnavailable(why) from None
            self._unavailable = None
            return browser

    def _launch_left(self) -> float:
        """Milliseconds left to the launch in progress, for Playwright's ``timeout``."""
        return max(self._launch_ends - asyncio.get_running_loop().time(), 0.001) * 1000

    async def _launch(self) -> Browser:
        try:
            return await self._launch_with(await self._driver())
        except BrowserUnavailable:
            if self._launch_left() <= 1:
                raise  # out of time: a new driver would not help
            # Playwright's node driver may have died with the browser: start a new one once.
            await self._stop_driver()
            return await self._launch_with(await self._driver())

    async def _launch_with(self, playwright: Playwright) -> Browser:
        path = find_browser(self._configured, self._environ, playwright.chromium.executable_path)
        if self._features_flag is None:
            # Learn Playwright's own --disable-features list once, to merge ours into it:
            # Chromium keeps only the last such flag.
            self._features_flag = await self._probe_features_flag(playwright, path)
        before = set(_browser_mains())
        try:
            browser = await playwright.chromium.launch(
                executable_path=path,
                headless=self._headless,
                slow_mo=self._slow_mo,
                timeout=self._launch_left(),
                **self.launch_options(),
            )
        except PlaywrightError as error:
            raise BrowserUnavailable(f"{path} would not start: {_first_line(error)}") from None
        self._browser = browser
        self._suspect = False
        self._pid = next(iter(set(_browser_mains()) - before), None)
        self.launches += 1
        return browser

    def launch_options(self) -> dict[str, Any]:
        """``chromium.launch`` keyword arguments of this pool's browser (its merged
        ``--disable-features`` known from the first launch on): what an anchor that must
        launch exactly as the agent does (``bench/raw_playwright.py``) takes."""
        args = list(LEAN_ARGS)
        ignore: list[str] = []
        flag = self._features_flag
        if flag:
            ignore.append(flag)
            features = [f for f in flag[len(_FEATURES_FLAG) :].split(",") if f]
            features += [f for f in LEAN_DISABLED_FEATURES if f not in features]
            args.append(_FEATURES_FLAG + ",".join(features))
        return {
            "args": args,
            "ignore_default_args": ignore,
            # Playwright passes --no-sandbox unless asked; keep the sandbox when we can.
            "chromium_sandbox": os.geteuid() != 0,
        }

    async def _probe_features_flag(self, playwright: Playwright, path: str) -> str:
        before = set(_browser_mains())
        try:
            browser = await playwright.chromium.launch(
                executable_path=path,
                headless=True,
                chromium_sandbox=os.geteuid() != 0,
                timeout=self._launch_left(),
            )
        except PlaywrightError as error:
            raise BrowserUnavailable(f"{path} would not start: {_first_line(error)}") from None
        try:
            args = next((a for pid, a in _browser_mains().items() if pid not in before), [])
        finally:
            await browser.close()
        return next((a for a in args if a.startswith(_FEATURES_FLAG)), "")

    async def _driver(self) -> Playwright:
        """Playwright's node driver, started on first use; BrowserUnavailable if it won't."""
        if self._playwright is None:
            try:
                from playwright.async_api import async_playwright

                self._playwright = await async_playwright().start()
            except Exception as error:  # Playwright raises a bare Exception when it exits
                raise BrowserUnavailable(
                    f"Playwright's driver would not start: {_first_line(error)} (the driver's "
                    "own error is on the agent's stderr; a missing library such as "
                    "libatomic1 is a known cause)"
                ) from None
        return self._playwright

    async def _stop_driver(self) -> None:
        playwright, self._playwright = self._playwright, None
        if playwright is not None:
            with contextlib.suppress(Exception):  # a dead driver cannot stop cleanly
                async with asyncio.timeout(self._close_timeout):
                    await playwright.stop()
            _read_driver_error(playwright)

    async def _discard_browser(self) -> None:
        """Forget the current browser; kill it when it may be hung."""
        browser, pid, self._browser, self._pid = self._browser, self._pid, None, None
        if browser is None:
            return
        if pid is not None and (self._suspect or not browser.is_connected()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(PlaywrightError, TimeoutError):
            async with asyncio.timeout(self._close_timeout):
                await browser.close()

    async def close(self) -> None:
        """Shut down in order (the agent is stopping): a launch in progress, the closes
        handed over, the contexts still open, the browser, then Playwright's driver; each
        bounded."""
        if (launching := self._launching) is not None:
            launching.cancel()
            await asyncio.gather(launching, return_exceptions=True)
        await self.settled()
        async with self._lock:
            for context in list(self._contexts):  # runs close theirs; these were cut off
                await self._close_context(context)
            await self._discard_browser()
            await self._stop_driver()


def _read_driver_error(playwright: Playwright) -> None:
    """Read the error the driver's connection ended with ("Connection closed while
    reading from the driver": the driver died first, as Ctrl-C in a terminal kills it),
    which nothing in Playwright reads once started: asyncio would log it as "Future
    exception was never retrieved" when collected."""
    manager = getattr(playwright.stop, "__self__", None)  # Playwright's context manager
    transport = getattr(getattr(manager, "_client", None), "_transport", None)
    ended = getattr(transport, "on_error_future", None)
    if isinstance(ended, asyncio.Future) and ended.done() and not ended.cancelled():
        ended.exception()


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
