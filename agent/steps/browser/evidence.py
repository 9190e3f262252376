"""Evidence of a browser step for the SRE: screenshot, Playwright trace, page HTML, console log.

Secrets never reach these files. The trace chunk is ended first, so that nothing done
for the evidence is recorded in it; every member of its zip (actions, DOM snapshots,
network log, resources, gzip streams inflated) passes through the run's masker, and a
run that holds a secret records no screencast (see ``BrowserSession.begin_step``). The
screenshot masks the fields a secret was typed into and every element whose text or
value shows a secret; the HTML and console log pass through the masker. Each piece is
best effort under a short deadline: a crashed page still yields its console log and
whatever else can be had.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page

from agent.language.templating import Masker
from agent.run.artifacts import ArtifactStore
from agent.run.context import StepContext
from agent.steps.browser.session import BrowserSession

__all__ = ["keep_evidence", "mask_zip"]

_PIECE_TIMEOUT = 5.0  # seconds for each of screenshot, HTML, trace


async def keep_evidence(
    session: BrowserSession, store: ArtifactStore, ctx: StepContext, step: str, trace: bool
) -> list[str]:
    """Write the step's evidence; returns the paths written (the trace chunk is ended)."""

    def path(what: str) -> Path:
        return store.path(ctx.journey_id, ctx.run_id, step, what)

    written: list[Path] = []
    if trace:
        with _best_effort():
            target = path("trace.zip")
            async with asyncio.timeout(_PIECE_TIMEOUT):
                await session.end_step(keep=target)
            await asyncio.to_thread(mask_zip, target, ctx.masker)
            written.append(target)
    page = session.page
    if page is not None and not page.is_closed() and not session.crashed:
        with _best_effort():
            async with asyncio.timeout(_PIECE_TIMEOUT):
                image = await _masked_screenshot(page, session.secret_fields, ctx.masker)
            written.append(await _write(path("screenshot.png"), image))
        with _best_effort():
            async with asyncio.timeout(_PIECE_TIMEOUT):
                html = ctx.masker(await page.content())
            written.append(await _write(path("html"), html.encode()))
    events = session.events
    log = [*events.console, *(f"[failed request] {line}" for line in events.failed_requests)]
    written.append(await _write(path("console.log"), ("\n".join(log) + "\n").encode()))
    await asyncio.to_thread(store.prune)
    return [str(p) for p in written]


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


async def _masked_screenshot(page: Page, typed: list[Locator], masker: Masker) -> bytes:
    """The page with the fields a secret was typed into, and what shows a secret, masked.

    The elements are found in the page with the masker's patterns (sent to the browser,
    never written: the trace chunk has ended) and marked for the screenshot only.
    """
    if not masker.holds_secrets:
        return await page.screenshot(timeout=_PIECE_TIMEOUT * 1e3)
    await page.evaluate(_MARK_SECRETS, [masker.patterns(), True])
    try:
        shown = page.locator("[data-journeyman-secret]")
        return await page.screenshot(mask=[*typed, shown], timeout=_PIECE_TIMEOUT * 1e3)
    finally:
        with contextlib.suppress(PlaywrightError):
            await page.evaluate(_MARK_SECRETS, [[], False])


@contextlib.contextmanager
def _best_effort() -> Iterator[None]:
    """Skip a piece the page cannot give (crashed, hung); cancellation still propagates."""
    with contextlib.suppress(PlaywrightError, TimeoutError, OSError):
        yield


async def _write(target: Path, data: bytes) -> Path:
    await asyncio.to_thread(target.write_bytes, data)
    return target


def mask_zip(target: Path, masker: Masker) -> None:
    """Rewrite the zip with every secret in its members replaced by ``***``."""
    partial = target.with_suffix(".masking")
    with zipfile.ZipFile(target) as source, zipfile.ZipFile(partial, "w") as out:
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
