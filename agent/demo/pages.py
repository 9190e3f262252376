"""Server-rendered HTML for the demo shop: ``templates/*.html`` with ``$name`` slots.

Every value is HTML-escaped unless it is :class:`Markup` (HTML this package built from
escaped parts), so nothing a visitor types can inject markup.
"""

from __future__ import annotations

import html
from importlib import resources
from string import Template

from aiohttp import web

from agent.demo.state import Session

__all__ = ["PAGES", "Markup", "Pages", "euros", "join"]


class Markup(str):
    """Trusted HTML, inserted as is."""

    __slots__ = ()


def escape(value: object) -> Markup:
    return value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))


def join(parts: list[Markup]) -> Markup:
    return Markup("".join(parts))


def euros(cents: int) -> str:
    return f"\N{EURO SIGN}{cents / 100:.2f}"


class Pages:
    """The templates, read once when the shop starts."""

    def __init__(self) -> None:
        folder = resources.files(__package__).joinpath("templates")
        self._templates = {
            entry.name.removesuffix(".html"): Template(entry.read_text(encoding="utf-8"))
            for entry in folder.iterdir()
            if entry.name.endswith(".html")
        }

    def fragment(self, template: str, /, **values: object) -> Markup:
        """One template filled in; a missing slot is a KeyError (a bug, caught by tests)."""
        escaped = {key: escape(value) for key, value in values.items()}
        return Markup(self._templates[template].substitute(escaped))

    def page(
        self,
        template: str,
        /,
        *,
        title: str,
        session: Session | None,
        search: str = "",
        status: int = 200,
        **values: object,
    ) -> web.Response:
        """A whole page: the ``template`` inside the layout with its navigation."""
        if session is not None and session.user:
            account = self.fragment("nav_user", user=session.user, csrf=session.csrf)
        else:
            account = self.fragment("nav_anonymous")
        text = self.fragment(
            "layout",
            title=title,
            account=account,
            cart_count=sum(session.cart.values()) if session else 0,
            query=search,
            content=self.fragment(template, **values),
        )
        return web.Response(text=text, status=status, content_type="text/html")


PAGES = web.AppKey("pages", Pages)
