"""``run --once --debug``: each step of each journey as it runs, for a person reading.

A :class:`agent.run.context.StepObserver` the runner tells of each step: its name, kind,
outcome and duration; for HTTP steps each request (method, URL) and response (status,
content type, size); for a failed step its message, and the response body (HTTP) or the
page's text (browser, read from the page HTML it kept as evidence) up to ``body_limit``
bytes. Every text comes from the run's results, already masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from agent.run.results import RunResult, StepResult
from agent.steps.http.reply import describe_body

__all__ = ["DebugView"]

_PAGE_BYTES = 256 * 1024  # what is read of a kept page: its title and first text are on top


class DebugView:
    def __init__(self, out: TextIO, body_limit: int) -> None:
        self._out = out
        self._body_limit = body_limit
        self._journey = ""
        self._steps: set[str] = set()  # started in this attempt: one again is a retry
        self._attempt = 1

    def _print(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()

    def step_started(self, journey: str, step: str, kind: str) -> None:
        if journey != self._journey:
            self._journey, self._steps, self._attempt = journey, set(), 1
            self._print(f"journey {journey}")
        if step in self._steps:
            self._steps.clear()
            self._attempt += 1
            self._print(f"  attempt {self._attempt} (the journey's schedule retries it)")
        self._steps.add(step)
        self._print(f"  step {step!r} ({kind}) ...")

    def step_finished(self, journey: str, result: StepResult) -> None:
        if result.kind == "setup":  # the run could not start: no step ran
            self._print(f"journey {journey}: could not start ({result.reason})")
            self._print(f"    {result.message}")
            return
        for seen in result.exchanges:
            kind = seen.content_type or "no content type"
            self._print(f"    {seen.method} {seen.url} -> {seen.status}, {kind}, {seen.size} bytes")
        outcome = "ok" if result.ok else f"FAILED ({result.reason})"
        self._print(f"  step {result.name!r}: {outcome} in {result.duration:.3f}s")
        if not result.ok:
            self._print(f"    {result.message}")
            self._failure_text(result)

    def _failure_text(self, result: StepResult) -> None:
        """What the failed step was looking at: the last response's body, or the page."""
        if result.exchanges and (seen := result.exchanges[-1]).body:
            shown = len(seen.body.encode())
            self._print(f"    response body (first {shown} of {seen.size} bytes):")
            for line in seen.body.splitlines():
                self._print(f"    | {line}")
            return
        page = next((Path(p) for p in result.artifacts if p.endswith(".html")), None)
        if page is not None and page.is_file():
            with page.open("rb") as html:
                text = html.read(_PAGE_BYTES).decode("utf-8", errors="replace")
            self._print(f"    page text: {describe_body(text, self._body_limit)}")

    def run_finished(self, result: RunResult, not_run: Sequence[str]) -> None:
        """The journey's end: its outcome, the steps ``--step`` left out, its evidence."""
        attempts = f" ({result.attempts} attempts)" if result.attempts > 1 else ""
        self._print(
            f"journey {result.journey}: {result.outcome.value} in {result.duration:.3f}s{attempts}"
        )
        if not_run:
            self._print(f"  stopped there as asked (--step); not run: {', '.join(not_run)}")
        for path in result.artifacts:
            self._print(f"  evidence: {path}")
        self._print("")
