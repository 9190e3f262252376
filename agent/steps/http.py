"""Runs an HTTP step with httpx (being written: see issue 2)."""

from __future__ import annotations

from agent.results import FailureReason
from agent.steps.base import StepContext, StepFailed
from agent.steps.http_model import HttpStep

__all__ = ["run"]


async def run(step: HttpStep, ctx: StepContext) -> None:
    raise StepFailed(FailureReason.INTERNAL, "the http step kind is not built yet")
