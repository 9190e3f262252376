"""The browser step as written in YAML: a list of actions a customer performs."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agent.steps.base import StepBase

__all__ = ["BrowserStep"]


class BrowserStep(StepBase):
    """Actions driven in a real Chromium through Playwright."""

    kind_name = "browser"

    browser: list[dict[str, Any]] = Field(min_length=1)
