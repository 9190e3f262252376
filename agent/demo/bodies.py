"""Request bodies the shop accepts: a JSON object or an HTML form, read the same way."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

__all__ = ["BadBody", "json_or_form"]

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class BadBody(ValueError):
    """The body is neither a JSON object nor a form."""


async def json_or_form(request: web.Request) -> tuple[dict[str, Any], bool]:
    """The body as a dict, and whether it came from a form.

    A body that starts with ``{`` is JSON whatever its Content-Type says, because
    ``curl -d '{...}'`` labels JSON as a form.
    """
    try:
        text = await request.text()
    except UnicodeDecodeError:
        raise BadBody("the body must be UTF-8") from None
    if text.lstrip().startswith("{") or request.content_type not in _FORM_TYPES:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise BadBody("the body must be a JSON object") from None
        if not isinstance(data, dict):
            raise BadBody("the body must be a JSON object")
        return data, False
    return {key: str(value) for key, value in (await request.post()).items()}, True
