"""The run history: SQLite under --data-dir (or in memory), bounded, migrated, and
survived when the disk is full, the folder read-only or the file corrupt."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from test_prometheus_samples import T0, catalog, checkout, partner_order, results

from agent.run.results import FailureReason, Outcome, RunResult
from agent.serve.server import start_server
from exporters.history import FILE_NAME, History
from exporters.history_queries import inventory, last_runs, run, streaks, summaries_between
from exporters.history_schema import MIGRATIONS, SCHEMA_VERSION, RunSummary, row_of
from exporters.prometheus import PrometheusExporter
from exporters.status import StatusBoard
from exporters.status_page import render_overview

ROOT = Path(__file__).resolve().parent.parent


def numbered(count: int, *, start: float = T0, every: float = 60.0) -> list[RunResult]:
    """``count`` runs of checkout (with steps), one every ``every`` seconds."""
    template = results()[0]
    return [
        replace(template, run_id=f"run-{i:05d}", started_at=start + i * every) for i in range(count)
    ]


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@asynccontextmanager
async def serving(
    board: StatusBoard, registry: CollectorRegistry | None = None, **options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The agent's server on loopback over ``board``, and a client of it."""
    metrics = PrometheusExporter(registry or CollectorRegistry(), "lab")
    server = await start_server(
        "127.0.0.1:0", metrics=metrics, board=board, ready=lambda: True, **options
    )
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
            yield http
    finally:
        await server.close()


@asynccontextmanager
async def opened(folder: Path | None, **options: Any) -> AsyncIterator[History]:
    history = History(folder, **options)
    await history.start()
    try:
        yield history
    finally:
        await history.close()


async def test_runs_and_their_steps_survive_a_restart(tmp_path: Path) -> None:
    """Runs written by one History are read back, steps and measurements included, by
    the next one on the same folder; the inventory is kept for reports."""
    async with opened(tmp_path) as history:
        history.set_inventory([checkout(), partner_order()], catalog())
        for result in results():
            history.export(result)
    async with opened(tmp_path) as history:
        newest = await history.read(last_runs, "checkout", 10)
        first = await history.read(run, "r1")
        stored = await history.read(inventory)
    assert [r.run_id for r in newest] == ["r3", "r2", "r1"]
    assert newest[1].reason is FailureReason.HTTP_STATUS
    assert newest[1].failed_step == "log in"
    assert first == results()[0]
    assert stored.journeys["checkout"]["slo"]["availability"] == 0.995
    assert "steps" not in stored.journeys["checkout"]
    assert stored.processes["order-to-cash"]["value_per_transaction"] == 42.5
    assert stored.meta["timezone"] == "Europe/Paris"


async def test_a_file_of_schema_1_is_migrated_keeping_its_runs(tmp_path: Path) -> None:
    """A file at schema version 1 (runs only) is brought to the current version in place:
    its runs are still there and the inventory tables exist."""
    path = tmp_path / FILE_NAME
    with sqlite3.connect(path) as connection:
        connection.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
        connection.execute(
            "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row_of(results()[1])
        )
    connection.close()
    async with opened(tmp_path) as history:
        assert history.status.available
        old = await history.read(run, "r2")
        history.set_inventory([checkout()], catalog())
        stored = await history.read(inventory)
    with sqlite3.connect(path) as connection:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
    connection.close()
    assert version == SCHEMA_VERSION == 2
    assert old == results()[1]
    assert list(stored.journeys) == ["checkout"]


async def test_a_file_from_a_newer_version_is_refused_and_left_untouched(tmp_path: Path) -> None:
    """A file whose schema version is above this Journeyman's is not opened, not changed;
    the history says why, counts it, and exports still do not raise."""
    path = tmp_path / FILE_NAME
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 99")
    connection.close()
    before = path.read_bytes()
    registry = CollectorRegistry()
    async with opened(tmp_path, registry=registry) as history:
        history.export(results()[0])
        status = history.status
    assert not status.available
    assert "newer Journeyman (schema version 99" in status.detail
    assert path.read_bytes() == before
    assert metric(registry, "journeyman_history_errors_total", operation="open") >= 1
    assert metric(registry, "journeyman_history_up") == 0


async def test_a_corrupt_file_is_kept_and_a_new_one_starts_once_it_is_moved_away(
    tmp_path: Path,
) -> None:
    """A file that is not a database makes the history unavailable (said, counted), is
    never rewritten; once moved away the next retry starts a new file and writes the runs
    that waited in the queue."""
    path = tmp_path / FILE_NAME
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    before = path.read_bytes()
    registry = CollectorRegistry()
    async with opened(tmp_path, registry=registry, retry_after=0.0) as history:
        for result in results()[:3]:
            history.export(result)
        with pytest.raises(Exception, match="corrupt"):
            await history.read(last_runs, "checkout", 10)
        assert "is corrupt" in history.status.detail
        assert "move it away" in history.status.detail
        assert path.read_bytes() == before
        path.rename(tmp_path / "corrupt.sqlite3")
        newest = await history.read(last_runs, "checkout", 10)
        assert history.status.available
    assert [r.run_id for r in newest] == ["r3", "r2", "r1"]
    assert metric(registry, "journeyman_history_errors_total", operation="open") >= 1
    assert (tmp_path / "corrupt.sqlite3").read_bytes() == before


async def test_old_runs_are_deleted_and_older_details_dropped(tmp_path: Path) -> None:
    """Runs past max_age go; runs past detail_age keep their summary, not their steps."""
    now = T0 + 10 * 86400
    runs = [replace(results()[0], run_id=f"d{day}", started_at=now - day * 86400 - 60)
            for day in range(10)]  # fmt: skip
    async with opened(tmp_path, max_age=5 * 86400, detail_age=2 * 86400, clock=lambda: now) as h:
        for result in runs:
            h.export(result)
        kept = await h.read(summaries_between, 0, now)
        fresh, stale = await h.read(run, "d1"), await h.read(run, "d3")
    assert [r.run_id for r in kept] == ["d4", "d3", "d2", "d1", "d0"]
    assert fresh is not None
    assert len(fresh.steps) == 3
    assert stale is not None
    assert stale.steps == ()
    assert stale.outcome is Outcome.SUCCESS


@pytest.mark.parametrize("on_disk", [True, False], ids=["file", "memory"])
async def test_the_history_stays_within_its_size_keeping_the_newest(
    tmp_path: Path, on_disk: bool
) -> None:
    """Past max_bytes the oldest runs go; the file on disk (and its WAL) stays near the
    bound, and the newest run is always kept."""
    limit = 300_000
    folder = tmp_path if on_disk else None
    async with opened(folder, max_bytes=limit, prune_every=0.0) as history:
        for batch in range(6):
            for result in numbered(500, start=T0 + batch * 500 * 60):
                history.export(result)
            await history.read(last_runs, "checkout", 1)  # a flush: a batch applies bounds
        kept = await history.read(summaries_between, 0, T0 + 1e9)
        size = history.status.detail
    assert 100 < len(kept) < 3000
    assert kept[-1].run_id == "run-00499"  # the newest of the last batch
    assert kept[-1].started_at == T0 + 5 * 500 * 60 + 499 * 60
    assert size.endswith(" of 0.3 MB used")
    if on_disk:
        files = await asyncio.to_thread(lambda: [f.stat().st_size for f in tmp_path.iterdir()])
        assert sum(files) < 2 * limit, files


async def test_past_its_size_the_history_drops_older_steps_before_any_run(tmp_path: Path) -> None:
    """Over max_bytes, the steps of runs older than an hour go first (oldest first): every
    run's summary stays, and the last hour's runs keep their steps."""
    now = T0 + 3000 * 60
    async with opened(tmp_path, max_bytes=800_000, clock=lambda: now) as history:
        for result in numbered(3000):
            history.export(result)
        kept = await history.read(summaries_between, 0, now + 1)
        newest, oldest = await history.read(run, "run-02999"), await history.read(run, "run-00000")
        used = history.status.detail
    assert len(kept) == 3000
    assert newest is not None
    assert len(newest.steps) == 3
    assert oldest is not None
    assert oldest.steps == ()
    assert used.endswith(" of 0.8 MB used")


async def test_without_a_data_dir_it_lives_in_memory(tmp_path: Path) -> None:
    """No folder: nothing is written to disk, and the runs are read back all the same."""
    async with opened(None) as history:
        for result in results():
            history.export(result)
        newest = await history.read(last_runs, "partner-order", 5)
        status = history.status
    assert [r.run_id for r in newest] == ["r5", "r4"]
    assert status.available
    assert "in memory (no --data-dir)" in status.detail


def test_streaks_end_at_a_success_and_ignore_aborted_runs() -> None:
    """Consecutive failures form one streak until the next success; aborted and
    not-started runs neither end nor extend it."""

    def summary(i: int, outcome: Outcome) -> RunSummary:
        reason = FailureReason.ASSERTION if outcome is Outcome.FAILURE else None
        step = "pay" if outcome is Outcome.FAILURE else None
        return RunSummary(f"s{i}", "j", "p", float(i), 1.0, outcome, 1, reason, step)

    outcomes = [Outcome.SUCCESS, Outcome.FAILURE, Outcome.ABORTED, Outcome.FAILURE,
                Outcome.NOT_STARTED, Outcome.SUCCESS, Outcome.FAILURE]  # fmt: skip
    found = streaks(summary(i, o) for i, o in enumerate(outcomes))
    assert [(s.start, s.end, s.failures, s.failed_step) for s in found] == [
        (1.0, 5.0, 2, "pay"),
        (6.0, None, 1, "pay"),
    ]


async def test_an_unavailable_history_shows_on_readyz_the_page_and_metrics(
    tmp_path: Path,
) -> None:
    """With the history unavailable /readyz stays 200 and says why; ?verbose always
    lists it; the page says history is unavailable and still shows the runs it has."""
    (tmp_path / FILE_NAME).write_bytes(b"garbage" * 1000)
    registry = CollectorRegistry()
    async with opened(tmp_path, registry=registry) as history:
        board = StatusBoard(history, location="lab")
        await board.start()
        board.set_inventory([checkout()], catalog())
        for result in results()[:3]:
            board.export(result)
            history.export(result)
        async with serving(board, registry) as http:
            ready = await http.get("/readyz")
            page = (await http.get("/")).text
            journey = (await http.get("/journeys/checkout")).text
            metrics = (await http.get("/metrics")).text
    assert ready.status_code == 200
    assert ready.text.startswith("ready\nhistory: unavailable: ")
    assert "is corrupt" in ready.text
    assert "History is unavailable" in page
    assert "Order to cash" in page
    assert "History is unavailable" in journey
    assert "log in" in journey
    assert "journeyman_history_up 0.0" in metrics
    assert 'journeyman_history_errors_total{operation="open"}' in metrics


async def test_readyz_verbose_says_where_the_history_is(tmp_path: Path) -> None:
    """/readyz is exactly "ready" with a working history, and ?verbose adds its line."""
    async with opened(tmp_path) as history:
        board = StatusBoard(history)
        async with serving(board) as http:
            plain, verbose = await http.get("/readyz"), await http.get("/readyz?verbose")
    assert plain.text == "ready\n"
    assert verbose.text == f"ready\nhistory: ok: {tmp_path / FILE_NAME}, 0.0 of 500 MB used\n"


# -- a real full disk and a real read-only folder, in a child process ---------------------

CHILD = """
import asyncio, json, sys
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, "tests")
from prometheus_client import CollectorRegistry
from test_prometheus_samples import catalog, checkout, results
from exporters.history import History
from exporters.history_queries import last_runs
from exporters.status import StatusBoard
from exporters.status_page import render_overview

async def main(folder: Path, fill: bool) -> dict:
    registry = CollectorRegistry()
    history = History(folder, registry=registry, retry_after=0.0)
    board = StatusBoard(history)
    await history.start()
    await board.start()
    board.set_inventory([checkout()], catalog())
    seen = {"opened": history.status.detail}
    ballast = folder / "ballast"
    if fill:  # take the rest of the small file system
        with open(ballast, "wb") as out:
            try:
                while True:
                    out.write(b"x" * 65536)
                    out.flush()
            except OSError:
                pass
    template = results()[0]
    for i in range(300):
        result = replace(template, run_id=f"c{i}", started_at=template.started_at + i)
        history.export(result)
        board.export(result)
    try:
        await history.read(last_runs, "checkout", 1)
    except Exception as error:
        seen["read"] = type(error).__name__
    seen["status"] = history.status.detail
    seen["available"] = history.status.available
    seen["errors"] = {op: registry.get_sample_value(
        "journeyman_history_errors_total", {"operation": op}) for op in ("open", "write")}
    seen["up"] = registry.get_sample_value("journeyman_history_up")
    seen["page"] = "History is unavailable" in render_overview(board.overview(), "v")
    seen["board"] = board.overview().processes[0].journeys[0].last.run_id
    if fill:
        ballast.unlink()
        seen["after"] = len(await history.read(last_runs, "checkout", 1000))
        seen["available_after"] = history.status.available
    await history.close()
    return seen

print(json.dumps(asyncio.run(main(Path(sys.argv[1]), sys.argv[2] == "fill"))))
"""


def _child(folder: Path, mode: str, mount: str | None) -> dict[str, Any]:
    """Run CHILD on ``folder``; as root inside a private mount namespace where ``mount``
    (a shell command on $D) has been run first."""
    argv = [sys.executable, "-c", CHILD, str(folder), mode]
    if mount is not None:
        script = f'D="$1"; shift; {mount} && exec "$@"'
        argv = ["unshare", "--mount", "sh", "-c", script, "sh", str(folder), *argv]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=90, check=False)
    if done.returncode != 0 and mount is not None and "mount" in done.stderr:
        pytest.skip(f"cannot mount here: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _root_or_skip(why: str) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip(why)


def test_a_full_disk_is_reported_survived_and_recovered(tmp_path: Path) -> None:
    """On a real file system that fills up, writes fail as "disk is full" (counted, up 0),
    exports go on, the page says history is unavailable and the board still shows the
    last run; once space is freed the queued runs are written."""
    _root_or_skip("mounting a small file system needs root")
    folder = tmp_path / "small"
    folder.mkdir()
    seen = _child(folder, "fill", 'mount -t tmpfs -o size=1m tmpfs "$D"')
    assert seen["opened"].startswith("ok: ")
    assert not seen["available"]
    assert "the disk is full" in seen["status"], seen
    assert seen["errors"]["write"] >= 1
    assert seen["up"] == 0
    assert seen["page"] is True
    assert seen["board"] == "c299"
    assert seen["after"] == 300
    assert seen["available_after"] is True


def test_a_read_only_folder_is_reported_and_survived(tmp_path: Path) -> None:
    """A --data-dir that cannot be written leaves the history unavailable (said, counted),
    while exports and the live board go on."""
    folder = tmp_path / "data"
    folder.mkdir()
    if os.geteuid() == 0:
        _root_or_skip("a read-only bind mount needs unshare")
        mount = 'mount --bind "$D" "$D" && mount -o remount,ro,bind "$D"'
        seen = _child(folder, "plain", mount)
    else:
        folder.chmod(0o555)
        try:
            seen = _child(folder, "plain", None)
        finally:
            folder.chmod(0o755)
    assert not seen["available"]
    assert "read-only" in seen["status"], seen
    assert str(folder) in seen["status"]
    assert seen["errors"]["open"] >= 1
    assert seen["up"] == 0
    assert seen["page"] is True
    assert seen["board"] == "c299"


def test_render_overview_escapes_names(tmp_path: Path) -> None:
    """A journey title with markup renders as text on the overview."""
    board = StatusBoard()
    board.set_inventory([checkout(title="<img src=x onerror=alert(1)>")], catalog())
    page = render_overview(board.overview(), "v1")
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
