"""The ``record`` subcommand's options and handler."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    record = commands.add_parser("record", help="record a journey by clicking through a site")
    record.add_argument("url")
    record.set_defaults(handler=_record)


def _record(args: argparse.Namespace) -> int:
    raise NotImplementedError("record: being built")
