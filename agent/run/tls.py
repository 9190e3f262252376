"""TLS contexts, built once per agent and shared by every run.

Building an SSL context (loading the CA store) costs ~25 ms of CPU; a run must never
pay that. Contexts are cached by their ``verify`` setting (on, off, or a CA bundle path:
a PEM file, or a directory of hashed certificates) and by the kind of step that uses them:
HTTP steps' contexts offer ALPN ``http/1.1`` (as httpx's clients do), which a raw TCP
step must not offer, so HTTP and TCP steps never share one.
"""

from __future__ import annotations

import os
import ssl

__all__ = ["TlsConfigError", "TlsContexts", "certificate_expiry"]


class TlsConfigError(ValueError):
    """A ``verify`` CA bundle path that cannot be loaded."""


class TlsContexts:
    """The agent's SSL contexts by verify setting; made by the entry point, passed down."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, bool | str], ssl.SSLContext] = {}

    def get(self, verify: bool | str, user: str = "http") -> ssl.SSLContext:
        """The context for ``verify``, private to one kind of ``user`` (http, tcp)."""
        context = self._cache.get((user, verify))
        if context is None:
            context = _build(verify)
            if user == "http":
                context.set_alpn_protocols(["http/1.1"])
            self._cache[user, verify] = context
        return context


def _build(verify: bool | str) -> ssl.SSLContext:
    import httpx  # here: an agent whose journeys are browser-only never loads it (~3 MB)

    if verify is True:
        return httpx.create_ssl_context()
    if verify is False:
        return httpx.create_ssl_context(verify=False)
    try:
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    except (OSError, ssl.SSLError) as error:
        detail = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise TlsConfigError(f"verify: cannot load CA bundle {verify!r}: {detail}") from None


def certificate_expiry(ssl_object: ssl.SSLObject) -> float | None:
    """The notAfter of the peer's certificate, as unix time (None: no certificate).

    From the parsed certificate when it was verified; with verification off only the DER
    form is there, read with cryptography, imported here: its ~14 MB stay out of agents
    whose journeys verify their certificates (docs/performance.md, start-up).
    """
    parsed = ssl_object.getpeercert()
    if parsed:
        return ssl.cert_time_to_seconds(str(parsed["notAfter"]))
    der = ssl_object.getpeercert(binary_form=True)
    if der is None:
        return None
    from cryptography import x509

    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
