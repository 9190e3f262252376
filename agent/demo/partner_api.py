"""The partner API: JSON over HTTP with bearer tokens, as a logistics partner integrates.

``POST /api/partner/token`` trades a client id and secret for a bearer token; with it a
partner submits orders, reads their status and pulls the inventory feed. Errors are JSON
``{"error": ..., "field": ...}`` naming the field that is wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from agent.demo.bodies import BadBody, json_or_form
from agent.demo.chaos import WrongAwareHandler, chaotic
from agent.demo.state import SHOP, TOKEN_LIFETIME, Order

__all__ = ["routes"]

_MAX_LINES = 20  # lines in one partner order
_MAX_REFERENCE = 64  # characters of a partner's purchase-order reference


class _BadRequest(Exception):
    """The request cannot be served; ``response`` says why, in JSON."""

    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        super().__init__(error)
        body: dict[str, str] = {"error": error}
        if field is not None:
            body["field"] = field
        headers = {"WWW-Authenticate": 'Bearer realm="partner"'} if status == 401 else None
        self.response = web.json_response(body, status=status, headers=headers)


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/partner/token", chaotic("partner-token", _answering(token))),
        web.post("/api/partner/orders", chaotic("partner-orders", _answering(submit))),
        web.get(
            "/api/partner/orders/{order_id}",
            chaotic("partner-order-status", _answering(status)),
        ),
        web.get("/api/partner/inventory", chaotic("partner-inventory", _answering(inventory))),
    ]


async def token(request: web.Request, wrong: bool) -> web.Response:
    """Client credentials (JSON or form: client_id, client_secret) -> a bearer token."""
    body = await _body(request)
    issued = request.app[SHOP].issue_token(
        _text(body, "client_id", 200), _text(body, "client_secret", 200)
    )
    if issued is None:
        raise _BadRequest(401, "invalid client id or secret")
    value, _ = issued
    answer: dict[str, Any] = {"token_type": "Bearer", "expires_in": int(TOKEN_LIFETIME)}
    if not wrong:  # wrong: a 200 that carries no token at all
        answer["access_token"] = value
    return web.json_response(answer)


async def submit(request: web.Request, wrong: bool) -> web.Response:
    """``{"reference": "PO-1", "lines": [{"sku": "mug", "quantity": 2}]}`` -> 201 with the id."""
    client = _client(request)
    body = await _body(request)
    reference = _text(body, "reference", _MAX_REFERENCE)
    if not reference:
        raise _BadRequest(422, "reference is required", "reference")
    state = request.app[SHOP]
    items = _order_items(body, set(state.products), state.limits.quantity)
    if wrong:  # accepted, yet no order exists and no id comes back
        return web.json_response({"status": "accepted", "reference": reference}, status=201)
    placed = state.place_order(
        source="partner",
        owner=client,
        lines=state.lines(items),
        status="accepted",
        reference=reference,
    )
    return web.json_response(
        _order_json(placed),
        status=201,
        headers={"Location": f"/api/partner/orders/{placed.id}"},
    )


async def status(request: web.Request, wrong: bool) -> web.Response:
    client = _client(request)
    placed = request.app[SHOP].orders.get(request.match_info["order_id"])
    if placed is None or placed.owner != client:
        raise _BadRequest(404, "no such order")
    answer = _order_json(placed)
    if wrong:
        answer |= {"status": "unknown", "lines": []}
    return web.json_response(answer)


async def inventory(request: web.Request, wrong: bool) -> web.Response:
    """Every product with what is available now (an empty feed under ``wrong``)."""
    _client(request)
    products = [] if wrong else list(request.app[SHOP].products.values())
    items = [
        {"sku": p.sku, "name": p.name, "available": p.stock, "price_cents": p.price_cents}
        for p in products
    ]
    return web.json_response({"generated_at": _iso(request.app[SHOP].now()), "items": items})


def _answering(handler: WrongAwareHandler) -> WrongAwareHandler:
    """``handler`` with a :class:`_BadRequest` turned into its JSON response."""

    async def answered(request: web.Request, wrong: bool) -> web.StreamResponse:
        try:
            return await handler(request, wrong)
        except _BadRequest as refused:
            return refused.response

    return answered


def _client(request: web.Request) -> str:
    """The partner the bearer token belongs to; 401 without a valid one."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    client = request.app[SHOP].token_client(value.strip()) if scheme.lower() == "bearer" else None
    if client is None:
        raise _BadRequest(401, "a valid bearer token is required (POST /api/partner/token)")
    return client


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body, _ = await json_or_form(request)
    except BadBody as error:
        raise _BadRequest(400, str(error)) from None
    return body


def _text(body: dict[str, Any], field: str, max_length: int) -> str:
    value = body.get(field, "")
    if not isinstance(value, str) or len(value) > max_length:
        raise _BadRequest(422, f"must be a string of at most {max_length} characters", field)
    return value


def _order_items(body: dict[str, Any], skus: set[str], max_quantity: int) -> list[tuple[str, int]]:
    lines = body.get("lines")
    if not isinstance(lines, list) or not 1 <= len(lines) <= _MAX_LINES:
        raise _BadRequest(422, f"must be a list of 1 to {_MAX_LINES} lines", "lines")
    items = []
    for index, line in enumerate(lines):
        where = f"lines[{index}]"
        if not isinstance(line, dict):
            raise _BadRequest(422, 'must be an object {"sku": ..., "quantity": ...}', where)
        sku, quantity = line.get("sku"), line.get("quantity")
        if sku not in skus:
            raise _BadRequest(422, f"unknown sku {sku!r}", f"{where}.sku")
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise _BadRequest(422, "must be a whole number", f"{where}.quantity")
        if not 1 <= quantity <= max_quantity:
            raise _BadRequest(422, f"must be 1 to {max_quantity}", f"{where}.quantity")
        items.append((str(sku), quantity))
    return items


def _order_json(placed: Order) -> dict[str, Any]:
    return {
        "id": placed.id,
        "status": placed.status,
        "reference": placed.reference,
        "created": _iso(placed.created),
        "lines": [{"sku": line.sku, "quantity": line.quantity} for line in placed.lines],
        "total_cents": placed.total_cents,
        "url": f"/orders/{placed.id}",
    }


def _iso(unix_time: float) -> str:
    return datetime.fromtimestamp(unix_time, UTC).isoformat(timespec="seconds")
