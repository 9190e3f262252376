"""How every ``journeyman`` subcommand explains itself: one helper each subcommand uses.

Each option's help ends with its default and, for the agent's options, the environment
variable it is also read from: ``(default: 127.0.0.1:9464; env JOURNEYMAN_LISTEN)``.
Each subcommand's help ends with an example. Imports argparse only: ``validate --help``
must stay fast (``bench/cli_startup.py``).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_command", "option_help"]


def option_help(text: str, *, default: object, env: str | None = None) -> str:
    """``text`` followed by ``(default: DEFAULT; env NAME)``; a default of None reads
    "none", False "off" (a flag)."""
    said = f"default: {_shown(default)}" + (f"; env {env}" if env else "")
    return f"{text} ({said})" if text else f"({said})"


def _shown(default: object) -> str:
    if default is None:
        return "none"
    if isinstance(default, bool):
        return "on" if default else "off"
    return str(default)


def add_command(
    commands: Any, name: str, *, help: str, example: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand of ``commands`` (the subparsers action) whose help ends with
    ``example`` (one or more command lines, kept as written)."""
    lines = "\n".join(f"  {line}" for line in example.strip().splitlines())
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=description or help[:1].upper() + help[1:] + ".",
        epilog=f"example:\n{lines}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser
