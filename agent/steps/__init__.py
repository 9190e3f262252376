"""Step kinds: each is a model (``*_model.py``) plus one async ``run`` function.

Registering a kind is this one line plus its tag in ``agent.model.Step``; a test checks
that the two agree. Models live apart from the run functions so that validating and
printing the schema never import httpx or Playwright.
"""

from __future__ import annotations

from agent.steps import browser, http
from agent.steps.base import StepFunction

__all__ = ["STEP_FUNCTIONS"]

STEP_FUNCTIONS: dict[str, StepFunction] = {"http": http.run, "browser": browser.run}
