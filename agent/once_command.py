"""``journeyman run --once``: each journey once, a progress view, the table, an exit status.

Progress: on a terminal a live table, one row per journey, redrawn as each run ends and
erased before the final table; piped (or more journeys than the terminal has lines), one
plain line per journey as it ends. With
``--debug`` (or ``--step``), each step instead, as it runs (:mod:`agent.run.debug_view`).
Logs go to stderr, from errors up unless ``--log-level`` asks for more: on a terminal
they are printed above the live table, never inside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from agent.app import Debug, Settings, run_once
from agent.cli import EXIT_FAILED, EXIT_OK, EXIT_PUSH, EXIT_USAGE, _print_problems
from agent.language.loader import load
from agent.language.model import Journey
from agent.language.templating import EnvAllowList
from agent.logconfig import configure_logging
from exporters.base import Exporter
from exporters.console import ConsoleExporter, LiveTable

__all__ = ["run_once_command"]


def run_once_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``args.paths`` once as ``journeyman run --once`` does; its exit status."""
    loaded = load(settings.paths, environ=os.environ, allow_env=EnvAllowList(settings.allow_env))
    bad_files = _print_problems(loaded, sys.stderr)
    journeys = [j.journey for j in loaded.journeys if settings.shard is None
                or settings.shard.owns(j.journey.journey)]  # fmt: skip
    if args.step is not None and (missing := _without_step(journeys, args.step)):
        print(f"journeyman: --step {args.step!r}: {missing}", file=sys.stderr)
        return EXIT_USAGE
    debug = Debug(args.debug_body_limit, args.step) if args.debug or args.step else None
    if debug is not None and settings.artifacts_dir is None:  # evidence to look at
        settings = replace(settings, artifacts_dir=Path(tempfile.mkdtemp(prefix="journeyman-")))
    exporters: dict[str, Exporter] = {}
    logs: TextIO = sys.stderr
    # a table taller than the terminal could not be redrawn in place: lines then
    if debug is None and sys.stdout.isatty() and len(journeys) < shutil.get_terminal_size().lines:
        live = LiveTable(sys.stdout, [journey.journey for journey in journeys], logs=sys.stderr)
        exporters["progress"] = live
        logs = live.log_stream() if sys.stderr.isatty() else sys.stderr
    elif debug is None:
        exporters["progress"] = ConsoleExporter(sys.stdout)
    configure_logging(json=args.log_format == "json", level=args.log_level or "error", stream=logs)
    pusher = None
    if args.push:
        from exporters.pushgateway import PushgatewayExporter

        pusher = exporters["pushgateway"] = PushgatewayExporter(
            args.push, settings.location, journeys
        )
    results = asyncio.run(
        run_once(settings, journeys, sys.stdout, junit=args.junit, exporters=exporters, debug=debug)
    )
    if debug is not None and any(result.artifacts for result in results):
        print(f"\nevidence of these runs: {settings.artifacts_dir}")
    failures = pusher.failures() if pusher else {}
    for journey, why in failures.items():
        print(f"journeyman: push of {journey} to {args.push} failed: {why}", file=sys.stderr)
    if bad_files or not journeys:
        return EXIT_USAGE
    if not all(result.ok for result in results):
        return EXIT_FAILED
    return EXIT_PUSH if failures else EXIT_OK


def _without_step(journeys: list[Journey], step: str) -> str:
    """Which journeys have no step named ``step`` (and the steps they do have), or ""."""
    return "; ".join(
        f"journey {journey.journey!r} has no such step (its steps: "
        f"{', '.join(repr(s.name) for s in journey.steps)})"
        for journey in journeys
        if step not in {s.name for s in journey.steps}
    )
