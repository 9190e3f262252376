"""The ``init`` subcommand's options and handler.

Imported by ``agent.cli`` to build the parser, so it imports nothing beyond argparse at
module level; the files and their schemas are built when ``init`` runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agent.cli_help import add_command, option_help

__all__ = ["add_parser"]

EXIT_OK, EXIT_USAGE = 0, 2


def add_parser(commands: Any) -> None:
    init = add_command(
        commands, "init",
        help="scaffold a journeys folder: a catalog, two journeys, editor schemas",
        description="Write a journeys folder to start from: a catalog.yaml, an HTTP and a\n"
        "browser journey against the demo shop, the JSON Schemas, and the editor settings\n"
        "that complete and check the files while typing. See docs/first-journey.md.",
        example="journeyman init\njourneyman init my-journeys --force",
    )  # fmt: skip
    init.add_argument(
        "folder", nargs="?", default="journeys", help=option_help("", default="journeys")
    )
    init.add_argument(
        "--force", action="store_true",
        help=option_help("overwrite the files init writes when they exist", default=False),
    )  # fmt: skip
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    from agent.scaffold.files import scaffold

    folder = Path(args.folder)
    files = {folder / name: text for name, text in scaffold().items()}
    problem = _problem(folder, files, force=args.force)
    if problem:
        print(f"journeyman init: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as error:
        print(f"journeyman init: cannot write {error.filename}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    print(_summary(folder, files))
    return EXIT_OK


def _problem(folder: Path, files: dict[Path, str], *, force: bool) -> str:
    """Why nothing should be written, in one line, or ""."""
    for place in sorted({folder, *(path.parent for path in files)}):
        if place.exists() and not place.is_dir():
            return f"{place} exists and is not a folder"
    folders = [path for path in files if path.is_dir()]
    if folders:
        return f"{folders[0]} is a folder, where init writes a file"
    existing = [str(path) for path in files if path.exists()]
    if existing and not force:
        return f"would overwrite {', '.join(existing)} (--force overwrites them)"
    return ""


def _summary(folder: Path, files: dict[Path, str]) -> str:
    import shlex

    from agent.scaffold.files import SHOP_URL

    written = "\n".join(f"  {path}" for path in files)
    there = shlex.quote(str(folder))
    return f"""Wrote:
{written}

Editors using the YAML language server now complete and check these files (VS Code:
the Red Hat YAML extension, with {folder} opened as the workspace).

Next, with the demo shop running (python -m agent.demo, in another terminal):
  export JOURNEY_SHOP_URL={SHOP_URL} SHOP_PASSWORD=tea-for-two
  journeyman validate {there}
  journeyman run --once {there}
Or the demo shop and an agent running these journeys, with a live view:
  journeyman demo {there}
The walk-through: docs/first-journey.md"""
