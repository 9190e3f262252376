"""The chaos switch over HTTP: ``GET /chaos`` (JSON state), ``POST /chaos`` (JSON or the
panel's form), and ``GET /chaos/panel`` (an HTML page with a form per target)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from agent.demo.chaos import CHAOS, TARGETS, ChaosMode, parse_chaos_request
from agent.demo.pages import PAGES, Markup, join

__all__ = ["routes"]

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/chaos", state),
        web.post("/chaos", switch),
        web.get("/chaos/panel", panel),
    ]


async def state(request: web.Request) -> web.Response:
    return web.json_response(request.app[CHAOS].as_json())


async def switch(request: web.Request) -> web.Response:
    """Set one target (or ``all``); JSON callers get the new state, the panel's form a
    redirect back to the panel."""
    from_form = request.content_type in _FORM_TYPES
    try:
        data: Any = dict(await request.post()) if from_form else await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return web.json_response({"error": "the body must be a JSON object"}, status=400)
    if not isinstance(data, dict):
        return web.json_response({"error": "the body must be a JSON object"}, status=400)
    try:
        target, setting = parse_chaos_request(data)
    except ValueError as error:
        field, _, message = str(error).partition(": ")
        return web.json_response({"error": message, "field": field}, status=400)
    request.app[CHAOS].set(target, setting)
    if from_form:
        return web.Response(status=303, headers={"Location": "/chaos/panel"})
    return web.json_response(request.app[CHAOS].as_json())


async def panel(request: web.Request) -> web.Response:
    pages = request.app[PAGES]
    chaos = request.app[CHAOS]
    rows = []
    for target, serves in TARGETS.items():
        setting = chaos.get(target)
        now = setting.mode.value
        if setting.mode is ChaosMode.SLOW:
            now += f" ({setting.delay:g}s)"
        options = join(
            [
                Markup(
                    f"<option{' selected' if mode is setting.mode else ''}>{mode.value}</option>"
                )
                for mode in ChaosMode
            ]
        )
        rows.append(
            pages.fragment(
                "chaos_row",
                target=target,
                serves=serves,
                mode=setting.mode.value,
                now=now,
                options=options,
                delay=f"{setting.delay:g}s",
            )
        )
    return pages.page("chaos_panel", title="Chaos switch", session=None, rows=join(rows))
