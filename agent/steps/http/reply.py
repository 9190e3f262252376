"""The response an HTTP step checks and extracts from: status, headers, the (capped) body."""

from __future__ import annotations

import json
import re
from functools import cached_property
from html.parser import HTMLParser
from typing import Any

import httpx

from agent.language import jsonpath
from agent.run.context import StepFailed
from agent.run.results import FailureReason

__all__ = ["Reply", "describe_body", "snippet"]

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
                f"expected a JSON body for {path}, got {kind}: {describe_body(self.text)}",
            )
        return jsonpath.find(document, path)


_NOT_JSON = object()


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """``text`` on one line, truncated, quoted: for "got ..." in failure messages."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[:limit] + "..."
    return repr(flat) if flat else "an empty body"


_HTML = re.compile(r"^\s*(<!doctype html|<html)", re.IGNORECASE)


def describe_body(text: str, limit: int = SNIPPET_CHARS) -> str:
    """What a person would see in ``text``: for an HTML page its title and visible text
    (not its markup, whose first 200 characters are always the same), else a snippet."""
    if not _HTML.match(text):
        return snippet(text, limit)
    page = _VisibleText()
    page.feed(text)
    page.close()
    title = " ".join("".join(page.title).split())
    seen = snippet(" ".join(page.text), limit)
    return f"a page titled {title!r} showing {seen}" if title else f"a page showing {seen}"


class _VisibleText(HTMLParser):
    """Collects a page's <title> and the text a browser would render."""

    _HIDDEN = frozenset({"script", "style", "template", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.text: list[str] = []
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._HIDDEN:
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._HIDDEN and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._hidden:
            self.text.append(data)
