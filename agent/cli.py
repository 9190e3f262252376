"""The ``journeyman`` command line: validate, run, schema, rules, demo.

Each subcommand is one small handler here that calls into the module doing the work.
Exit status: 0 all good, 1 a journey failed, 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from agent.loader import load
from agent.schema import journey_file_schema

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
    result = load(args.paths, environ=os.environ, require_env=args.require_env)
    for file in result.files.values():
        for problem in sorted(file.errors + file.warnings, key=lambda p: (p.line, p.column)):
            print(problem)
    bad = sum(not file.ok for file in result.files.values())
    journeys = len(result.journeys)
    summary = f"{journeys} journey{'s' * (journeys != 1)} OK"
    if bad:
        summary += f", {bad} file{'s' * (bad != 1)} with errors"
    print(summary)
    return EXIT_USAGE if bad else EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(journey_file_schema(), indent=2))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
