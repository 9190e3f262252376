"""Runs a browser step with Playwright (being written: see issue 4)."""

from __future__ import annotations

from agent.results import FailureReason
from agent.steps.base import StepContext, StepFailed
from agent.steps.browser_model import BrowserStep

__all__ = ["run"]


async def run(step: BrowserStep, ctx: StepContext) -> None:
    raise StepFailed(FailureReason.BROWSER_UNAVAILABLE, "the browser step kind is not built yet")
