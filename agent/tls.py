"""TLS contexts, built once per agent and shared by every run.

Building an SSL context (loading the CA store) costs ~25 ms of CPU; a run must never
pay that. Contexts are cached by their ``verify`` setting: on, off, or a CA bundle path.
"""

from __future__ import annotations

import ssl

import httpx

__all__ = ["TlsContexts"]


class TlsContexts:
    def __init__(self) -> None:
        self._cache: dict[bool | str, ssl.SSLContext] = {}

    def get(self, verify: bool | str) -> ssl.SSLContext:
        context = self._cache.get(verify)
        if context is None:
            if verify is True:
                context = httpx.create_ssl_context()
            elif verify is False:
                context = httpx.create_ssl_context(verify=False)
            else:
                context = ssl.create_default_context(cafile=verify)
            self._cache[verify] = context
        return context
