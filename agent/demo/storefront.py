"""The storefront: server-rendered pages a customer walks through, from home to "Thank you".

Every handler takes ``wrong``: under the chaos switch's ``wrong`` mode it answers 200 with
content a customer could not use (no "Welcome", no order number, an empty cart).
Forms carry the session's CSRF token; the session lives in the ``shop_session`` cookie.
"""

from __future__ import annotations

import hmac
import re

from aiohttp import web

from agent.demo import views
from agent.demo.chaos import chaotic
from agent.demo.pages import PAGES, euros
from agent.demo.state import SHOP, CartFull, Session

__all__ = ["routes"]

_FEATURED = 3  # products on the home page
_MAX_QUERY = 100  # characters of a search query that count


def routes() -> list[web.RouteDef]:
    return [
        web.get("/", chaotic("home", home)),
        web.get("/products", chaotic("products", products)),
        web.get("/products/{sku}", chaotic("product", product)),
        web.get("/search", chaotic("search", search)),
        web.get("/login", chaotic("login", login_form)),
        web.post("/login", chaotic("login", login)),
        web.post("/logout", logout),
        web.get("/cart", chaotic("cart", cart)),
        web.post("/cart/add", chaotic("cart", cart_add)),
        web.get("/checkout", chaotic("checkout", checkout)),
        web.post("/checkout", chaotic("checkout", pay)),
        web.get("/checkout/confirmation/{order_id}", chaotic("confirmation", confirmation)),
        web.get("/orders/{order_id}", chaotic("order", order)),
    ]


# --- browsing ---------------------------------------------------------------------------


async def home(request: web.Request, wrong: bool) -> web.Response:
    session = views.session_of(request)
    if wrong:
        return views.message(request, session, "maintenance", "Be right back", "We are restocking.")
    featured = list(request.app[SHOP].products.values())[:_FEATURED]
    return views.page(
        request, session, "home", "Welcome", cards=views.product_cards(request, featured)
    )


async def products(request: web.Request, wrong: bool) -> web.Response:
    shown = [] if wrong else list(request.app[SHOP].products.values())
    return views.page(
        request,
        views.session_of(request),
        "products",
        "Products",
        cards=views.product_cards(request, shown),
    )


async def product(request: web.Request, wrong: bool) -> web.Response:
    item = request.app[SHOP].products.get(request.match_info["sku"])
    session = views.session_of(request) or request.app[SHOP].new_session()
    if item is None:
        return views.not_found(request, session, "No such product.")
    if wrong:
        buy = views.message_fragment(request, "unavailable", "Unavailable", "Please try later.")
    elif item.stock == 0:
        buy = views.message_fragment(request, "sold-out", "Sold out", "Back in stock soon.")
    else:
        buy = request.app[PAGES].fragment(
            "buy_form",
            csrf=session.csrf,
            sku=item.sku,
            max_quantity=request.app[SHOP].limits.quantity,
        )
    return views.page(
        request,
        session,
        "product",
        item.name,
        sku=item.sku,
        name=item.name,
        description=item.description,
        price=euros(item.price_cents),
        stock=f"{item.stock} in stock" if item.stock else "Out of stock",
        buy=buy,
    )


async def search(request: web.Request, wrong: bool) -> web.Response:
    query = request.query.get("q", "").strip()[:_MAX_QUERY]
    words = query.lower().split()
    found = [
        item
        for item in request.app[SHOP].products.values()
        if words and all(word in f"{item.name} {item.description}".lower() for word in words)
    ]
    if wrong:
        found = []
    return views.page(
        request,
        views.session_of(request),
        "search",
        "Search",
        query=query,
        count=len(found),
        cards=views.product_cards(request, found),
        search=query,
    )


# --- logging in -------------------------------------------------------------------------


async def login_form(request: web.Request, wrong: bool) -> web.Response:
    session = views.session_of(request) or request.app[SHOP].new_session()
    return views.login_page(request, session, _next(request.query.get("next")), with_csrf=not wrong)


async def login(request: web.Request, wrong: bool) -> web.Response:
    form = await request.post()
    session = views.session_of(request)
    if session is None or not _csrf_ok(session, form.get("csrf_token")):
        return views.csrf_refused(request, session)
    target = _next(form.get("next"))
    if wrong:  # the page says nothing, and the customer is still not signed in
        return views.redirect(request, session, target)
    signed_in = request.app[SHOP].sign_in(
        session, str(form.get("username", "")), str(form.get("password", ""))
    )
    if signed_in is None:
        error = request.app[PAGES].fragment(
            "error", id="login-error", text="Wrong user name or password."
        )
        return views.login_page(request, session, target, error=error, status=401)
    return views.redirect(request, signed_in, target)


async def logout(request: web.Request) -> web.Response:
    form = await request.post()
    session = views.session_of(request)
    if session is None or not _csrf_ok(session, form.get("csrf_token")):
        return views.csrf_refused(request, session)
    request.app[SHOP].sessions.pop(session.id)
    response = views.redirect(request, None, "/")
    response.del_cookie(views.COOKIE, path="/")
    return response


# --- cart and checkout ------------------------------------------------------------------


async def cart(request: web.Request, wrong: bool) -> web.Response:
    session = views.session_of(request)
    lines = () if wrong or session is None else request.app[SHOP].cart_lines(session)
    if not lines:
        return views.message(request, session, "cart-empty", "Your cart", "Your cart is empty.")
    return views.page(
        request, session, "cart", "Cart", lines=views.lines_table(request, "cart", lines)
    )


async def cart_add(request: web.Request, wrong: bool) -> web.Response:
    form = await request.post()
    session = views.session_of(request)
    if session is None or not _csrf_ok(session, form.get("csrf_token")):
        return views.csrf_refused(request, session)
    state = request.app[SHOP]
    item = state.products.get(str(form.get("sku", "")))
    quantity = _int(form.get("quantity"))
    if item is None or item.stock == 0:
        return views.refused(request, session, 400, "That product cannot be bought.")
    if quantity is None or not 1 <= quantity <= state.limits.quantity:
        return views.refused(
            request, session, 400, f"Quantity must be 1 to {state.limits.quantity}."
        )
    if not wrong:  # wrong: the item silently never reaches the cart
        try:
            state.add_to_cart(session, item.sku, quantity)
        except CartFull as error:
            return views.refused(request, session, 409, str(error).capitalize() + ".")
    if views.wants_json(request):
        return web.json_response({"ok": True, "count": sum(session.cart.values())})
    return views.redirect(request, session, "/cart")


async def checkout(request: web.Request, wrong: bool) -> web.Response:
    session = views.session_of(request)
    if session is None or session.user is None:
        return views.redirect(request, session, "/login?next=/checkout")
    lines = request.app[SHOP].cart_lines(session)
    if not lines:
        return views.message(request, session, "cart-empty", "Checkout", "Your cart is empty.")
    return views.checkout_page(request, session, lines)


async def pay(request: web.Request, wrong: bool) -> web.Response:
    form = await request.post()
    session = views.session_of(request)
    if session is None or session.user is None:
        return views.redirect(request, session, "/login?next=/checkout")
    if not _csrf_ok(session, form.get("csrf_token")):
        return views.csrf_refused(request, session)
    state = request.app[SHOP]
    lines = state.cart_lines(session)
    if not lines:
        return views.message(request, session, "cart-empty", "Checkout", "Your cart is empty.", 409)
    digits = re.sub(r"[\s-]", "", str(form.get("card", "")))
    if not _card_number_ok(digits):
        return views.checkout_page(request, session, lines, "That card number is not valid.", 422)
    if digits == _DECLINED_CARD:
        return views.checkout_page(request, session, lines, "Your card was declined.", 402)
    if wrong:  # the payment page "succeeds" but no order exists and nobody says thank you
        return views.message(request, session, "order-pending", "Order pending", "Please wait.")
    placed = state.place_order(
        source="web", owner=session.user, lines=lines, status="paid", card_last4=digits[-4:]
    )
    session.cart.clear()
    return views.redirect(request, session, f"/checkout/confirmation/{placed.id}")


async def confirmation(request: web.Request, wrong: bool) -> web.Response:
    session = views.session_of(request)
    placed = request.app[SHOP].orders.get(request.match_info["order_id"])
    if session is None or placed is None or placed.owner != session.user:
        return views.not_found(request, session, "No such order.")
    if wrong:
        return views.message(request, session, "order-received", "Order received", "Processing.")
    return views.page(
        request,
        session,
        "confirmation",
        "Thank you",
        order_id=placed.id,
        total=euros(placed.total_cents),
        card_last4=placed.card_last4,
    )


async def order(request: web.Request, wrong: bool) -> web.Response:
    """The public order-tracking page: web and partner orders alike, no personal data."""
    session = views.session_of(request)
    placed = request.app[SHOP].orders.get(request.match_info["order_id"])
    if placed is None:
        return views.not_found(request, session, "No such order.")
    if wrong:
        return views.message(request, session, "order-missing", "Order", "We cannot find it.")
    return views.page(
        request,
        session,
        "order",
        f"Order {placed.id}",
        order_id=placed.id,
        order_status=placed.status,
        source=placed.source,
        reference=f"(reference {placed.reference})" if placed.reference else "",
        lines=views.lines_table(request, "order-lines", placed.lines),
    )


# --- helpers ----------------------------------------------------------------------------

_DECLINED_CARD = "4000000000000002"  # the test card that is always declined


def _csrf_ok(session: Session, token: object) -> bool:
    return isinstance(token, str) and hmac.compare_digest(token.encode(), session.csrf.encode())


def _next(value: object) -> str:
    """Where to go after logging in: a path on this site only (no open redirect)."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//"):
        return value
    return "/"


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _card_number_ok(digits: str) -> bool:
    """13 to 19 digits passing the Luhn check, as every card network requires."""
    if not re.fullmatch(r"[0-9]{13,19}", digits):
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0
