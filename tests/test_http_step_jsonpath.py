"""The JSON path subset of expectations and extractions, and its load-time checks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from http_servers import http_step
from pydantic import ValidationError

from agent.language import jsonpath

DOCUMENT = {"order": {"items": [{"sku": "A1"}, {"sku": "B2"}], "unit price": 3, "ok": False}}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", DOCUMENT),
        ("$.order.items[0].sku", "A1"),
        ("$.order.items[-1].sku", "B2"),
        ('$.order["unit price"]', 3),
        ("$.order['unit price']", 3),
        ("$.order.ok", False),
    ],
)
def test_paths_find_their_value(path: str, value: Any) -> None:
    """Member names, quoted names and indexes (negative from the end) find the value."""
    assert jsonpath.find(DOCUMENT, path) == (True, value)


@pytest.mark.parametrize(
    "path", ["$.order.missing", "$.order.items[2]", "$.order.items.sku", "$.order.ok.x"]
)
def test_absent_paths_are_not_found(path: str) -> None:
    """A missing member, an index out of range or a step into a scalar finds nothing."""
    assert jsonpath.find(DOCUMENT, path) == (False, None)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("order.id", "a JSON path starts with $"),
        ("$.items[*]", "invalid JSON path '$.items[*]' at character 8"),
        ("$..id", "invalid JSON path '$..id' at character 2"),
    ],
)
def test_malformed_paths_say_where(path: str, message: str) -> None:
    """Wildcards, recursive descent and a missing $ are rejected, naming the position."""
    with pytest.raises(ValueError, match=re.escape(message)):
        jsonpath.parse(path)


def test_a_step_with_a_bad_path_fails_validation_at_its_field() -> None:
    """A malformed path in expect or extract is a load-time error located at its field."""
    with pytest.raises(ValidationError) as caught:
        http_step(http={"get": "http://127.0.0.1/"}, expect={"json_exists": ["$.a[*]"]})
    assert caught.value.errors()[0]["loc"] == ("expect", "json_exists")
    with pytest.raises(ValidationError, match="a JSON path starts with"):
        http_step(http={"get": "http://127.0.0.1/"}, extract={"id": {"json": "id"}})
