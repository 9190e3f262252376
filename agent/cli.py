"""The ``journeyman`` command line: validate, run, schema, rules, dashboard, report, demo.

Each subcommand is one small handler here that calls into the module doing the work.
Exit status: 0 all good, 1 a journey failed, 2 unusable input, 3 (``run --once --push``)
every journey passed but a push to the Pushgateway failed.

Only the journey language is imported up front. The running agent (``agent.app``:
httpx, Playwright, aiohttp, prometheus-client), the demo, the logging setup and asyncio
are imported by the handlers that use them, so ``validate``, ``schema``, ``rules`` and
``dashboard`` never load a browser stack (``tests/test_import_rules.py``,
``bench/cli_startup.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from agent.language.loader import LoadResult, load
from agent.language.schema import journey_file_schema
from agent.language.templating import DEFAULT_ALLOW_ENV, EnvAllowList
from generators.rules import FORMATS, RulesOptions, build, render

if TYPE_CHECKING:
    import asyncio

    from agent.app import Settings

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PUSH = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="journeyman",
        description="Replay business journeys and measure what customers and partners feel.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check journey files; report every mistake")
    validate.add_argument("paths", nargs="+", help="journey files or folders")
    validate.add_argument(
        "--require-env", action="store_true", help="an unset ${env.NAME} is an error"
    )
    _allow_env_option(validate)
    validate.set_defaults(handler=_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of journey files")
    schema.set_defaults(handler=_schema)

    run = commands.add_parser("run", help="run journeys on their schedules (or --once)")
    run.add_argument("paths", nargs="+", help="journey files or folders (and catalog.yaml)")
    run.add_argument("--once", action="store_true", help="run each journey once, print a table")
    run.add_argument("--junit", type=Path, help="with --once: write a JUnit XML report here")
    run.add_argument(
        "--push", metavar="URL", type=_http_url,
        help="with --once: push each journey's metrics to this Pushgateway (PUT, grouped by "
        "job/journey/location); a failed push exits 3 if the journeys passed",
    )  # fmt: skip
    _agent_options(run)
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="the agent monitoring the bundled demo shop")
    demo.add_argument("paths", nargs="*", default=["journeys"], help="default: journeys/")
    demo.add_argument(
        "--shop-port", type=_port, default=8080, help="demo shop port (0: any free one)"
    )
    _agent_options(demo)
    demo.set_defaults(handler=_demo)

    rules = commands.add_parser("rules", help="Prometheus rules from the journeys' SLOs")
    rules.add_argument("paths", nargs="+", help="journey files or folders (and catalog.yaml)")
    rules.add_argument("-o", "--output", default="-", help="rules file (default: stdout)")
    rules.add_argument("--format", choices=FORMATS, default="prometheus")
    rules.add_argument("--name", default="journeyman-slos", help="PrometheusRule object name")
    for flag, default, text in _RULES_COUNTS:
        rules.add_argument(flag, type=_at_least_one, default=default, help=text)
    rules.set_defaults(handler=_rules)

    report = commands.add_parser(
        "report", help="availability, budgets, incidents and what they cost, from the history"
    )
    report.add_argument(
        "--data-dir", type=Path, required=not os.environ.get("JOURNEYMAN_DATA_DIR"),
        default=os.environ.get("JOURNEYMAN_DATA_DIR") or None,
        help="the agent's --data-dir (default: $JOURNEYMAN_DATA_DIR)",
    )  # fmt: skip
    report.add_argument("--since", default="7d", help="how far back, e.g. 24h, 7d (default 7d)")
    report.add_argument("--format", choices=["text", "html"], default="text")
    report.add_argument("-o", "--output", default="-", help="file (default: stdout)")
    report.set_defaults(handler=_report)

    dashboard = commands.add_parser("dashboard", help="a Grafana dashboard of the journeys")
    dashboard.add_argument("paths", nargs="+", help="journey files or folders (and catalog.yaml)")
    dashboard.add_argument("-o", "--output", default="-", help="JSON file (default: stdout)")
    dashboard.add_argument("--title", default="Journeyman: business journeys")
    dashboard.add_argument("--uid", default="journeyman", help="the dashboard's Grafana uid")
    dashboard.set_defaults(handler=_dashboard)

    # Subcommands whose options live with their code (each module imports nothing heavy).
    from agent.record.command import add_parser as add_record
    from agent.scaffold.command import add_parser as add_init

    add_record(commands)
    add_init(commands)
    return parser


class _Parser(argparse.ArgumentParser):
    """Every command-line mistake in one line (``journeyman: ...``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"journeyman: {message} (see {self.prog} --help)\n")


_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _log_level(text: str) -> str:
    if text.lower() not in _LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(_LOG_LEVELS)}; got {text!r}")
    return text.lower()


def _count(name: str) -> Callable[[str], int]:
    """A whole number >= 1, given as the option or as ``JOURNEYMAN_<name>``."""

    def count(text: str) -> int:
        if not text.strip().isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(
                f"must be a whole number >= 1 (also as $JOURNEYMAN_{name}), got {text!r}"
            )
        return int(text)

    return count


def _seconds(name: str) -> Callable[[str], float]:
    """Seconds >= 0, given as the option or as ``JOURNEYMAN_<name>``."""

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 <= value < float("inf"):
            raise argparse.ArgumentTypeError(
                f"must be a number of seconds >= 0 (also as $JOURNEYMAN_{name}), got {text!r}"
            )
        return value

    return seconds


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535, got {text!r}")
    return int(text)


def _listen(text: str) -> str:
    """``host:port`` as the agent's server takes it (``:9464``: every address)."""
    from agent.serve.server import parse_listen

    try:
        parse_listen(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _agent_options(parser: argparse.ArgumentParser) -> None:
    """Options of a running agent; each also reads a JOURNEYMAN_* environment variable."""

    def env(name: str, default: str) -> str:
        return os.environ.get(f"JOURNEYMAN_{name}", default)

    parser.add_argument("--location", default=env("LOCATION", "local"), help="label on series")
    parser.add_argument(
        "--listen", type=_listen, default=env("LISTEN", "127.0.0.1:9464"),
        help="host:port of /metrics",
    )  # fmt: skip
    parser.add_argument(
        "--max-concurrency", type=_count("MAX_CONCURRENCY"), default=env("MAX_CONCURRENCY", "8"),
        help="runs in flight at most",
    )  # fmt: skip
    parser.add_argument(
        "--max-browsers", type=_count("MAX_BROWSERS"), default=env("MAX_BROWSERS", "2"),
        help="browser contexts open at most (about 2 saturate 2 cores)",
    )  # fmt: skip
    parser.add_argument(
        "--shard", default=env("SHARD", "") or None,
        help="I/N: run this replica's share only; auto: a StatefulSet pod's (ordinal from "
        "JOURNEYMAN_SHARD_ORDINAL or the hostname NAME-ORDINAL, N from JOURNEYMAN_SHARD_COUNT)",
    )  # fmt: skip
    parser.add_argument(
        "--grace", type=_seconds("GRACE"), default=env("GRACE", "30"),
        help="seconds runs in flight get to finish on SIGTERM",
    )  # fmt: skip
    parser.add_argument(
        "--artifacts-dir", type=Path, default=env("ARTIFACTS_DIR", "") or None,
        help="where screenshots, traces and page HTML of failed browser runs go",
    )  # fmt: skip
    parser.add_argument(
        "--browser-path", default=env("BROWSER", "") or None, help="Chromium executable"
    )
    parser.add_argument(
        "--log-format", choices=["json", "console"], default=env("LOG_FORMAT", "json")
    )
    parser.add_argument(
        "--log-level", type=_log_level, default=env("LOG_LEVEL", "info"),
        help=f"one of {', '.join(_LOG_LEVELS)}",
    )  # fmt: skip
    parser.add_argument(
        "--web.config.file", dest="web_config_file", type=Path,
        default=env("WEB_CONFIG_FILE", "") or None,
        help="exporter web configuration (TLS, basic auth, headers) for every endpoint",
    )  # fmt: skip
    parser.add_argument(
        "--web.protect-probes", dest="web_protect_probes", action="store_true",
        default=env("WEB_PROTECT_PROBES", "").strip().lower() not in ("", "0", "false", "no"),
        help="basic auth on /healthz and /readyz too (default: open, kubelets send none)",
    )  # fmt: skip
    parser.add_argument(
        "--data-dir", type=Path, default=env("DATA_DIR", "") or None,
        help="where the run history is kept (SQLite; the status page and `report` read it); "
        "default: in memory",
    )  # fmt: skip
    _reach_options(parser)


def _allow_env_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-env", action="append", metavar="PATTERN",
        help="environment variables journeys may read as ${env.NAME}, besides those their "
        "secrets: read (repeatable; shell wildcards; env JOURNEYMAN_ALLOW_ENV, "
        f"comma-separated; default: {','.join(DEFAULT_ALLOW_ENV)})",
    )  # fmt: skip


def _reach_options(parser: argparse.ArgumentParser) -> None:
    """What journeys may reach (docs/security.md): variables, hosts, local files."""
    _allow_env_option(parser)
    parser.add_argument(
        "--allow-hosts", action="append", metavar="RULES",
        help="egress only to these CIDRs, addresses, host names or *.patterns (repeatable, "
        "comma-separated; env JOURNEYMAN_ALLOW_HOSTS); default: anywhere but link-local "
        "and metadata addresses",
    )  # fmt: skip
    parser.add_argument(
        "--deny-hosts", action="append", metavar="RULES",
        help="no egress to these CIDRs, addresses, host names or *.patterns (repeatable, "
        "comma-separated; env JOURNEYMAN_DENY_HOSTS)",
    )  # fmt: skip
    parser.add_argument(
        "--uploads-dir", type=Path, default=_env("UPLOADS_DIR") or None,
        help="the folder browser uploads may send files from (default: none, no uploads)",
    )  # fmt: skip
    parser.add_argument(
        "--ca-dir", type=Path, default=_env("CA_DIR") or None,
        help="the folder verify: CA bundle paths may name (default: none, only true/false)",
    )  # fmt: skip


def _env(name: str) -> str:
    return os.environ.get(f"JOURNEYMAN_{name}", "")


def _listed(given: list[str] | None, name: str) -> list[str]:
    """A repeatable option's values, else its environment variable's, comma-separated."""
    return given if given is not None else [_env(name)] if _env(name) else []


def _allow_env(args: argparse.Namespace) -> EnvAllowList:
    texts = _listed(args.allow_env, "ALLOW_ENV")
    if args.allow_env is None and not texts:
        return EnvAllowList()  # the default, JOURNEY_*
    return EnvAllowList(p for text in texts for p in text.split(","))


def _folder(path: Path | None, flag: str) -> Path | None:
    if path is not None and not path.is_dir():
        raise ValueError(f"{flag} {path}: not a folder")
    return path


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    import socket

    from agent.app import Settings
    from agent.schedule.sharding import parse_shard

    values: dict[str, Any] = {
        "paths": tuple(Path(p) for p in args.paths),
        "location": args.location,
        "listen": args.listen,
        "max_concurrency": args.max_concurrency,
        "max_browsers": args.max_browsers,
        "shard": parse_shard(args.shard, os.environ, socket.gethostname()) if args.shard else None,
        "grace": args.grace,
        "artifacts_dir": args.artifacts_dir,
        "browser_path": args.browser_path,
        "web_config": _web_config(args.web_config_file),
        "protect_probes": args.web_protect_probes,
        "data_dir": args.data_dir,
        **_reach(args),
    }
    return Settings(**(values | overrides))


def _reach(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of what journeys may reach; ValueError says what is wrong."""
    from agent.run.egress import EgressPolicy

    return {
        "allow_env": _allow_env(args).patterns,
        "egress": EgressPolicy.parse(
            _listed(args.allow_hosts, "ALLOW_HOSTS"), _listed(args.deny_hosts, "DENY_HOSTS")
        ),
        "uploads_dir": _folder(args.uploads_dir, "--uploads-dir"),
        "ca_dir": _folder(args.ca_dir, "--ca-dir"),
    }


def _web_config(path: Path | None) -> Path | None:
    """``path`` once it loads (WebConfigError, a ValueError, says why not in one line)."""
    if path is not None:
        from agent.serve.web_config import load_web_config

        load_web_config(path)
    return path


def _print_problems(result: LoadResult, out: TextIO) -> int:
    """Print every error and warning; return how many files had errors."""
    for file in result.files.values():
        for problem in sorted(file.errors + file.warnings, key=lambda p: (p.line, p.column)):
            print(problem, file=out)
    return sum(not file.ok for file in result.files.values())


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from agent.app import run_agent, run_once
    from agent.logconfig import configure_logging

    configure_logging(json=args.log_format == "json", level=args.log_level)
    try:
        settings = _settings(args)
        _check_junit(args.junit)
    except ValueError as error:
        print(f"journeyman: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not args.once:
        if args.push:
            print("journeyman: --push needs --once (an agent is scraped)", file=sys.stderr)
            return EXIT_USAGE
        return _until_signalled(lambda stop: run_agent(settings, stop))
    loaded = load(settings.paths, environ=os.environ, allow_env=EnvAllowList(settings.allow_env))
    bad_files = _print_problems(loaded, sys.stderr)
    journeys = [j.journey for j in loaded.journeys if settings.shard is None
                or settings.shard.owns(j.journey.journey)]  # fmt: skip
    pusher = None
    if args.push:
        from exporters.pushgateway import PushgatewayExporter

        pusher = PushgatewayExporter(args.push, settings.location, journeys)
    extra = {"pushgateway": pusher} if pusher else None
    results = asyncio.run(
        run_once(settings, journeys, sys.stdout, junit=args.junit, exporters=extra)
    )
    failures = pusher.failures() if pusher else {}
    for journey, why in failures.items():
        print(f"journeyman: push of {journey} to {args.push} failed: {why}", file=sys.stderr)
    if bad_files or not journeys:
        return EXIT_USAGE
    if not all(result.ok for result in results):
        return EXIT_FAILED
    return EXIT_PUSH if failures else EXIT_OK


def _http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL, got {text!r}")
    return text


def _check_junit(path: Path | None) -> None:
    """A JUnit report can be written to ``path``: said before any journey runs."""
    if path is not None and (path.is_dir() or not path.parent.is_dir()):
        why = "is a folder" if path.is_dir() else f"its folder {path.parent} does not exist"
        raise ValueError(f"--junit {path}: {why}")


def _demo(args: argparse.Namespace) -> int:
    from agent.demo.command import run_demo
    from agent.logconfig import configure_logging

    configure_logging(json=args.log_format == "json", level="error")  # the live view speaks
    try:
        settings = _settings(args, console=sys.stdout)
    except ValueError as error:
        print(f"journeyman: {error}", file=sys.stderr)
        return EXIT_USAGE
    return _until_signalled(lambda stop: run_demo(settings, stop, shop_port=args.shop_port))


def _until_signalled(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> int:
    """Run ``main`` until SIGTERM or SIGINT sets its stop event; then exit 0. One that
    cannot start as configured (a port in use) exits 2 with its one line."""
    import asyncio
    import signal

    from agent.app import StartError

    async def wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await main(stop)

    try:
        asyncio.run(wrapper())
    except StartError as error:
        print(f"journeyman: {error}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    result = load(
        args.paths, environ=os.environ, require_env=args.require_env, allow_env=_allow_env(args)
    )
    bad = _print_problems(result, sys.stdout)
    journeys = len(result.journeys)
    summary = f"{journeys} journey{'s' * (journeys != 1)} OK"
    if bad:
        summary += f", {bad} file{'s' * (bad != 1)} with errors"
    print(summary)
    return EXIT_USAGE if bad else EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(journey_file_schema(), indent=2))
    return EXIT_OK


_RULES_COUNTS = (
    ("--min-failed-runs", 2, "a page needs at least this many bad runs (default 2)"),
    (
        "--min-failing-locations",
        2,
        "K of N: a page needs K locations burning, capped at the N reporting; for journeys "
        "whose slo sets no min_failing_locations (default 2)",
    ),
    ("--no-data-intervals", 3, "no-data alert after this many missed runs (default 3)"),
    ("--locations", 1, "locations running each journey, for the arithmetic (default 1)"),
)


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def _rules(args: argparse.Namespace) -> int:
    loaded = load(args.paths)
    if _print_problems(loaded, sys.stderr) or not loaded.journeys:
        print("journeyman rules: no rules written (fix the journey files)", file=sys.stderr)
        return EXIT_USAGE
    options = RulesOptions(
        min_failed_runs=args.min_failed_runs,
        min_failing_locations=args.min_failing_locations,
        no_data_intervals=args.no_data_intervals,
        locations=args.locations,
    )
    rules = build((j.journey for j in loaded.journeys), loaded.catalog, options)
    for warning in rules.warnings:
        print(f"journeyman rules: warning: {warning}", file=sys.stderr)
    return _write(args.output, render(rules, args.format, name=args.name))


def _dashboard(args: argparse.Namespace) -> int:
    from generators import dashboard

    loaded = load(args.paths)
    if _print_problems(loaded, sys.stderr) or not loaded.journeys:
        print("journeyman dashboard: nothing written (fix the journey files)", file=sys.stderr)
        return EXIT_USAGE
    options = dashboard.DashboardOptions(title=args.title, uid=args.uid)
    built = dashboard.build((j.journey for j in loaded.journeys), loaded.catalog, options)
    return _write(args.output, dashboard.render(built))


def _write(output: str, text: str) -> int:
    """Write a generated file to ``output`` (``-``: stdout)."""
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    import time

    from agent.language.fields import parse_duration
    from exporters.report import ReportError, read_report
    from exporters.report_render import render_html, render_text

    try:
        since = parse_duration(args.since)
    except ValueError as error:
        print(f"journeyman report: --since {error}", file=sys.stderr)
        return EXIT_USAGE
    until = time.time()
    try:
        report = read_report(args.data_dir, until - since, until)
    except ReportError as error:
        print(f"journeyman report: {error}", file=sys.stderr)
        return EXIT_USAGE
    text = render_html(report) if args.format == "html" else render_text(report)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
