"""``journeyman demo``: the bundled shop and the agent monitoring it, in one process."""

from __future__ import annotations

import asyncio
import os

from agent.app import Settings, StartError, run_agent
from agent.demo.server import RunningShop, start_shop
from agent.demo.state import Credentials

__all__ = ["run_demo"]


async def run_demo(settings: Settings, stop: asyncio.Event, *, shop_port: int) -> None:
    """Serve the shop on loopback, then run the agent on it until ``stop`` is set."""
    shop = await _start(shop_port)
    async with shop:
        environ = {**os.environ, **shop.environ()}

        def banner(agent_url: str) -> None:
            print(_banner(shop, agent_url), flush=True)

        await run_agent(settings, stop, environ=environ, on_listening=banner)


async def _start(port: int) -> RunningShop:
    """The shop on ``port``; a port in use is said, never silently replaced: the banner,
    bookmarks and the README's curl lines name it."""
    credentials = Credentials.from_environ(os.environ)  # SHOP_PASSWORD, PARTNER_SECRET
    try:
        return await start_shop("127.0.0.1", port, credentials=credentials)
    except OSError as error:
        raise StartError(
            f"the demo shop cannot listen on 127.0.0.1:{port}: {error.strerror or error} "
            "(choose another port with --shop-port; 0 takes any free one)"
        ) from None


def _banner(shop: RunningShop, agent_url: str) -> str:
    return f"""
Journeyman demo: the agent is monitoring the bundled demo shop.

  shop           {shop.url}/
  chaos switch   {shop.url}/chaos/panel   (make a page slow, failing or wrong)
  agent status   {agent_url}/
  metrics        {agent_url}/metrics

Try:  curl -s {shop.url}/chaos -d '{{"target": "checkout", "mode": "wrong"}}'
Then watch the customer checkout turn red below while every server still answers 200.
Ctrl-C stops both.

Live runs (one line each):"""
