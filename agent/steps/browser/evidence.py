"""Evidence of a browser step for the SRE: screenshot, Playwright trace, page HTML, console log.

Secrets never reach these files: fields filled with a secret are masked in the
screenshot, and the HTML, console log and every text file inside the trace zip (actions,
DOM snapshots, network bodies) pass through the run's masker before they are kept.
Each piece is best effort under a short deadline: a crashed page still yields its
console log and whatever else can be had.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

from playwright.async_api import Error as PlaywrightError

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
    page = session.page
    if page is not None and not page.is_closed() and not session.crashed:
        with _best_effort():
            image = await page.screenshot(mask=session.secret_fields, timeout=_PIECE_TIMEOUT * 1e3)
            written.append(await _write(path("screenshot.png"), image))
        with _best_effort():
            async with asyncio.timeout(_PIECE_TIMEOUT):
                html = ctx.masker(await page.content())
            written.append(await _write(path("html"), html.encode()))
    events = session.events
    log = [*events.console, *(f"[failed request] {line}" for line in events.failed_requests)]
    written.append(await _write(path("console.log"), ("\n".join(log) + "\n").encode()))
    if trace:
        with _best_effort():
            target = path("trace.zip")
            async with asyncio.timeout(_PIECE_TIMEOUT):
                await session.end_step(keep=target)
            await asyncio.to_thread(mask_zip, target, ctx.masker)
            written.append(target)
    await asyncio.to_thread(store.prune)
    return [str(p) for p in written]


@contextlib.contextmanager
def _best_effort() -> Iterator[None]:
    """Skip a piece the page cannot give (crashed, hung); cancellation still propagates."""
    with contextlib.suppress(PlaywrightError, TimeoutError, OSError):
        yield


async def _write(target: Path, data: bytes) -> Path:
    await asyncio.to_thread(target.write_bytes, data)
    return target


def mask_zip(target: Path, masker: Masker) -> None:
    """Rewrite the zip with every secret in its text members replaced by ``***``."""
    partial = target.with_suffix(".masking")
    with zipfile.ZipFile(target) as source, zipfile.ZipFile(partial, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            # Screencast frames (images) are kept as they are; see docs/browser-steps.md.
            with contextlib.suppress(UnicodeDecodeError):
                data = masker(data.decode()).encode()
            out.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED)
    os.replace(partial, target)
