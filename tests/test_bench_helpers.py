"""The benchmarks' shared parts: open-loop pacing, the target's server-side records,
/proc readings, and the ratio table."""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import time
from pathlib import Path

import pytest

from bench.all import table
from bench.browser_overhead import paired
from bench.common import Row, cpu_seconds, pss_mb, quantile, read_rows, spread, write_rows
from bench.pacing import pace
from bench.scale import SAME, Window, difference_interval, verdict
from bench.timed_target import Target


async def test_pace_starts_calls_without_waiting_for_earlier_ones() -> None:
    """An open loop: rate x seconds calls started, the slow ones overlapping."""
    running, most = 0, 0

    async def call(n: int) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1

    started = await pace(200, 0.05, call)
    assert started == 10
    assert most > 1
    assert running == 0  # pace waited for the last ones


async def test_target_keys_requests_by_trace_id_else_path() -> None:
    """The target records arrival and answer per trace id (or path), then forgets them."""
    Target.delay, Target.records = 0.01, {}
    server = await asyncio.get_running_loop().create_server(Target, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def get(path: str, extra: str = "") -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
        writer.close()
        return body

    trace = "0af7651916cd43dd8448eb211c80319c"
    assert b"Welcome" in await get("/j/1", f"traceparent: 00-{trace}-b7ad6b7169203331-01\r\n")
    await get("/h/7")
    records = await get("/__records")
    server.close()
    kept = json.loads(records)
    assert set(kept) == {trace, "/h/7"}
    assert all(sent >= arrived > 0 for arrived, sent in kept.values())
    assert Target.records == {}


def test_proc_readings_of_this_process() -> None:
    """CPU and PSS of a live process come from /proc; a gone one counts as nothing."""
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # burn some CPU to read back
        pass
    assert cpu_seconds(os.getpid()) > 0
    assert pss_mb([os.getpid()]) > 1
    assert pss_mb([2**22 + 1]) == 0  # above pid_max: no such process


def test_spread_and_quantile() -> None:
    """median [min..max] and the nearest-rank quantile."""
    assert spread([3.0, 1.0, 2.0], 1000, 0) == "2000 [1000..3000]"
    assert spread([]) == "-"
    assert quantile([float(n) for n in range(100)], 0.99) == 99.0
    assert math.isnan(quantile([], 0.5))


def test_rows_round_trip_into_one_table(tmp_path: Path) -> None:
    """Rows appended by several benches come back in order and print with their ratios."""
    path = tmp_path / "rows.jsonl"
    write_rows(path, [Row("a", "CPU per step", 3.0, "blackbox_exporter", 1.5, "ms", "<= 1.0x")])
    write_rows(path, [Row("b", "largest N", 1000.0, "", float("nan"), "journeys")])
    write_rows(path, [Row("b", "none found", float("nan"), "", float("nan"), "journeys")])
    write_rows(path, [Row("c", "loop stall", 4.5, "prometheus-client", 1283.0, "ms")])
    write_rows(path, [Row("e", "wall", 303.0, "raw Playwright", 268.0, "ms", paired=0.98)])
    write_rows(None, [Row("d", "ignored", 1.0, "x", 1.0, "ms")])
    rows = read_rows(path)
    assert [r.bench for r in rows] == ["a", "b", "b", "c", "e"]
    text = table(rows, {"a": ("1.00 1.00 1.00", "2.00 1.00 1.00")}, True, 60.0)
    assert "| a | CPU per step | 3 ms | blackbox_exporter | 1.5 ms | **2.00x** | <= 1.0x |" in text
    assert "| b | largest N | 1,000 journeys | — | — | — |  |" in text
    assert "| b | none found | — | — | — | — |  |" in text
    assert "| c | loop stall | 4.5 ms | prometheus-client | 1,283 ms | **0.0035x** |  |" in text
    assert "a 1.00 1.00 1.00 → 2.00 1.00 1.00" in text
    # paired rounds: the median of their ratios, not the ratio of the medians (1.13x)
    assert "| e | wall | 303 ms | raw Playwright | 268 ms | **0.98x** |  |" in text


def test_paired_ratio_is_the_median_of_the_rounds_ratios() -> None:
    """The machine halves its speed during round 3, between the two arms' runs: the ratio
    of the medians reads that as 2.1x overhead, the per-round ratios as the 1.05x it is."""
    raw = [0.20, 0.20, 0.20, 0.40, 0.40]
    ours = [0.21, 0.21, 0.42, 0.42, 0.42]
    assert statistics.median(ours) / statistics.median(raw) == pytest.approx(2.1)
    assert paired(ours, raw) == pytest.approx(1.05)


def test_runs_during_a_scrape_and_the_difference_interval() -> None:
    """A run counts as during a scrape from the request to the last byte; the interval of
    identical arms is 0 ms, and +p99 when the scraped arm is twice as late in every window
    (the difference is scraped minus not scraped)."""
    window = Window("scraped", lags=[0.001, 0.006, 0.002], started=[10.0, 10.01, 10.05])
    window.asked, window.scrapes = [10.005], [(0.02, 500, 10_000)]
    assert window.during_scrapes() == [0.006]
    alike = [Window(arm, lags=[n / 1000 for n in range(1, 101)])
             for arm in ("no scrapes", "scraped") * 4]  # fmt: skip
    assert difference_interval(alike, rounds=200) == (0.0, 0.0)
    slower = [Window(w.arm, lags=[lag * (2 if w.arm == "scraped" else 1) for lag in w.lags])
              for w in alike]  # fmt: skip
    p99 = quantile(alike[0].lags, 0.99)
    assert difference_interval(slower, rounds=200) == pytest.approx((p99, p99))


def test_verdict_needs_the_whole_interval_within_the_margin() -> None:
    """Only an interval within +-SAME is "the same"; one above it, a delay; one below it,
    the machine; else no call."""
    assert verdict(-SAME / 2, SAME / 2).startswith("the same")
    assert verdict(SAME * 1.1, SAME * 3).startswith("scrapes delay runs")
    assert verdict(-SAME / 2, SAME * 1.5).startswith("cannot tell")
    assert verdict(-SAME * 2, 0.0).startswith("cannot tell")
    assert verdict(-SAME * 3, -SAME * 1.1).startswith("the scraped arm ran earlier")
