"""The HTTP step kind: ``model`` (the language side) and ``run`` (httpx)."""
