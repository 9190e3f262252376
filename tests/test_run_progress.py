"""`run --once` shows each journey as it ends: plain lines when piped, a table redrawn in
place on a terminal; log lines never land among them (stderr, from errors up unless asked;
above the live table on a terminal)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from http_servers import serve_app
from once_process import run_once_process

from agent.run.results import FailureReason, Outcome, RunResult
from exporters.console import LiveTable

ROOT = Path(__file__).resolve().parents[1]
OK = """\
journey: healthy
business_process: order-to-cash
steps:
  - name: status
    http: {get: "${env.JOURNEY_BASE}/ok"}
"""
BROKEN = """\
journey: broken
business_process: order-to-cash
steps:
  - name: status
    http: {get: "${env.JOURNEY_BASE}/missing"}
"""
LINE = re.compile(r"^\d\d:\d\d:\d\d (OK  |FAIL) (healthy|broken) ")


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="fine")


@pytest.fixture
async def journeys(tmp_path: Path) -> AsyncIterator[tuple[Path, dict[str, str]]]:
    """A folder with a passing and a failing journey, and the environment to run it."""
    (tmp_path / "ok.yaml").write_text(OK)
    (tmp_path / "broken.yaml").write_text(BROKEN)
    app = web.Application()
    app.router.add_get("/ok", _ok)
    async with serve_app(app) as base:
        yield tmp_path, {**os.environ, "JOURNEY_BASE": base}


async def test_piped_run_prints_a_line_per_journey_then_the_table(
    journeys: tuple[Path, dict[str, str]],
) -> None:
    """Piped: one plain line per journey before the table, nothing else; no log line on
    stderr by default, though a journey failed (its failure is in the lines and table)."""
    folder, environ = journeys
    code, out, err = await run_once_process(str(folder), environ=environ)
    assert code == 1
    before_table = out[: out.index("JOURNEY ")].splitlines()
    assert len(before_table) == 2
    assert all(LINE.match(line) for line in before_table), before_table
    assert {LINE.match(line)[2] for line in before_table} == {"healthy", "broken"}  # type: ignore[index]
    assert "http_status at 'status'" in next(line for line in before_table if "broken" in line)
    assert err == ""


async def test_asked_for_logs_go_to_stderr_only(journeys: tuple[Path, dict[str, str]]) -> None:
    """With --log-level info the JSON events are on stderr, and stdout has none of them."""
    folder, environ = journeys
    code, out, err = await run_once_process(str(folder), "--log-level", "info", environ=environ)
    assert code == 1
    events = [json.loads(line)["event"] for line in err.splitlines()]
    assert "journey_run" in events
    assert not any(line.lstrip().startswith("{") for line in out.splitlines())


async def test_on_a_terminal_the_table_is_redrawn_and_erased_before_the_final_table(
    journeys: tuple[Path, dict[str, str]],
) -> None:
    """Under a terminal (a pty), the live rows show each journey running, are redrawn
    in place (cursor up, erase) and erased before the final table."""
    folder, environ = journeys
    leader, follower = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "--once", str(folder),
        cwd=ROOT, env=environ, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(follower)
    screen = (await asyncio.wait_for(asyncio.to_thread(_read_all, leader), 120)).decode()
    os.close(leader)
    assert await process.wait() == 1
    live, _, final = screen.replace("\r\n", "\n").rpartition("\x1b[2F\x1b[J")  # the last erase
    assert "RUN  healthy" in live
    assert "RUN  broken" in live
    assert final.startswith("JOURNEY ")
    assert final.rstrip().endswith("1 of 2 journeys passed")


def _read_all(fd: int) -> bytes:
    """What a terminal's leader side reads until the other side is closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every follower closed, the process ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _result(journey: str, ok: bool) -> RunResult:
    return RunResult(
        journey=journey, business_process="bp", persona="customer", run_id="r", trace_id="t",
        started_at=0.0, duration=0.25, outcome=Outcome.SUCCESS if ok else Outcome.FAILURE,
        attempts=1, reason=None if ok else FailureReason.TIMEOUT,
        failed_step=None if ok else "pay", message="" if ok else "too slow",
    )  # fmt: skip


async def test_a_log_line_prints_above_the_live_table_never_inside() -> None:
    """A log line written while the table is live erases it, goes to the log stream, and
    the table is drawn again below; after close, log lines pass through alone."""
    screen, logs = io.StringIO(), io.StringIO()
    table = LiveTable(screen, ["a", "b"], logs=logs)
    await table.start()
    table.export(_result("a", ok=False))
    stream = table.log_stream()
    stream.write('{"event": "x"}')
    stream.write("\n")
    assert logs.getvalue() == '{"event": "x"}\n'
    drawn = screen.getvalue().split("\x1b[2F\x1b[J")
    assert len(drawn) == 3  # first draw, after the result, after the log line
    assert "RUN  b" in drawn[-1]
    assert "FAIL a" in drawn[-1]  # (cut to the terminal's width)
    await table.close()
    stream.write("after\n")
    assert screen.getvalue().endswith("\x1b[2F\x1b[J")
    assert logs.getvalue().endswith("after\n")


async def test_demo_stdout_is_its_banner_then_live_lines_in_time_order(tmp_path: Path) -> None:
    """`journeyman demo` as a process: stdout holds the banner and then only live lines,
    each stamped no earlier than the one before; stderr holds no log event."""
    often = OK.replace("steps:", "schedule: {every: 2s, timeout: 1s}\nsteps:")
    (tmp_path / "ok.yaml").write_text(
        often.replace("${env.JOURNEY_BASE}/ok", "${env.JOURNEY_SHOP_URL}/")
    )
    (tmp_path / "other.yaml").write_text(
        often.replace("healthy", "also-healthy").replace(
            "${env.JOURNEY_BASE}/ok", "${env.JOURNEY_SHOP_URL}/login"
        )
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "demo", str(tmp_path), "--shop-port", "0",
        "--listen", "127.0.0.1:0", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    live = re.compile(r"^\d\d:\d\d:\d\d (OK  |FAIL) ")
    while sum(bool(live.match(line)) for line in lines) < 3:  # runs that overlap
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert line, lines
        lines.append(line.decode().rstrip("\n"))
    process.send_signal(signal.SIGINT)
    rest, err = await asyncio.wait_for(process.communicate(), 30)
    lines += rest.decode().splitlines()
    assert process.returncode == 0
    banner_end = lines.index("Live runs (one line each):")
    shown = lines[banner_end + 1 :]
    assert shown
    assert all(live.match(line) for line in shown), shown
    clocks = [line[:8] for line in shown]
    assert clocks == sorted(clocks)
    assert err.decode() == ""
