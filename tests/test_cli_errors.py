"""Every command-line mistake ends with one line on stderr (``journeyman: ...``) and exit
status 2, never a traceback: each through the real command, as a process, and a port in
use with a real listening socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JOURNEYS = ROOT / "journeys"
UNREACHABLE = """\
journey: never-run
business_process: testing
schedule: {every: 1m, timeout: 1s}
steps:
  - name: home
    http: {get: "http://127.0.0.1:9/"}
"""


def journeyman(
    *argv: str, environ: dict[str, str] | None = None, module: str = "agent"
) -> subprocess.CompletedProcess[str]:
    """``python -m agent ARGV`` (the ``journeyman`` command), bounded."""
    return subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=ROOT,
        env={**os.environ, **(environ or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_usage_error(
    done: subprocess.CompletedProcess[str], prefix: str = "journeyman:"
) -> str:
    """The single line a mistake printed, once its exit status (2) and shape are checked."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(prefix), lines[0]
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--listen", "9464"], "must be host:port"),
        (["--log-level", "verbose"], "debug, info, warning, error, critical"),
        (["--max-concurrency", "0"], "whole number >= 1"),
        (["--max-concurrency", "-1"], "whole number >= 1"),
        (["--max-browsers", "0"], "whole number >= 1"),
        (["--grace", "soon"], "seconds >= 0"),
    ],
    ids=["listen-without-host", "log-level", "concurrency-0", "concurrency-negative",
         "browsers-0", "grace"],
)  # fmt: skip
@pytest.mark.parametrize("once", [False, True], ids=["agent", "once"])
def test_a_bad_option_value_is_one_line(argv: list[str], says: str, once: bool) -> None:
    """A bad value of an agent option is refused before anything starts, naming the option
    (before: tracebacks, and --max-concurrency 0 hung forever)."""
    done = journeyman("run", str(JOURNEYS), *(["--once"] if once else []), *argv)
    line = one_line_usage_error(done)
    assert argv[0] in line
    assert says in line


def test_a_bad_number_in_the_environment_is_one_line_and_validate_still_works() -> None:
    """A non-integer JOURNEYMAN_MAX_CONCURRENCY is refused by `run`, naming the variable,
    and does not concern `validate` at all (before: a traceback from both)."""
    environ = {"JOURNEYMAN_MAX_CONCURRENCY": "many", "JOURNEYMAN_MAX_BROWSERS": "2.5"}
    line = one_line_usage_error(journeyman("run", str(JOURNEYS), environ=environ))
    assert "JOURNEYMAN_MAX_" in line
    assert "'many'" in line or "'2.5'" in line
    assert journeyman("validate", str(JOURNEYS), environ=environ).returncode == 0


def test_an_unknown_option_is_one_line() -> None:
    """argparse's own mistakes (an unknown flag) are one line too, not a usage block."""
    line = one_line_usage_error(journeyman("run", str(JOURNEYS), "--max-concurency", "2"))
    assert "--max-concurency" in line


def test_junit_into_a_missing_folder_is_refused_before_any_journey_runs(tmp_path: Path) -> None:
    """`--junit` into a folder that does not exist is said before running (before: after
    every journey ran, as a traceback)."""
    (tmp_path / "never.yaml").write_text(UNREACHABLE)
    report = tmp_path / "missing" / "report.xml"
    done = journeyman("run", str(tmp_path), "--once", "--junit", str(report))
    line = one_line_usage_error(done)
    assert str(report.parent) in line
    assert done.stdout == ""  # no journey ran: no table


def test_agent_port_in_use_is_one_line(taken_port: int) -> None:
    """`run` with its --listen port taken by another process (before: a 34-line OSError)."""
    done = journeyman("run", str(JOURNEYS), "--listen", f"127.0.0.1:{taken_port}")
    line = one_line_usage_error(done)
    assert f"cannot listen on 127.0.0.1:{taken_port}" in line
    assert "--listen" in line


def test_demo_agent_port_in_use_is_one_line(taken_port: int) -> None:
    """`make demo` with the agent's port taken: one line, exit 2."""
    done = journeyman("demo", "--shop-port", "0", "--listen", f"127.0.0.1:{taken_port}")
    assert f"cannot listen on 127.0.0.1:{taken_port}" in one_line_usage_error(done)


def test_demo_shop_port_in_use_is_said_not_moved(taken_port: int) -> None:
    """The demo shop's port taken: said, with --shop-port as the way out (before: the shop
    moved to a random port, and the README's URLs pointed at something else)."""
    done = journeyman("demo", "--shop-port", str(taken_port), "--listen", "127.0.0.1:0")
    line = one_line_usage_error(done)
    assert f"127.0.0.1:{taken_port}" in line
    assert "--shop-port" in line


def test_demo_shop_port_out_of_range_is_one_line() -> None:
    """A port that is no port is refused by the parser, for the demo and the shop alone."""
    assert "0-65535" in one_line_usage_error(journeyman("demo", "--shop-port", "99999"))
    alone = journeyman("--port", "99999", module="agent.demo")
    assert "0-65535" in one_line_usage_error(alone, prefix="python -m agent.demo:")


def test_shop_alone_on_a_taken_port_is_one_line(taken_port: int) -> None:
    """`python -m agent.demo` on a taken port says so in one line."""
    done = journeyman("--port", str(taken_port), module="agent.demo")
    line = one_line_usage_error(done, prefix="python -m agent.demo:")
    assert f"127.0.0.1:{taken_port}" in line
