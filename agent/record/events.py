"""What the page script reports, checked: one :class:`PageEvent` per thing the person did.

The payloads come from a page (any site being recorded), so nothing in them is trusted:
a payload of an unknown type, or with fields of the wrong type, is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ACTION_TYPES", "CHECK_TYPES", "ApiCall", "PageEvent", "from_payload"]

ACTION_TYPES = frozenset({"click", "fill", "select", "check", "uncheck", "press", "upload"})
CHECK_TYPES = frozenset({"expect_text", "expect_visible", "extract"})
_TYPES = ACTION_TYPES | CHECK_TYPES | {"page", "leave"}
_TEXT = 10_000  # characters kept of any one field: a page cannot make the file huge


@dataclass(frozen=True)
class PageEvent:
    """One event: ``type`` (an action, a check, ``leave``: the page is opening another,
    or ``page``: a document was shown), the
    element's ``selector``, its ``value`` (typed text, key, picked text; for ``page``
    the first heading), ``values`` (options chosen, files), and for typed fields the
    input type and name hints that tell a secret."""

    type: str
    selector: str = ""
    value: str = ""
    values: tuple[str, ...] = ()
    url: str = ""
    title: str = ""
    field_type: str = ""
    hints: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ApiCall:
    """A JSON request the page made by fetch/XHR, seen after ``after`` events."""

    method: str
    url: str
    after: int


def from_payload(payload: Any) -> PageEvent | None:
    """The event in ``payload`` (a JSON object from the page), or None if malformed."""
    if not isinstance(payload, dict) or payload.get("type") not in _TYPES:
        return None
    texts = {}
    for name in ("selector", "value", "url", "title", "field_type"):
        value = payload.get(name, "")
        if not isinstance(value, str):
            return None
        texts[name] = value[:_TEXT]
    lists = {}
    for name in ("values", "hints"):
        items = payload.get(name, [])
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            return None
        lists[name] = tuple(i[:_TEXT] for i in items[:100])
    if payload["type"] in (ACTION_TYPES | {"expect_visible", "extract"}) and not texts["selector"]:
        return None
    return PageEvent(
        type=payload["type"],
        selector=texts["selector"],
        value=texts["value"],
        values=lists["values"],
        url=texts["url"],
        title=texts["title"],
        field_type=texts["field_type"],
        hints=lists["hints"],
    )
