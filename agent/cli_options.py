"""The options of ``journeyman``'s subcommands and the types of their values.

The agent's options (``run``, ``demo``) each also read a ``JOURNEYMAN_*`` environment
variable, whose value replaces the built-in default; every help says both
(:mod:`agent.cli_help`). A bad value, given or from the environment, is refused by the
parser in one line. Imports argparse and the journey language only; the agent's server
is imported by ``--listen``'s check when it is given.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.cli_help import option_help
from agent.language.templating import DEFAULT_ALLOW_ENV

__all__ = [
    "agent_options",
    "allow_env_option",
    "at_least_one",
    "debug_options",
    "env_value",
    "http_url",
    "port",
]

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


def _non_negative(unit: str, name: str = "") -> Callable[[str], float]:
    """A number of ``unit`` >= 0, given as the option or (with ``name``) as
    ``JOURNEYMAN_<name>``."""
    also = f" (also as $JOURNEYMAN_{name})" if name else ""

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 <= value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a number of {unit} >= 0{also}, got {text!r}")
        return value

    return number


def port(text: str) -> int:
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


def debug_options(parser: argparse.ArgumentParser) -> None:
    """``run --once``'s options for following a journey step by step (docs/debugging.md)."""
    parser.add_argument(
        "--debug", action="store_true",
        help=option_help("with --once: print each step as it runs (request, response, "
        "outcome, duration; a failing body or page text), one journey at a time, then the "
        "evidence files", default=False),
    )  # fmt: skip
    parser.add_argument(
        "--debug-body-limit", type=at_least_one, default=4096, metavar="BYTES",
        help=option_help("with --debug: bytes of a failing response body or page text "
        "shown", default=4096),
    )  # fmt: skip
    parser.add_argument(
        "--step", metavar="NAME",
        help=option_help("with --once: end each journey after its step of this name (implies "
        "--debug)", default=None),
    )  # fmt: skip
    parser.add_argument(
        "--headed", action="store_true",
        help=option_help("with --once: show the browser's window (needs a display, $DISPLAY)",
        default=False),
    )  # fmt: skip
    parser.add_argument(
        "--slow-mo", type=_non_negative("milliseconds"), default=0.0, metavar="MS",
        help=option_help("with --once: milliseconds the browser waits before each action",
        default=0),
    )  # fmt: skip


def agent_options(parser: argparse.ArgumentParser) -> None:
    """Options of a running agent; each also reads a JOURNEYMAN_* environment variable,
    whose value replaces the built-in default the help shows."""

    def option(
        flag: str, name: str, default: str | None, text: str, shown: str = "", **kwargs: Any
    ) -> None:
        parser.add_argument(
            flag, default=env_value(name) or default,
            help=option_help(text, default=shown or default, env=f"JOURNEYMAN_{name}"), **kwargs,
        )  # fmt: skip

    option("--location", "LOCATION", "local", "the location label on every series", metavar="NAME")
    option(
        "--listen", "LISTEN", "127.0.0.1:9464", "host:port of /metrics and the status page",
        type=_listen, metavar="HOST:PORT",
    )  # fmt: skip
    option(
        "--max-concurrency", "MAX_CONCURRENCY", "8", "runs in flight at most",
        type=_count("MAX_CONCURRENCY"), metavar="N",
    )  # fmt: skip
    option(
        "--max-browsers", "MAX_BROWSERS", "2",
        "browser contexts open at most (about 2 saturate 2 cores)", type=_count("MAX_BROWSERS"),
        metavar="N",
    )  # fmt: skip
    option(
        "--shard", "SHARD", None,
        "I/N: run this replica's share only; auto: a StatefulSet pod's (ordinal from "
        "JOURNEYMAN_SHARD_ORDINAL or the hostname NAME-ORDINAL, N from JOURNEYMAN_SHARD_COUNT)",
        metavar="I/N|auto",
    )  # fmt: skip
    option(
        "--grace", "GRACE", "30", "seconds runs in flight get to finish on SIGTERM",
        type=_non_negative("seconds", "GRACE"), metavar="SECONDS",
    )  # fmt: skip
    option(
        "--artifacts-dir", "ARTIFACTS_DIR", None,
        "where screenshots, traces and page HTML of failed browser runs go (with --debug: a "
        "new temporary folder)", type=Path, metavar="DIR",
    )  # fmt: skip
    option(
        "--browser-trace", "BROWSER_TRACE", "light",
        "what the Playwright trace of a failed browser step records: light (actions, "
        "timings, errors), full (also DOM snapshots and screencast: ~+40%% step time, "
        "inside the step's clock), off", choices=["light", "full", "off"],
    )  # fmt: skip
    option(
        "--browser-path", "BROWSER", None, "Chromium executable",
        shown="Playwright's own, then the system's chromium", metavar="FILE",
    )  # fmt: skip
    option(
        "--log-format", "LOG_FORMAT", "json", "log lines as JSON or for a console",
        choices=["json", "console"],
    )  # fmt: skip
    option(
        "--log-level", "LOG_LEVEL", None, "log to stderr from this level up",
        shown="info; error for run --once and demo, whose output is their live view",
        type=_log_level, choices=_LOG_LEVELS,
    )  # fmt: skip
    option(
        "--web.config.file", "WEB_CONFIG_FILE", None,
        "exporter web configuration (TLS, basic auth, headers) for every endpoint",
        dest="web_config_file", type=Path, metavar="FILE",
    )  # fmt: skip
    parser.add_argument(
        "--web.protect-probes", dest="web_protect_probes", action="store_true",
        default=env_value("WEB_PROTECT_PROBES").strip().lower() not in ("", "0", "false", "no"),
        help=option_help("basic auth on /healthz and /readyz too (off: open, kubelets send "
        "none)", default=False, env="JOURNEYMAN_WEB_PROTECT_PROBES"),
    )  # fmt: skip
    option(
        "--data-dir", "DATA_DIR", None,
        "where the run history is kept (SQLite; the status page and `report` read it)",
        shown="none, in memory", type=Path, metavar="DIR",
    )  # fmt: skip
    _reach_options(parser)


def allow_env_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-env", action="append", metavar="PATTERN",
        help=option_help("environment variables journeys may read as ${env.NAME}, besides "
        "those their secrets: read (repeatable; shell wildcards; the variable is "
        "comma-separated)", default=",".join(DEFAULT_ALLOW_ENV), env="JOURNEYMAN_ALLOW_ENV"),
    )  # fmt: skip


def _reach_options(parser: argparse.ArgumentParser) -> None:
    """What journeys may reach (docs/security.md): variables, hosts, local files."""
    allow_env_option(parser)
    parser.add_argument(
        "--allow-hosts", action="append", metavar="RULES",
        help=option_help("egress only to these CIDRs, addresses, host names or *.patterns "
        "(repeatable, comma-separated)", default="anywhere but link-local and metadata "
        "addresses", env="JOURNEYMAN_ALLOW_HOSTS"),
    )  # fmt: skip
    parser.add_argument(
        "--deny-hosts", action="append", metavar="RULES",
        help=option_help("no egress to these CIDRs, addresses, host names or *.patterns "
        "(repeatable, comma-separated)", default=None, env="JOURNEYMAN_DENY_HOSTS"),
    )  # fmt: skip
    parser.add_argument(
        "--uploads-dir", type=Path, default=env_value("UPLOADS_DIR") or None, metavar="DIR",
        help=option_help("the folder browser uploads may send files from", default="none, "
        "no uploads", env="JOURNEYMAN_UPLOADS_DIR"),
    )  # fmt: skip
    parser.add_argument(
        "--ca-dir", type=Path, default=env_value("CA_DIR") or None, metavar="DIR",
        help=option_help("the folder verify: CA bundle paths may name", default="none, only "
        "true/false", env="JOURNEYMAN_CA_DIR"),
    )  # fmt: skip


def env_value(name: str) -> str:
    return os.environ.get(f"JOURNEYMAN_{name}", "")


def http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL, got {text!r}")
    return text


def at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)
