"""``python -m agent.demo``: serve the demo shop alone until Ctrl-C.

python -m agent.demo --port 8080 --chaos checkout=slow:3s --chaos partner-inventory=wrong
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from agent.demo.chaos import ALL, TARGETS, ChaosSetting, parse_chaos_spec
from agent.demo.server import start_shop
from agent.demo.state import Credentials

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        chaos = dict(parse_chaos_spec(spec) for spec in args.chaos)
    except ValueError as error:
        print(f"python -m agent.demo: {error}", file=sys.stderr)
        return 2
    return asyncio.run(_serve(args.host, args.port, chaos))


class _Parser(argparse.ArgumentParser):
    """A mistake in one line and exit status 2, as ``journeyman`` says them."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535, got {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m agent.demo",
        description="Serve the Journeyman demo shop (storefront, partner API, chaos switch).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_port, default=8080, help="port (0: any free port)")
    parser.add_argument(
        "--chaos",
        action="append",
        default=[],
        metavar="TARGET=MODE[:DELAY]",
        help=f"break a target from the start (modes: off, slow, error, wrong; "
        f"targets: {ALL}, {', '.join(TARGETS)})",
    )
    return parser


async def _serve(host: str, port: int, chaos: dict[str, ChaosSetting]) -> int:
    try:
        shop = await start_shop(
            host, port, chaos=chaos, credentials=Credentials.from_environ(os.environ)
        )
    except OSError as error:
        print(f"python -m agent.demo: cannot listen on {host}:{port}: {error}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with shop:
        user = shop.credentials.user
        print(f"Demo shop     {shop.url}/", flush=True)
        print(f"Chaos switch  {shop.url}/chaos/panel", flush=True)
        print(f"Log in as {user}; the password is $SHOP_PASSWORD (demo default if unset)")
        print("Ctrl-C stops the shop.", flush=True)
        await stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
