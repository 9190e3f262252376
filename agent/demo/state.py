"""The demo shop's in-memory state: products, users, sessions and carts, orders, tokens.

Everything that grows with traffic lives in a :class:`BoundedMap` that forgets its least
recently used entry past a cap, so a demo left running for weeks stays the same size.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from aiohttp import web

__all__ = [
    "DEFAULT_PARTNER_SECRET",
    "DEFAULT_PASSWORD",
    "PRODUCTS",
    "SHOP",
    "BoundedMap",
    "CartFull",
    "Credentials",
    "Limits",
    "Order",
    "OrderLine",
    "Product",
    "Session",
    "ShopState",
]

DEFAULT_PASSWORD = "tea-for-two"  # alice's password when SHOP_PASSWORD is unset
DEFAULT_PARTNER_SECRET = "acme-demo-secret"  # the partner's secret when PARTNER_SECRET is unset
TOKEN_LIFETIME = 3600.0  # seconds a partner bearer token stays valid

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price_cents: int
    description: str
    stock: int


PRODUCTS = (
    Product("teapot", "Blue teapot", 3450, "A one-litre stoneware teapot, glazed blue.", 42),
    Product("mug", "Tall mug", 1200, "Holds a pint of tea; dishwasher safe.", 230),
    Product("kettle", "Whistling kettle", 4900, "Stainless steel, for every hob.", 17),
    Product("sampler", "Tea sampler", 1999, "Twelve loose-leaf teas from four countries.", 88),
    Product("strainer", "Tea strainer", 650, "Fine mesh, fits every cup.", 310),
    Product("cosy", "Knitted tea cosy", 1575, "Keeps a teapot warm for an hour.", 0),
)


@dataclass(frozen=True)
class Credentials:
    """The demo user's password and the partner's client secret (never printed)."""

    user: str = "alice"
    password: str = field(default=DEFAULT_PASSWORD, repr=False)
    partner_id: str = "acme-logistics"
    partner_secret: str = field(default=DEFAULT_PARTNER_SECRET, repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Credentials:
        """``SHOP_PASSWORD`` and ``PARTNER_SECRET`` when set, the demo defaults otherwise."""
        return cls(
            password=environ.get("SHOP_PASSWORD") or DEFAULT_PASSWORD,
            partner_secret=environ.get("PARTNER_SECRET") or DEFAULT_PARTNER_SECRET,
        )


@dataclass(frozen=True)
class Limits:
    """Caps on what the shop remembers; the oldest entry goes first."""

    sessions: int = 10_000
    orders: int = 10_000
    tokens: int = 1_000
    cart_lines: int = 20  # distinct products in one cart
    quantity: int = 99  # of one product in one cart or order line


class BoundedMap(Generic[K, V]):
    """A dict that keeps at most ``cap`` entries, evicting the least recently used."""

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError(f"cap must be at least 1, got {cap}")
        self.cap = cap
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.cap:
            self._items.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


class CartFull(ValueError):
    """The cart already holds as many distinct products as the shop allows."""


@dataclass
class Session:
    """A browser's session: its CSRF token, who is signed in, and the cart (sku -> qty)."""

    id: str
    csrf: str
    user: str | None = None
    cart: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderLine:
    sku: str
    name: str
    quantity: int
    unit_cents: int


@dataclass(frozen=True)
class Order:
    id: str
    source: str  # "web" (storefront checkout) or "partner" (partner API)
    owner: str  # the user or the partner client id
    lines: tuple[OrderLine, ...]
    created: float  # unix time
    status: str
    reference: str = ""  # the partner's own purchase-order reference
    card_last4: str = ""

    @property
    def total_cents(self) -> int:
        return sum(line.quantity * line.unit_cents for line in self.lines)


@dataclass(frozen=True)
class Token:
    client_id: str
    expires: float  # unix time


class ShopState:
    """All the shop remembers. One instance per running shop; nothing is global."""

    def __init__(
        self,
        credentials: Credentials,
        limits: Limits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credentials = credentials
        self.limits = limits
        self.products = {product.sku: product for product in PRODUCTS}
        self.sessions: BoundedMap[str, Session] = BoundedMap(limits.sessions)
        self.orders: BoundedMap[str, Order] = BoundedMap(limits.orders)
        self.tokens: BoundedMap[str, Token] = BoundedMap(limits.tokens)
        self._clock = clock

    def now(self) -> float:
        return self._clock()

    def counts(self) -> dict[str, int]:
        return {
            "sessions": len(self.sessions),
            "orders": len(self.orders),
            "tokens": len(self.tokens),
        }

    # --- storefront -------------------------------------------------------------------

    def new_session(self) -> Session:
        session = Session(id=secrets.token_urlsafe(24), csrf=secrets.token_urlsafe(24))
        self.sessions.put(session.id, session)
        return session

    def sign_in(self, session: Session, user: str, password: str) -> Session | None:
        """A new session for ``user`` (a new id against session fixation; the CSRF token
        and the cart carry over), or None when the credentials are wrong."""
        expected = self.credentials
        user_ok = hmac.compare_digest(user.encode(), expected.user.encode())
        password_ok = hmac.compare_digest(password.encode(), expected.password.encode())
        if not (user_ok and password_ok):
            return None
        self.sessions.pop(session.id)
        signed_in = replace(session, id=secrets.token_urlsafe(24), user=user)
        self.sessions.put(signed_in.id, signed_in)
        return signed_in

    def add_to_cart(self, session: Session, sku: str, quantity: int) -> None:
        if sku not in session.cart and len(session.cart) >= self.limits.cart_lines:
            raise CartFull(f"a cart holds at most {self.limits.cart_lines} different products")
        session.cart[sku] = min(session.cart.get(sku, 0) + quantity, self.limits.quantity)

    def cart_lines(self, session: Session) -> tuple[OrderLine, ...]:
        return self.lines((sku, quantity) for sku, quantity in session.cart.items())

    # --- orders -----------------------------------------------------------------------

    def lines(self, items: Iterable[tuple[str, int]]) -> tuple[OrderLine, ...]:
        """Order lines at today's prices; unknown SKUs are left out."""
        return tuple(
            OrderLine(sku, product.name, quantity, product.price_cents)
            for sku, quantity in items
            if (product := self.products.get(sku)) is not None
        )

    def place_order(
        self,
        *,
        source: str,
        owner: str,
        lines: tuple[OrderLine, ...],
        status: str,
        reference: str = "",
        card_last4: str = "",
    ) -> Order:
        order_id = _order_id()
        while order_id in self.orders:
            order_id = _order_id()
        order = Order(
            id=order_id,
            source=source,
            owner=owner,
            lines=lines,
            created=self._clock(),
            status=status,
            reference=reference,
            card_last4=card_last4,
        )
        self.orders.put(order.id, order)
        return order

    # --- partner tokens ---------------------------------------------------------------

    def issue_token(self, client_id: str, client_secret: str) -> tuple[str, Token] | None:
        expected = self.credentials
        id_ok = hmac.compare_digest(client_id.encode(), expected.partner_id.encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), expected.partner_secret.encode())
        if not (id_ok and secret_ok):
            return None
        value = secrets.token_urlsafe(32)
        token = Token(client_id=client_id, expires=self._clock() + TOKEN_LIFETIME)
        self.tokens.put(value, token)
        return value, token

    def token_client(self, value: str) -> str | None:
        """The client id a bearer token belongs to, or None if unknown or expired."""
        token = self.tokens.get(value)
        if token is None or token.expires <= self._clock():
            return None
        return token.client_id


def _order_id() -> str:
    return "JM-" + secrets.token_hex(4).upper()


SHOP = web.AppKey("shop", ShopState)
