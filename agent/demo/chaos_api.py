"""The chaos switch over HTTP: ``GET /chaos`` (JSON state), ``POST /chaos`` (JSON or the
panel's form), and ``GET /chaos/panel`` (an HTML page with a form per target)."""

from __future__ import annotations

from aiohttp import web

from agent.demo.bodies import BadBody, json_or_form
from agent.demo.chaos import CHAOS, TARGETS, ChaosMode, parse_chaos_request
from agent.demo.pages import PAGES, Markup, join

__all__ = ["routes"]


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
    try:
        data, from_form = await json_or_form(request)
    except BadBody as error:
        return web.json_response({"error": str(error)}, status=400)
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
