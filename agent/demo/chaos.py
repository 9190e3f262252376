"""The chaos switch: make one part of the shop slow, failing, or quietly wrong.

Each target (a storefront page or a partner API endpoint) has one setting. ``slow`` adds
a delay before the normal answer, ``error`` answers 500, ``wrong`` answers 200 with the
wrong content (a confirmation without "Thank you", an empty inventory feed): the case a
server-uptime check never sees. Handlers opt in with :func:`chaotic`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiohttp import web

from agent.language.fields import parse_duration

__all__ = [
    "ALL",
    "CHAOS",
    "MAX_DELAY",
    "TARGETS",
    "Chaos",
    "ChaosMode",
    "ChaosSetting",
    "Handler",
    "WrongAwareHandler",
    "chaotic",
    "parse_chaos_request",
    "parse_chaos_spec",
]

MAX_DELAY = 120.0  # seconds; a bound so a typo cannot hang a request for a day
ALL = "all"  # the target that sets every target at once

TARGETS: Mapping[str, str] = {
    "home": "GET /",
    "products": "GET /products",
    "product": "GET /products/{sku}",
    "search": "GET /search",
    "login": "GET and POST /login",
    "cart": "GET /cart and POST /cart/add",
    "checkout": "GET /checkout and POST /checkout (pay)",
    "confirmation": "GET /checkout/confirmation/{id}",
    "order": "GET /orders/{id}",
    "partner-token": "POST /api/partner/token",
    "partner-orders": "POST /api/partner/orders",
    "partner-order-status": "GET /api/partner/orders/{id}",
    "partner-inventory": "GET /api/partner/inventory",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WrongAwareHandler = Callable[[web.Request, bool], Awaitable[web.StreamResponse]]
"""A handler told whether to answer wrongly (200 with the wrong content)."""


class ChaosMode(StrEnum):
    OFF = "off"
    SLOW = "slow"
    ERROR = "error"
    WRONG = "wrong"


@dataclass(frozen=True)
class ChaosSetting:
    mode: ChaosMode = ChaosMode.OFF
    delay: float = 2.0  # seconds, used by slow

    def as_json(self) -> dict[str, Any]:
        return {"mode": str(self.mode), "delay": self.delay}


class Chaos:
    """What is broken right now in one shop: a setting per target."""

    def __init__(self, initial: Mapping[str, ChaosSetting] | None = None) -> None:
        self._settings: dict[str, ChaosSetting] = dict.fromkeys(TARGETS, ChaosSetting())
        for target, setting in (initial or {}).items():
            self.set(target, setting)

    def get(self, target: str) -> ChaosSetting:
        return self._settings[target]

    def set(self, target: str, setting: ChaosSetting) -> None:
        """Set one target, or every target when ``target`` is ``all``."""
        if target == ALL:
            self._settings = dict.fromkeys(TARGETS, setting)
        elif target in TARGETS:
            self._settings[target] = setting
        else:
            raise ValueError(_unknown_target(target))

    def as_json(self) -> dict[str, dict[str, Any]]:
        return {target: setting.as_json() for target, setting in self._settings.items()}


def parse_chaos_spec(spec: str) -> tuple[str, ChaosSetting]:
    """``checkout=slow``, ``checkout=slow:3s``, ``partner-inventory=wrong``, ``all=off``."""
    target, sep, rest = spec.partition("=")
    if not sep:
        raise ValueError(f"chaos {spec!r}: write TARGET=MODE or TARGET=slow:DELAY")
    mode, _, delay = rest.partition(":")
    request: dict[str, Any] = {"target": target.strip(), "mode": mode.strip()}
    if delay:
        request["delay"] = delay.strip()
    try:
        return parse_chaos_request(request)
    except ValueError as error:
        raise ValueError(f"chaos {spec!r}: {error}") from None


def parse_chaos_request(data: Mapping[str, Any]) -> tuple[str, ChaosSetting]:
    """A target and its setting from ``{"target": ..., "mode": ..., "delay": ...}``;
    a ValueError names the field that is wrong."""
    target = data.get("target")
    if target != ALL and target not in TARGETS:
        raise ValueError(f"target: {_unknown_target(target)}")
    try:
        mode = ChaosMode(str(data.get("mode")))
    except ValueError:
        modes = ", ".join(m.value for m in ChaosMode)
        raise ValueError(f"mode: must be one of {modes}, got {data.get('mode')!r}") from None
    delay = ChaosSetting.delay
    if data.get("delay") not in (None, ""):
        try:
            delay = parse_duration(data["delay"])
        except ValueError as error:
            raise ValueError(f"delay: {error}") from None
        if not 0 <= delay <= MAX_DELAY:
            raise ValueError(f"delay: must be between 0s and {MAX_DELAY:g}s, got {delay:g}s")
    return str(target), ChaosSetting(mode, delay)


def chaotic(target: str, handler: WrongAwareHandler) -> Handler:
    """``handler`` under the chaos setting of ``target``, read at each request."""
    if target not in TARGETS:
        raise ValueError(_unknown_target(target))

    async def under_chaos(request: web.Request) -> web.StreamResponse:
        setting = request.app[CHAOS].get(target)
        if setting.mode is ChaosMode.SLOW:
            # Take the body first, as a slow backend would: a client that gives up while
            # we wait must not leave a half-read request behind to fail noisily.
            await request.read()
            await asyncio.sleep(setting.delay)
        elif setting.mode is ChaosMode.ERROR:
            return _internal_error(request)
        return await handler(request, setting.mode is ChaosMode.WRONG)

    return under_chaos


def _internal_error(request: web.Request) -> web.Response:
    if request.path.startswith("/api/"):
        return web.json_response({"error": "internal server error"}, status=500)
    return web.Response(
        status=500,
        content_type="text/html",
        text="<!doctype html><title>500 Internal Server Error</title>"
        "<h1>500 Internal Server Error</h1><p>Something went wrong on our side.</p>",
    )


def _unknown_target(target: object) -> str:
    return f"unknown target {target!r}; targets are {ALL}, {', '.join(TARGETS)}"


CHAOS = web.AppKey("chaos", Chaos)
