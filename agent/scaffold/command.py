"""The ``init`` subcommand's options and handler."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    init = commands.add_parser("init", help="scaffold a journeys folder")
    init.add_argument("folder", nargs="?", default="journeys")
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    raise NotImplementedError("init: being built")
