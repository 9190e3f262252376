"""The response an HTTP step checks and extracts from: status, headers, the (capped) body."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

import httpx

from agent import jsonpath
from agent.results import FailureReason
from agent.steps.base import StepFailed

__all__ = ["Reply", "snippet"]

SNIPPET_CHARS = 200


class Reply:
    """The final response of a step (after redirects), its body read up to the cap."""

    def __init__(self, response: httpx.Response, body: bytes, duration: float | None) -> None:
        self.status_code = response.status_code
        self.reason_phrase = response.reason_phrase
        self.headers = response.headers
        self.body = body
        self.duration = duration  # from the trace events, redirect hops summed
        self._encoding = response.charset_encoding or "utf-8"

    @cached_property
    def text(self) -> str:
        return self.body.decode(self._encoding, errors="replace")

    @cached_property
    def _document(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return _NOT_JSON

    def json_value(self, path: str) -> tuple[bool, Any]:
        """``(found, value)`` at a JSON path; a body that is not JSON is a protocol failure."""
        document = self._document
        if document is _NOT_JSON:
            kind = self.headers.get("content-type", "no content type")
            raise StepFailed(
                FailureReason.PROTOCOL,
                f"expected a JSON body for {path}, got {kind}: {snippet(self.text)}",
            )
        return jsonpath.find(document, path)


_NOT_JSON = object()


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """``text`` on one line, truncated, quoted: for "got ..." in failure messages."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[:limit] + "..."
    return repr(flat) if flat else "an empty body"
