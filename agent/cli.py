"""The ``journeyman`` command line: validate, run, schema, rules, demo.

Each subcommand is one small handler here that calls into the module doing the work.
Exit status: 0 all good, 1 a journey failed, 2 unusable input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="journeyman",
        description="Replay business journeys and measure what customers and partners feel.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check journey files; report every mistake")
    validate.add_argument("paths", nargs="+", help="journey files or folders")
    validate.add_argument(
        "--require-env", action="store_true", help="an unset ${env.NAME} is an error"
    )
    validate.set_defaults(handler=_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of journey files")
    schema.set_defaults(handler=_schema)

    return parser


def _validate(args: argparse.Namespace) -> int:
    raise NotImplementedError


def _schema(args: argparse.Namespace) -> int:
    raise NotImplementedError


if __name__ == "__main__":
    sys.exit(main())
