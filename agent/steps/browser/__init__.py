"""The browser step kind: ``model`` (the language side) and ``run`` (Playwright)."""
