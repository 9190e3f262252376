"""The step kinds, registered once each.

A kind is a package ``agent/steps/<kind>/`` with ``model.py`` (the language side, which
imports no runtime library) declaring ``KIND``, and the run side that ``KIND`` names.
Adding a kind is its package plus its line below; ``tests/test_step_registry.py`` checks
that every registered kind has every part.
"""

from __future__ import annotations

from agent.steps.browser.model import KIND as BROWSER
from agent.steps.http.model import KIND as HTTP
from agent.steps.kind import StepKind
from agent.steps.tcp.model import KIND as TCP

__all__ = ["KINDS", "KINDS_BY_NAME"]

KINDS: tuple[StepKind, ...] = (HTTP, BROWSER, TCP)
KINDS_BY_NAME = {kind.name: kind for kind in KINDS}
