"""CPU per HTTP step and reported-minus-true duration: the whole agent against
blackbox_exporter, raw httpx and raw aiohttp, at the same rate, against the same target,
interleaved.

Load: 100 HTTP steps per second (the agent: 200 one-step journeys every 2 s) against a
loopback target (``bench/timed_target.py``, its own process) that answers each request
after 200 ms, so ~20 requests are in flight. Arms, each a process of its own whose CPU
is read from /proc/PID/stat over the window (user + system, all threads):

- **journeyman**: ``journeyman run`` on the generated folder, as deployed (scheduler,
  runner, every exporter, JSON logs at info), ``--max-concurrency 64``, scraped every 5 s
  (OpenMetrics, gzip). A fresh agent per window, measured after a warm-up of two intervals.
- **blackbox_exporter** (Debian's ``prometheus-blackbox-exporter``, an ``http`` module):
  this process calls ``/probe`` at the same rate and reads ``probe_duration_seconds``;
  scraped every 5 s too.
- **raw httpx** and **raw aiohttp** (``bench/raw_client.py``): a GET on a new
  connection per request, timed with ``perf_counter`` around it; aiohttp with a
  ``TraceConfig`` hooked, the candidate leaner client stack.

Steps are counted by the target: responses written within the window. "Reported minus
true" is the duration each arm reports for a request minus the time the target held it
(answer written minus request arrived); the agent's is the step's duration in its
``journey_run`` log line (or, from agents before that line carried it, the
``journey_step`` line), matched to the request by the trace id of its ``traceparent``.
Arms take turns in windows, their order rotating each round; every figure is the median
[min..max] over the windows of an arm, durations pooled over all its requests.

Run: ``.venv/bin/python -m bench.http_step [--quick] [--rounds R] [--window S]``.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.agent_child import start_agent
from bench.common import (
    Row,
    bench_arguments,
    cpu_seconds,
    free_port,
    load_average,
    quantile,
    spread,
    write_rows,
)
from bench.pacing import pace

RATE = 100.0  # steps per second
DELAY = 0.2  # the target's answer time
JOURNEYS, INTERVAL = 200, 2.0
SCRAPE_EVERY = 5.0
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
_PROBE_DURATION = re.compile(rb"^probe_duration_seconds ([0-9.e+-]+)$", re.M)


@dataclass
class Window:
    arm: str
    cpu: float = 0.0  # seconds of the arm's process
    steps: int = 0  # answers the target wrote within the window
    errors: list[float] = field(default_factory=list)  # reported minus true, seconds
    failed: int = 0
    seconds: float = 0.0  # the window's length, as measured

    @property
    def cpu_per_step(self) -> float:
        return self.cpu / self.steps if self.steps else float("nan")


class Harness:
    """The target, blackbox_exporter, and one window of each arm."""

    def __init__(self, session: aiohttp.ClientSession, target: str, blackbox: str, folder: Path):
        self.session, self.target, self.blackbox, self.folder = session, target, blackbox, folder

    async def records(self) -> dict[str, list[float]]:
        async with self.session.get(f"{self.target}/__records") as response:
            records: dict[str, list[float]] = await response.json()
            return records

    async def scrape(self, url: str, seconds: float) -> None:
        """GETs of /metrics every 5 s within ``seconds`` (the first after 2.5 s), as
        Prometheus would."""
        headers = {"Accept": ACCEPT, "Accept-Encoding": "gzip"}
        loop = asyncio.get_running_loop()
        start, at = loop.time(), SCRAPE_EVERY / 2
        while at < seconds:
            await asyncio.sleep(start + at - loop.time())
            async with self.session.get(f"{url}/metrics", headers=headers) as response:
                await response.read()
            at += SCRAPE_EVERY


async def journeyman(h: Harness, seconds: float) -> Window:
    window, reported = Window("journeyman"), {}

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "journey_step":  # agents before one line per run
            reported[event["trace_id"]] = float(event["duration_seconds"])
        if event.get("event") != "journey_run":
            return
        if "page" in event.get("steps", {}):  # a run that never started has no steps
            reported[event["trace_id"]] = float(event["steps"]["page"])
        if event.get("outcome") in ("failure", "not_started"):
            window.failed += 1

    agent = await start_agent(h.folder, "--max-concurrency", "64", on_event=on_event)
    try:
        url = await agent.started()
        await asyncio.sleep(2 * INTERVAL)
        return await _window(h, window, agent.pid, seconds, reported, h.scrape(url, seconds))
    finally:
        await agent.stop()


async def blackbox_exporter(h: Harness, seconds: float, pid: int) -> Window:
    window, reported = Window("blackbox_exporter"), {}

    async def probe(n: int) -> None:
        path = f"/b/{n}"
        query = {"module": "http", "target": f"{h.target}{path}"}
        async with h.session.get(f"{h.blackbox}/probe", params=query) as response:
            body = await response.read()
        found = _PROBE_DURATION.search(body)
        if b"\nprobe_success 1" in body and found:
            reported[path] = float(found.group(1))
        else:
            window.failed += 1

    await pace(RATE, 1.0, probe)  # warm: connections to the exporter, its caches
    drive = asyncio.gather(pace(RATE, seconds, probe), h.scrape(h.blackbox, seconds))
    return await _window(h, window, pid, seconds, reported, drive)


async def raw_client(h: Harness, seconds: float, client: str) -> Window:
    window, reported = Window(f"raw {client}"), {}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.raw_client", client, h.target, str(RATE),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    stdout = process.stdout

    async def read() -> None:
        while line := await stdout.readline():
            path, _, value = line.decode().partition(" ")
            if value:
                reported[path] = float(value)

    reader = asyncio.create_task(read())
    try:
        await asyncio.sleep(2.0)  # imports, then a second of requests
        return await _window(h, window, process.pid, seconds, reported, asyncio.sleep(0))
    finally:
        process.terminate()
        await process.wait()
        await reader


async def _window(
    h: Harness,
    window: Window,
    pid: int,
    seconds: float,
    reported: dict[str, float],
    drive: Awaitable[Any],
) -> Window:
    """The arm's CPU over ``seconds`` while ``drive`` runs; steps and errors from the target."""
    await h.records()  # forget the warm-up
    cpu, started = cpu_seconds(pid), time.monotonic()
    await asyncio.gather(asyncio.sleep(seconds), drive)
    window.cpu, ended = cpu_seconds(pid) - cpu, time.monotonic()
    window.seconds = ended - started
    await asyncio.sleep(DELAY * 2 + 0.3)  # the last answers, and their log lines
    for key, (arrived, sent) in (await h.records()).items():
        if started <= sent <= ended:
            window.steps += 1
            if key in reported:
                window.errors.append(reported[key] - (sent - arrived))
    return window


def write_journeys(folder: Path, target: str) -> None:
    for i in range(JOURNEYS):
        (folder / f"j{i:03d}.yaml").write_text(
            f"journey: j{i:03d}\nbusiness_process: bench\n"
            f"schedule: {{every: {INTERVAL:g}s, timeout: 1s}}\n"
            f'steps:\n  - name: page\n    http: {{get: "{target}/j/{i}"}}\n'
            f"    expect: {{status: 200}}\n"
        )


def blackbox_config(folder: Path) -> Path:
    config = folder / "blackbox.yml"
    config.write_text(
        "modules:\n  http:\n    prober: http\n    timeout: 5s\n"
        "    http:\n      preferred_ip_protocol: ip4\n"
    )
    return config


def report(windows: list[Window]) -> list[Row]:
    arms = {w.arm: [x for x in windows if x.arm == w.arm] for w in windows}
    print(f"  {'arm':<18} {'CPU ms per step':<24} {'steps/s':<22} "
          f"{'reported - true ms: p50':<24} {'p99':<10} failed")  # fmt: skip
    cpu: dict[str, float] = {}
    error: dict[str, tuple[float, float]] = {}
    for arm, mine in arms.items():
        errors = [e for w in mine for e in w.errors]
        cpu[arm] = statistics.median(w.cpu_per_step for w in mine)
        error[arm] = (quantile(errors, 0.5), quantile(errors, 0.99))
        rates = [w.steps / w.seconds for w in mine]
        print(f"  {arm:<18} {spread([w.cpu_per_step for w in mine], 1000, 2):<24} "
              f"{spread(rates, 1, 0):<22} {error[arm][0] * 1000:<24.2f} "
              f"{error[arm][1] * 1000:<10.2f} {sum(w.failed for w in mine)}"
              f" ({len(errors)} matched)")  # fmt: skip
    ours, bb = cpu["journeyman"], cpu["blackbox_exporter"]
    print("  CPU per step against blackbox_exporter: "
          + ", ".join(f"{arm} {value / bb:.2f}x" for arm, value in cpu.items()))  # fmt: skip
    rows = [
        Row("http_step", "CPU per HTTP step, whole agent, 100 steps/s", ours * 1e3,
            "blackbox_exporter", bb * 1e3, "ms", "<= 1.0x"),
    ] + [
        Row("http_step", "CPU per HTTP step, whole agent, 100 steps/s", ours * 1e3,
            arm, cpu[arm] * 1e3, "ms")
        for arm in ("raw httpx", "raw aiohttp")
    ]  # fmt: skip
    for label, index, goal in (("median", 0, "<= 1 ms"), ("p99", 1, "<= 3 ms")):
        rows.append(Row("http_step", f"reported minus true duration, {label}",
                        error["journeyman"][index] * 1e3, "blackbox_exporter",
                        error["blackbox_exporter"][index] * 1e3, "ms", goal))  # fmt: skip
    return rows


async def run(
    rounds: int, seconds: float, target: str, blackbox: tuple[str, int], folder: Path
) -> list[Row]:
    """``rounds`` windows of each arm, their order rotating each round."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        h = Harness(session, target, blackbox[0], folder)
        await asyncio.sleep(0.5)  # the exporter binds its port
        arms: list[Callable[[], Awaitable[Window]]] = [
            lambda: journeyman(h, seconds),
            lambda: blackbox_exporter(h, seconds, blackbox[1]),
            lambda: raw_client(h, seconds, "httpx"),
            lambda: raw_client(h, seconds, "aiohttp"),
        ]
        windows = []
        for n in range(rounds):
            for arm in arms[n % len(arms) :] + arms[: n % len(arms)]:
                windows.append(await arm())
    return report(windows)


@contextmanager
def processes(folder: Path) -> Iterator[tuple[str, tuple[str, int]]]:
    """The target and blackbox_exporter, running: their URLs (and the exporter's pid)."""
    port = free_port()
    command = [BLACKBOX, f"--config.file={blackbox_config(folder)}",
               f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    serve = [sys.executable, "-m", "bench.timed_target", str(DELAY)]
    with (
        subprocess.Popen(serve, stdout=subprocess.PIPE, text=True) as target,
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as exporter,
    ):
        try:
            assert target.stdout is not None
            url = f"http://127.0.0.1:{target.stdout.readline().strip()}"
            yield url, (f"http://127.0.0.1:{port}", exporter.pid)
        finally:
            exporter.terminate()
            target.terminate()


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("--rounds", type=int, help="windows per arm (default 3, quick 2)")
    parser.add_argument("--window", type=float, help="seconds per window (default 10, quick 6)")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 3)
    seconds = args.window or (6.0 if args.quick else 10.0)
    print(f"bench/http_step.py: {RATE:g} HTTP steps/s against a loopback target answering "
          f"after {DELAY * 1000:g} ms; {rounds} windows of {seconds:g} s per arm, interleaved; "
          f"load average {load_average()}")  # fmt: skip
    with tempfile.TemporaryDirectory() as temporary, processes(Path(temporary)) as (url, bb):
        journeys = Path(temporary) / "journeys"
        journeys.mkdir()
        write_journeys(journeys, url)
        rows = asyncio.run(run(rounds, seconds, url, bb, journeys))
    print(f"load average at the end: {load_average()}")
    write_rows(args.rows, rows)


if __name__ == "__main__":
    main()
