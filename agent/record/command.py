"""The ``record`` subcommand's options and handler.

Nothing heavy is imported here: the browser side (Playwright) is imported by the
handler, so ``journeyman --help`` and the other subcommands never load it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.cli_help import add_command, option_help
from agent.cli_options import http_url, port
from agent.record.ask import PERSONAS, about, check_id, check_interval

__all__ = ["add_parser"]

EXIT_OK, EXIT_USAGE = 0, 2


def add_parser(commands: Any) -> None:
    record = add_command(
        commands, "record",
        help="record a journey by clicking through a site",
        description="Open Chromium on URL, record what you do there (and the checks you add\n"
        "with the overlay's buttons), and write the journey when the page is closed or on\n"
        "Ctrl-C. See docs/recording.md.",
        example="journeyman record https://shop.example/ -o journeys/checkout.yaml\n"
        "journeyman record http://127.0.0.1:8080/ -o new.yaml --headless "
        "--remote-debugging-port 9222",
    )  # fmt: skip
    record.add_argument("url", metavar="URL", type=http_url, help="the page to start on")
    record.add_argument(
        "-o", "--output", metavar="FILE", type=Path, required=True,
        help="journey file to write (required)",
    )  # fmt: skip
    asked = "(default: asked on a terminal, else %s)"
    record.add_argument(
        "--journey",
        metavar="ID",
        type=_checked(check_id),
        help="journey id " + asked % "the file's name",
    )
    record.add_argument(
        "--business-process",
        metavar="ID",
        type=_checked(check_id),
        help="its business process (an id of catalog.yaml) " + asked % "unassigned",
    )
    record.add_argument("--persona", choices=PERSONAS, help="who " + asked % "customer")
    record.add_argument(
        "--interval", metavar="DURATION", type=_checked(check_interval),
        help="how often the journey runs, e.g. 5m " + asked % "5m",
    )  # fmt: skip
    record.add_argument(
        "--headless", action="store_true",
        help=option_help("no window (for machines without a display): drive the browser "
        "through its remote debugging address", default=False),
    )  # fmt: skip
    record.add_argument(
        "--remote-debugging-port", type=port, metavar="PORT",
        help=option_help("let DevTools clients drive the recorded browser on "
        "127.0.0.1:PORT (0: any free port); the address is printed", default=None),
    )  # fmt: skip
    record.add_argument(
        "--browser-path", metavar="PATH",
        help=option_help("Chromium executable", default="Playwright's own, then the "
        "system's chromium", env="JOURNEYMAN_BROWSER"),
    )  # fmt: skip
    record.set_defaults(handler=_record)


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        try:
            return check(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _record(args: argparse.Namespace) -> int:
    from agent.record.browser import RecordOptions
    from agent.record.session import record_journey

    output: Path = args.output
    if output.is_dir() or not output.parent.is_dir():
        why = "is a folder" if output.is_dir() else f"its folder {output.parent} does not exist"
        print(f"journeyman record: -o {output}: {why}", file=sys.stderr)
        return EXIT_USAGE
    given = {
        "journey": args.journey,
        "business_process": args.business_process,
        "persona": args.persona,
        "interval": args.interval,
    }
    try:
        described = about(given, output, input if sys.stdin.isatty() else None, sys.stderr)
    except (KeyboardInterrupt, EOFError):
        print("\njourneyman record: cancelled", file=sys.stderr)
        return EXIT_USAGE
    headless, debugging = args.headless, args.remote_debugging_port
    if not headless and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print(
            "journeyman record: no display: recording headless; drive the browser through "
            "its remote debugging address (docs/recording.md)",
            file=sys.stderr,
        )
        headless, debugging = True, 0 if debugging is None else debugging
    started = datetime.now(UTC)
    options = RecordOptions(
        headless=headless, debugging_port=debugging, browser_path=args.browser_path
    )
    return record_journey(args.url, output, described, options, started)
