"""The ``journeyman`` command line: validate, run, schema, rules, dashboard, report, demo.

Each subcommand is one small handler here that calls into the module doing the work;
its options and their value types are in :mod:`agent.cli_options`, and every help
follows :mod:`agent.cli_help` (each option's default and variable, an example).
``run --once`` is :mod:`agent.once_command`.
Exit status: 0 all good, 1 a journey failed, 2 unusable input, 3 (``run --once --push``)
every journey passed but a push to the Pushgateway failed.

Nothing heavy is imported up front. The journey language, the running agent
(``agent.app``: httpx, Playwright, prometheus-client), the generators, the demo,
the logging setup and asyncio are imported by the handlers that use them, so
``validate``, ``schema``, ``rules`` and ``dashboard`` never load a browser stack
(``tests/test_import_rules.py``, ``bench/cli_startup.py``). Parsing and those imports run
with the cyclic garbage collector paused (:func:`_uncollected`).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from agent.cli_help import add_command, option_help
from agent.cli_options import (
    agent_options,
    allow_env_option,
    at_least_one,
    debug_options,
    env_value,
    http_url,
    port,
)
from agent.language.templating import EnvAllowList

if TYPE_CHECKING:
    import asyncio

    from agent.app import Settings
    from agent.language.loader import LoadResult

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PUSH = 0, 1, 2, 3
# generators.rules.FORMATS, named here so that building the parser does not import the
# generator (tests/test_cli.py holds the two equal)
_RULE_FORMATS = ("prometheus", "prometheus-operator")


def main(argv: Sequence[str] | None = None) -> int:
    with _uncollected():  # the parser loads the language; --listen's check, the server
        args = _parser().parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="journeyman",
        description="Replay business journeys and measure what customers and partners feel.",
        epilog="Each command explains itself: journeyman COMMAND --help",
    )
    parser.add_argument(
        "--version", action=_Version, help="print the version of journeyman and exit"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    validate = add_command(
        commands, "validate", help="check journey files; report every mistake",
        example="journeyman validate journeys/\njourneyman validate --require-env journeys/",
    )  # fmt: skip
    validate.add_argument("paths", nargs="+", help="journey files or folders")
    validate.add_argument(
        "--require-env", action="store_true",
        help=option_help("an unset ${env.NAME} is an error, not a warning", default=False),
    )  # fmt: skip
    allow_env_option(validate)
    validate.set_defaults(handler=_validate)

    schema = add_command(
        commands, "schema", help="print the JSON Schema of journey files",
        example="journeyman schema > journey.schema.json\n"
        "journeyman schema --catalog > catalog.schema.json",
    )  # fmt: skip
    schema.add_argument(
        "--catalog", action="store_true",
        help=option_help("print the JSON Schema of catalog.yaml instead", default=False),
    )  # fmt: skip
    schema.set_defaults(handler=_schema)

    run = add_command(
        commands, "run", help="run journeys on their schedules (or --once)",
        example="journeyman run --once journeys/ --junit report.xml\n"
        'journeyman run --once journeys/checkout.yaml --debug --step "log in"\n'
        "journeyman run journeys/ --listen :9464 --data-dir /var/lib/journeyman",
    )  # fmt: skip
    run.add_argument("paths", nargs="+", help="journey files or folders (and catalog.yaml)")
    run.add_argument(
        "--once", action="store_true",
        help=option_help("run each journey once, print a table, exit", default=False),
    )  # fmt: skip
    run.add_argument(
        "--junit", type=Path, metavar="FILE",
        help=option_help("with --once: write a JUnit XML report here", default=None),
    )  # fmt: skip
    run.add_argument(
        "--push", metavar="URL", type=http_url,
        help=option_help("with --once: push each journey's metrics to this Pushgateway (PUT, "
        "grouped by job/journey/location); a failed push exits 3 if the journeys passed",
        default=None),
    )  # fmt: skip
    debug_options(run)
    agent_options(run)
    run.set_defaults(handler=_run)

    demo = add_command(
        commands, "demo", help="the agent monitoring the bundled demo shop",
        example="journeyman demo\njourneyman demo --shop-port 0 --listen 127.0.0.1:0",
    )  # fmt: skip
    demo.add_argument(
        "paths", nargs="*", default=["journeys"], help=option_help("", default="journeys/")
    )
    demo.add_argument(
        "--shop-port", type=port, default=8080,
        help=option_help("demo shop port (0: any free one)", default=8080),
    )  # fmt: skip
    agent_options(demo)
    demo.set_defaults(handler=_demo)

    rules = add_command(
        commands, "rules", help="Prometheus rules from the journeys' SLOs",
        example="journeyman rules journeys/ -o journeyman-rules.yml\n"
        "journeyman rules journeys/ --format prometheus-operator -o rules.yaml",
    )  # fmt: skip
    rules.add_argument("paths", nargs="+", help="journey files or folders (and catalog.yaml)")
    rules.add_argument(
        "-o", "--output", default="-", help=option_help("the rules file; - is stdout", default="-")
    )
    rules.add_argument(
        "--format", choices=_RULE_FORMATS, default="prometheus",
        help=option_help("a rules file, or a PrometheusRule object", default="prometheus"),
    )  # fmt: skip
    rules.add_argument(
        "--name", default="journeyman-slos",
        help=option_help("PrometheusRule object name", default="journeyman-slos"),
    )  # fmt: skip
    for flag, default, text in _RULES_COUNTS:
        rules.add_argument(
            flag, type=at_least_one, default=default, help=option_help(text, default=default)
        )
    rules.set_defaults(handler=_rules)

    report = add_command(
        commands, "report",
        help="availability, budgets, incidents and what they cost, from the history",
        example="journeyman report --data-dir /var/lib/journeyman --since 24h\n"
        "journeyman report --data-dir /var/lib/journeyman --format html -o report.html",
    )  # fmt: skip
    report.add_argument(
        "--data-dir", type=Path, required=not os.environ.get("JOURNEYMAN_DATA_DIR"),
        default=os.environ.get("JOURNEYMAN_DATA_DIR") or None,
        help=option_help("the agent's --data-dir", default=None, env="JOURNEYMAN_DATA_DIR"),
    )  # fmt: skip
    report.add_argument(
        "--since", default="7d", help=option_help("how far back, e.g. 24h, 7d", default="7d")
    )
    report.add_argument(
        "--format", choices=["text", "html"], default="text",
        help=option_help("plain text, or an HTML page", default="text"),
    )  # fmt: skip
    report.add_argument(
        "-o",
        "--output",
        default="-",
        help=option_help("the report's file; - is stdout", default="-"),
    )
    report.set_defaults(handler=_report)

    dashboard = add_command(
        commands, "dashboard", help="a Grafana dashboard of the journeys",
        example="journeyman dashboard journeys/ -o dashboard.json",
    )  # fmt: skip
    dashboard.add_argument("paths", nargs="+", help="journey files or folders (and catalog.yaml)")
    dashboard.add_argument(
        "-o", "--output", default="-", help=option_help("the JSON file; - is stdout", default="-")
    )
    title = "Journeyman: business journeys"
    dashboard.add_argument("--title", default=title, help=option_help("its title", default=title))
    dashboard.add_argument(
        "--uid", default="journeyman",
        help=option_help("the dashboard's Grafana uid", default="journeyman"),
    )  # fmt: skip
    dashboard.set_defaults(handler=_dashboard)

    # Subcommands whose options live with their code (each module imports nothing heavy);
    # they build their parsers with agent.cli_help.add_command and option_help too.
    from agent.record.command import add_parser as add_record
    from agent.scaffold.command import add_parser as add_init

    add_record(commands)
    add_init(commands)
    return parser


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, read only when asked (importing
    importlib.metadata costs every other command start-up time)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> NoReturn:
        from importlib.metadata import version

        print(f"journeyman {version('journeyman')}")
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """Every command-line mistake in one line (``journeyman: ...``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"journeyman: {message} (see {self.prog} --help)\n")


def _listed(given: list[str] | None, name: str) -> list[str]:
    """A repeatable option's values, else its environment variable's, comma-separated."""
    return given if given is not None else [env_value(name)] if env_value(name) else []


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
    from agent.run.artifacts import TraceMode
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
        "browser_trace": TraceMode(args.browser_trace),
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


@contextmanager
def _uncollected() -> Iterator[None]:
    """No automatic cyclic garbage collection while modules load; then one collection, and
    what survives it is frozen (``gc.freeze``): modules, classes and models live as long
    as the process.

    Loading the agent's builds ~60,000 objects. Without this, ~140 collections during the
    imports and the walks of those objects after (young until collected twice) cost
    ~50 ms of a ~450 ms start. The one collection (~15 ms) frees what the imports left
    (~2,700 objects, ~0.6 MB) rather than freeze it. The agent unfreezes everything when
    it stops.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.freeze()
        if was_enabled:
            gc.enable()


def _run(args: argparse.Namespace) -> int:
    with _uncollected():
        from agent.app import run_agent
        from agent.logconfig import configure_logging

    try:
        settings = _settings(args, headed=args.headed, slow_mo=args.slow_mo)
        _check_junit(args.junit)
        _check_once_options(args)
    except ValueError as error:
        print(f"journeyman: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.once:
        from agent.once_command import run_once_command

        return run_once_command(args, settings)
    configure_logging(json=args.log_format == "json", level=args.log_level or "info")
    return _until_signalled(lambda stop: run_agent(settings, stop))


def _check_once_options(args: argparse.Namespace) -> None:
    """Options that only make sense with ``--once`` are refused without it; ``--headed``
    needs a display to open a window on."""
    given = [flag for flag, value in (("--push", args.push), ("--debug", args.debug),
             ("--step", args.step), ("--headed", args.headed), ("--slow-mo", args.slow_mo))
             if value]  # fmt: skip
    if given and not args.once:
        raise ValueError(f"{given[0]} needs --once (an agent runs unattended)")
    if args.headed and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ValueError(
            "--headed needs a display to show the browser on, and $DISPLAY is not set "
            "(run without --headed, or under xvfb-run)"
        )


def _check_junit(path: Path | None) -> None:
    """A JUnit report can be written to ``path``: said before any journey runs."""
    if path is not None and (path.is_dir() or not path.parent.is_dir()):
        why = "is a folder" if path.is_dir() else f"its folder {path.parent} does not exist"
        raise ValueError(f"--junit {path}: {why}")


def _demo(args: argparse.Namespace) -> int:
    with _uncollected():
        from agent.demo.command import run_demo
        from agent.logconfig import configure_logging

    # the live view speaks: logs (stderr) from errors up unless asked
    configure_logging(json=args.log_format == "json", level=args.log_level or "error")
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
    from agent.language.loader import load

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
    from agent.language.schema import catalog_file_schema, journey_file_schema

    print(json.dumps(catalog_file_schema() if args.catalog else journey_file_schema(), indent=2))
    return EXIT_OK


_RULES_COUNTS = (
    ("--min-failed-runs", 2, "a page needs at least this many bad runs"),
    (
        "--min-failing-locations",
        2,
        "K of N: a page needs K locations burning, capped at the N reporting; for journeys "
        "whose slo sets no min_failing_locations",
    ),
    ("--no-data-intervals", 3, "no-data alert after this many missed runs"),
    ("--locations", 1, "locations running each journey, for the arithmetic"),
)


def _rules(args: argparse.Namespace) -> int:
    from agent.language.loader import load
    from generators.rules import RulesOptions, build, render

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
    from agent.language.loader import load
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
