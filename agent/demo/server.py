"""Assembles the demo shop and serves it: :func:`start_shop` for tests and ``journeyman
demo``, :func:`build_app` for anything that wants the bare aiohttp application."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType

from aiohttp import web

from agent.demo import chaos_api, partner_api, storefront
from agent.demo.chaos import CHAOS, Chaos, ChaosSetting
from agent.demo.pages import PAGES, Pages
from agent.demo.state import SHOP, Credentials, Limits, ShopState

__all__ = ["RunningShop", "build_app", "start_shop"]

_MAX_BODY = 64 * 1024  # bytes; every form and JSON body the shop takes is far smaller
_SHUTDOWN_GRACE = 2.0  # seconds requests in flight (a slow page) get when the shop stops


def build_app(state: ShopState, chaos: Chaos) -> web.Application:
    app = web.Application(client_max_size=_MAX_BODY)
    app[SHOP] = state
    app[CHAOS] = chaos
    app[PAGES] = Pages()
    app.router.add_routes(storefront.routes())
    app.router.add_routes(partner_api.routes())
    app.router.add_routes(chaos_api.routes())
    app.router.add_get("/healthz", _healthz)
    app.router.add_static("/static", Path(str(resources.files(__package__).joinpath("static"))))
    return app


async def _healthz(request: web.Request) -> web.Response:
    """Liveness, and how much the shop holds (sessions, orders, tokens)."""
    return web.json_response({"ok": True, **request.app[SHOP].counts()})


@dataclass
class RunningShop:
    """A shop serving on ``url`` until :meth:`close`."""

    url: str  # without a trailing slash, e.g. http://127.0.0.1:41234
    state: ShopState
    chaos: Chaos
    _runner: web.AppRunner = field(repr=False)

    @property
    def credentials(self) -> Credentials:
        return self.state.credentials

    def environ(self) -> dict[str, str]:
        """The environment the example journeys read: JOURNEY_SHOP_URL (a plain variable:
        the JOURNEY_ prefix is what journeys may read by default), and the secrets
        SHOP_PASSWORD and PARTNER_SECRET (read under secrets:, so always allowed)."""
        return {
            "JOURNEY_SHOP_URL": self.url,
            "SHOP_PASSWORD": self.credentials.password,
            "PARTNER_SECRET": self.credentials.partner_secret,
        }

    async def close(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> RunningShop:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def start_shop(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    chaos: Mapping[str, ChaosSetting] | None = None,
    credentials: Credentials | None = None,
    limits: Limits | None = None,
) -> RunningShop:
    """Serve a fresh shop on ``host:port`` (port 0: any free port; see ``url``)."""
    state = ShopState(credentials or Credentials(), limits or Limits())
    switch = Chaos(chaos)
    runner = web.AppRunner(
        build_app(state, switch), access_log=None, shutdown_timeout=_SHUTDOWN_GRACE
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
    except BaseException:
        await runner.cleanup()
        raise
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    return RunningShop(f"http://{shown_host}:{bound_port}", state, switch, runner)
