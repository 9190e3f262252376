"""One recording from start to file: the browser until stopped, then the journal, the
file, and a check that the file loads as a journey.

SIGINT (Ctrl-C) and SIGTERM end the recording; the file is written from what was
collected.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

from agent.language.loader import load
from agent.record.browser import Recording, RecordOptions, record
from agent.record.journal import build
from agent.record.writer import About, render
from agent.run.browser_pool import BrowserUnavailable

__all__ = ["record_journey"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def record_journey(
    url: str, output: Path, about: About, options: RecordOptions, started: datetime
) -> int:
    """Record on ``url`` until stopped, write the journey to ``output``; the exit status."""
    print(
        f"journeyman record: recording; close the page or press Ctrl-C to write {output}",
        file=sys.stderr,
    )
    try:
        recording = asyncio.run(_until_stopped(url, options))
    except BrowserUnavailable as error:
        print(f"journeyman record: {error}", file=sys.stderr)
        return EXIT_USAGE
    journal = build(recording.events, recording.calls, about.journey)
    if not journal.steps:
        print(f"journeyman record: no page was recorded; {output} not written", file=sys.stderr)
        return EXIT_FAILED
    output.write_text(render(journal, about, url, started), encoding="utf-8")
    print(f"journeyman record: wrote {output} ({len(journal.steps)} steps)", file=sys.stderr)
    for secret in journal.secrets:
        print(
            f"journeyman record: set {secret.env} to what you typed into {secret.selector} "
            f"(the journey reads it as ${{secret.{secret.name}}})",
            file=sys.stderr,
        )
    return _check(output)


async def _until_stopped(url: str, options: RecordOptions) -> Recording:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return await record(url, options, stop, sys.stdout)


def _check(output: Path) -> int:
    """The file must load as a journey: say so if it does not (a bug of the recorder)."""
    loaded = load([output], environ=os.environ)
    problems = [p for f in loaded.files.values() for p in f.errors]
    for problem in problems:
        print(f"journeyman record: {problem}", file=sys.stderr)
    return EXIT_FAILED if problems else EXIT_OK
