"""One warm Chromium per agent, a fresh context per run (being written: see issue 4)."""

from __future__ import annotations

__all__ = ["BrowserPool"]


class BrowserPool:
    """Placeholder until the browser issue lands."""
