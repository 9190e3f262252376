"""How the storefront answers: whole pages, one-message pages, redirects, and the session
cookie that rides on each. Handlers in :mod:`agent.demo.storefront` decide; this renders."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import quote

from aiohttp import web

from agent.demo.pages import PAGES, Markup, euros, join
from agent.demo.state import SHOP, OrderLine, Product, Session

__all__ = [
    "COOKIE",
    "checkout_page",
    "csrf_refused",
    "lines_table",
    "login_page",
    "message",
    "message_fragment",
    "not_found",
    "page",
    "product_cards",
    "redirect",
    "refused",
    "session_of",
    "wants_json",
    "with_cookie",
]

COOKIE = "shop_session"


def session_of(request: web.Request) -> Session | None:
    session_id = request.cookies.get(COOKIE)
    return request.app[SHOP].sessions.get(session_id) if session_id else None


def with_cookie(request: web.Request, session: Session | None, response: web.Response) -> None:
    """Send the session cookie when the session is new or was renewed at login."""
    if session is not None and request.cookies.get(COOKIE) != session.id:
        response.set_cookie(COOKIE, session.id, path="/", httponly=True, samesite="Lax")


def page(
    request: web.Request,
    session: Session | None,
    template: str,
    title: str,
    status: int = 200,
    search: str = "",
    **values: object,
) -> web.Response:
    response = request.app[PAGES].page(
        template, title=title, session=session, search=search, status=status, **values
    )
    with_cookie(request, session, response)
    return response


def message_fragment(request: web.Request, element_id: str, heading: str, text: str) -> Markup:
    return request.app[PAGES].fragment("message", id=element_id, heading=heading, text=text)


def message(
    request: web.Request,
    session: Session | None,
    element_id: str,
    heading: str,
    text: str,
    status: int = 200,
) -> web.Response:
    """A page whose whole content is one message (section ``#element_id``)."""
    return page(
        request, session, "message", heading, status, id=element_id, heading=heading, text=text
    )


def not_found(request: web.Request, session: Session | None, text: str) -> web.Response:
    return message(request, session, "not-found", "Not found", text, 404)


def refused(request: web.Request, session: Session, status: int, text: str) -> web.Response:
    if wants_json(request):
        return web.json_response({"ok": False, "error": text}, status=status)
    return message(request, session, "refused", "Sorry", text, status)


def csrf_refused(request: web.Request, session: Session | None) -> web.Response:
    text = "Your session expired or the form is stale: reload the page and try again."
    return message(request, session, "csrf-error", "Form expired", text, 403)


def redirect(request: web.Request, session: Session | None, location: str) -> web.Response:
    response = web.Response(status=303, headers={"Location": location})
    with_cookie(request, session, response)
    return response


def login_page(
    request: web.Request,
    session: Session,
    target: str,
    *,
    with_csrf: bool = True,
    error: Markup | None = None,
    status: int = 200,
) -> web.Response:
    csrf_field = (
        request.app[PAGES].fragment("csrf_field", csrf=session.csrf) if with_csrf else Markup()
    )
    return page(
        request,
        session,
        "login",
        "Log in",
        status,
        csrf_field=csrf_field,
        next=target,
        error=error or Markup(),
    )


def checkout_page(
    request: web.Request,
    session: Session,
    lines: tuple[OrderLine, ...],
    error: str = "",
    status: int = 200,
) -> web.Response:
    error_html = (
        request.app[PAGES].fragment("error", id="card-error", text=error) if error else Markup()
    )
    return page(
        request,
        session,
        "checkout",
        "Checkout",
        status,
        lines=lines_table(request, "checkout-lines", lines),
        csrf=session.csrf,
        error=error_html,
        total=euros(sum(line.quantity * line.unit_cents for line in lines)),
    )


def product_cards(request: web.Request, items: Iterable[Product]) -> Markup:
    pages = request.app[PAGES]
    return join(
        [
            pages.fragment(
                "product_card", sku=quote(p.sku), name=p.name, price=euros(p.price_cents)
            )
            for p in items
        ]
    )


def lines_table(request: web.Request, element_id: str, order_lines: Sequence[OrderLine]) -> Markup:
    pages = request.app[PAGES]
    rows = [
        pages.fragment(
            "line",
            sku=line.sku,
            name=line.name,
            quantity=line.quantity,
            price=euros(line.quantity * line.unit_cents),
        )
        for line in order_lines
    ]
    total = sum(line.quantity * line.unit_cents for line in order_lines)
    return pages.fragment("lines", id=element_id, rows=join(rows), total=euros(total))


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")
