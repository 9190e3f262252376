"""The whole agent at scale: do scrapes of /metrics delay the runs it schedules?

The agent (``agent.app.run_agent``: scheduler, runner, every exporter, logs at info to
/dev/null, the HTTP endpoint) runs in this process against a loopback HTTP target in a
child process that answers each request after ~1 ms. N generated journeys of 3 HTTP
steps each run every 15 s. A second child process plays Prometheus: a GET of /metrics
asking for OpenMetrics and gzip, as Prometheus does, timed from request to last byte
(it inflates only the first body: unlike a real Prometheus, it shares the agent's cores).

Arms: after a warm-up (the first runs spread over one interval), windows of 10 s
alternate between "no scrapes" and "scraped" (a scrape 2.5 s and 7.5 s into the window:
every 5 s), so both arms see the same machine and the same agent. Per window:

- scheduler lag of every run started in it: start minus due time, as the scheduler's own
  ``journeyman_scheduler_lag_seconds`` measures it, but recorded exactly (not bucketed)
  by a Scheduler subclass; p50, p99, and the share of runs starting > 100 ms late;
- runs started as a share of runs due (below 100%: the agent is saturated, and its lag
  grows from window to window whatever the arm);
- CPU cores used by this process (the agent; target and scraper excluded);
- gen-2 garbage collections (count; longest, in wall time and in CPU time: on a busy
  machine the wall time includes waiting for a core) and the longest stall of the event
  loop (a 20 ms sleep that woke late);
- per scrape: duration and size (gzipped, and inflated), and the lag of the runs that
  started while one was served (request to last byte): those a scrape could delay.

Each arm prints the median [min..max] over its windows, and the lag pooled over all its
runs; the difference of the pooled p99s, scraped minus not, comes with a 95% bootstrap
interval (each arm's windows resampled). "Scrapes change nothing" when that interval lies
within +-2.5 ms (a tenth of the 25 ms goal): a difference so small that a user planning
with the goal would not see it, and one this machine can resolve (the ratio of the two
p99s could not: it moved 0.76-1.29x between runs of the same code).
Memory per journey: the PSS this process gained from before the agent started to the end
of its windows, divided by N. Then, within the time budget, shorter probes (a
fresh agent, scraped windows only) look for the largest N whose lag p99 stays under
25 ms with scrapes: halving or growing by half until bracketed, then bisection to 5%.

Run: ``.venv/bin/python -m bench.scale [--quick] [--journeys N] [--windows K]
[--budget SECONDS]`` (defaults: 1,000 journeys, 6 windows per arm, 230 s in all;
``--quick``, as ``make bench`` runs it: 4 windows per arm, 190 s; for the bisection to
converge give it ``--budget 900``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import multiprocessing
import os
import random
import statistics
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from unittest import mock

import agent.app
from agent.language.model import Journey
from agent.logconfig import configure_logging
from agent.run.results import RunResult
from agent.schedule.scheduler import Scheduler
from bench.common import Row, bench_arguments, load_average, pss_mb, quantile, spread, write_rows

INTERVAL = 15.0  # every journey runs once per interval
WINDOW = 10.0
SCRAPES_AT = (2.5, 7.5)  # seconds into a scraped window: one scrape every 5 s
LATE = 0.1  # a run starting later than this counts as late
GOAL = 0.025  # lag p99 the issue asks for, with scrapes
# "Scrapes change nothing": the p99s of the two arms differ by less than a tenth of GOAL.
# Their ratio is no test of it: two p99s of ~3 ms on a shared 2-core machine move by 30%
# from run to run whatever the arm.
SAME = 0.1 * GOAL
ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"


# --- the child processes ------------------------------------------------------------------


PAGE = b"<html><body>Welcome to the shop</body></html>"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (
    len(PAGE),
    PAGE,
)


class _Target(asyncio.Protocol):
    """Answers every request on a kept-alive connection after ~1 ms (GETs: no bodies)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport, self._pending = transport, b""

    def data_received(self, data: bytes) -> None:
        self._pending += data
        while b"\r\n\r\n" in self._pending:
            _, self._pending = self._pending.split(b"\r\n\r\n", 1)
            asyncio.get_running_loop().call_later(0.001, self._answer)

    def _answer(self) -> None:
        if not self._transport.is_closing():
            self._transport.write(ANSWER)


def serve_target(port_out: Connection) -> None:
    """The child process: a lean loopback HTTP target (lighter on the shared cores than a
    web framework), which sends its port and serves until killed."""

    async def forever() -> None:
        server = await asyncio.get_running_loop().create_server(_Target, "127.0.0.1", 0)
        port_out.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(forever())


def scrape_on_demand(commands: Connection) -> None:
    """Prometheus, on cue: each ``port`` received is one GET of /metrics, answered with
    (seconds, gzipped bytes, inflated bytes); ``None`` ends the process. Only a port's
    first body is inflated (~30 ms of CPU at 1,000 journeys): a real Prometheus parses on
    cores of its own, and this one shares the agent's two."""
    inflated: dict[int, int] = {}
    while (port := commands.recv()) is not None:
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Accept": ACCEPT, "Accept-Encoding": "gzip"}
        try:
            connection.request("GET", "/metrics", headers=headers)
            body = connection.getresponse().read()
            seconds = time.perf_counter() - started
            if port not in inflated:
                inflated[port] = len(zlib.decompress(body, 31))
            commands.send((seconds, len(body), inflated[port]))
        except (OSError, http.client.HTTPException, zlib.error) as error:
            commands.send(repr(error))
        finally:
            connection.close()


# --- what one window measured -------------------------------------------------------------


@dataclass
class Window:
    arm: str
    lags: list[float] = field(default_factory=list)
    started: list[float] = field(default_factory=list)  # when each of those runs started
    gc_pauses: list[tuple[float, float]] = field(default_factory=list)  # gen-2: wall, CPU s
    stall: float = 0.0  # longest late wake-up of the loop probe, seconds
    cores: float = 0.0
    scrapes: list[tuple[float, int, int]] = field(default_factory=list)
    asked: list[float] = field(default_factory=list)  # when each scrape was asked for
    errors: list[str] = field(default_factory=list)

    def p(self, q: float) -> float:
        return quantile(self.lags, q)

    def late(self) -> float:
        return sum(lag > LATE for lag in self.lags) / max(len(self.lags), 1)

    def during_scrapes(self) -> list[float]:
        """The lags of the runs that started while a scrape was served (asked, to its
        last byte)."""
        served = [(asked, asked + s[0]) for asked, s in zip(self.asked, self.scrapes, strict=False)]
        return [lag for lag, at in zip(self.lags, self.started, strict=True)
                if any(begin <= at <= end for begin, end in served)]  # fmt: skip


class Probe:
    """Where the measurements of the current window go."""

    def __init__(self) -> None:
        self.window = Window("warm-up")
        self._gc_started = (0.0, 0.0)

    def lag(self, seconds: float) -> None:
        self.window.lags.append(seconds)
        self.window.started.append(time.monotonic())

    def scrape(self, scraper: Connection, port: int) -> None:
        self.window.asked.append(time.monotonic())
        scraper.send(port)

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._gc_started = (time.perf_counter(), time.thread_time())
        else:
            wall, cpu = self._gc_started
            pause = (time.perf_counter() - wall, time.thread_time() - cpu)
            self.window.gc_pauses.append(pause)

    async def loop_stalls(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(0.02)
            self.window.stall = max(self.window.stall, time.perf_counter() - asked - 0.02)


def lag_scheduler(probe: Probe) -> type[Scheduler]:
    """The agent's scheduler, recording each run's lag exactly as it observes it."""

    class MeasuredScheduler(Scheduler):
        async def _measured_run(self, journey: Journey, planned: float) -> RunResult:
            probe.lag(max(0.0, time.monotonic() - planned))
            return await super()._measured_run(journey, planned)

    return MeasuredScheduler


# --- one agent, measured over windows -----------------------------------------------------


def write_journeys(folder: Path, count: int, target: str) -> None:
    steps = "".join(
        f'  - name: {name}\n    http: {{get: "{target}{path}"}}\n    expect: {{status: 200}}\n'
        for name, path in (("home", "/"), ("search", "/search?q=mug"), ("item", "/item/42"))
    )
    for i in range(count):
        (folder / f"journey-{i:05d}.yaml").write_text(
            f"journey: journey-{i:05d}\nbusiness_process: process-{i % 20:02d}\n"
            f"owner: team-{i % 7}\nschedule: {{every: {INTERVAL:g}s, timeout: 5s}}\n"
            f"slo: {{latency: {{threshold: 1s, objective: 99%}}}}\nsteps:\n{steps}"
        )


@contextmanager
def gc_watched(probe: Probe) -> Iterator[None]:
    gc.callbacks.append(probe.on_gc)
    try:
        yield
    finally:
        gc.callbacks.remove(probe.on_gc)


async def measure_agent(
    count: int, target: str, arms: list[str], scraper: Connection, warm_up: float
) -> tuple[list[Window], float]:
    """Start an agent with ``count`` journeys, warm up, then one window per arm listed.
    Also: the PSS the agent added to this process by the end of its windows, in MB."""
    probe = Probe()
    windows: list[Window] = []
    before = pss_mb([os.getpid()])
    with tempfile.TemporaryDirectory() as folder, gc_watched(probe):
        write_journeys(Path(folder), count, target)
        settings = agent.app.Settings(paths=(Path(folder),), listen="127.0.0.1:0", location="bench")
        stop, urls = asyncio.Event(), asyncio.Queue[str]()
        with mock.patch.object(agent.app, "Scheduler", lag_scheduler(probe)):
            running = asyncio.create_task(
                agent.app.run_agent(settings, stop, environ={}, on_listening=urls.put_nowait)
            )
            port = int((await urls.get()).rsplit(":", 1)[1])
            stalls = asyncio.create_task(probe.loop_stalls())
            await asyncio.sleep(warm_up)
            loop = asyncio.get_running_loop()
            for arm in arms:
                window = probe.window = Window(arm)
                cpu, wall = time.process_time(), time.monotonic()
                if arm == "scraped":
                    for offset in SCRAPES_AT:
                        loop.call_later(offset, probe.scrape, scraper, port)
                await asyncio.sleep(WINDOW)
                window.cores = (time.process_time() - cpu) / (time.monotonic() - wall)
                for _ in SCRAPES_AT if arm == "scraped" else ():
                    answer = await asyncio.to_thread(scraper.recv)
                    if isinstance(answer, str):
                        window.errors.append(answer)
                    else:
                        window.scrapes.append(answer)
                windows.append(window)
            grown = pss_mb([os.getpid()]) - before
            stop.set()
            stalls.cancel()
            await running
    return windows, grown


# --- printing -------------------------------------------------------------------------------


def report(title: str, windows: list[Window], count: int) -> dict[str, float]:
    """Print one line per arm; return the pooled lag p99 of each arm, in seconds."""
    print(title)
    columns = (
        ("lag p50 ms", 18),
        ("lag p99 ms", 24),
        ("late >100ms %", 18),
        ("started/due %", 15),
        ("cores", 18),
        ("gen-2 GC: n, max wall/CPU ms", 29),
    )
    print(f"  {'arm':<11} " + " ".join(f"{name:<{width}}" for name, width in columns)
          + " loop stall ms")  # fmt: skip
    due = count * WINDOW / INTERVAL
    pooled: dict[str, float] = {}
    for arm in dict.fromkeys(w.arm for w in windows):
        mine = [w for w in windows if w.arm == arm]
        lags = [lag for w in mine for lag in w.lags]
        pauses = [p for w in mine for p in w.gc_pauses]
        pooled[arm] = quantile(lags, 0.99)
        gc_text = "0"
        if pauses:
            longest = max(wall for wall, _ in pauses), max(cpu for _, cpu in pauses)
            gc_text = f"{len(pauses)}, {longest[0] * 1000:.0f}/{longest[1] * 1000:.0f}"
        print(
            f"  {arm:<11} {spread([w.p(0.5) for w in mine], 1000, 1):<18} "
            f"{spread([w.p(0.99) for w in mine], 1000, 1):<24} "
            f"{spread([w.late() for w in mine], 100, 2):<18} "
            f"{spread([len(w.lags) / due for w in mine], 100, 0):<15} "
            f"{spread([w.cores for w in mine], 1, 2):<18} {gc_text:<29} "
            f"{spread([w.stall for w in mine], 1000, 0)}"
        )
    print("  lag p99 over all runs of the arm (pooled): "
          + ", ".join(f"{arm} {p99 * 1000:.1f} ms" for arm, p99 in pooled.items()))  # fmt: skip
    scrapes = [s for w in windows for s in w.scrapes]
    if scrapes:
        print(
            f"  scrape: {spread([s[0] for s in scrapes], 1000, 1)} ms to the last byte, "
            f"{statistics.median(s[1] for s in scrapes) / 1e3:.0f} kB gzipped, "
            f"{statistics.median(s[2] for s in scrapes) / 1e6:.1f} MB inflated "
            f"({len(scrapes)} scrapes)"
        )
        during = [lag for w in windows for lag in w.during_scrapes()]
        unscraped = [lag for w in windows if w.arm == "no scrapes" for lag in w.lags]
        if during and unscraped:
            print(f"  runs started while a scrape was served: {len(during)}, lag p50 "
                  f"{quantile(during, 0.5) * 1e3:.1f} ms, max {max(during) * 1e3:.1f} ms; "
                  f"runs of the windows not scraped: p50 {quantile(unscraped, 0.5) * 1e3:.1f} "
                  f"ms, p99 {quantile(unscraped, 0.99) * 1e3:.1f} ms, max "
                  f"{max(unscraped) * 1e3:.1f} ms")  # fmt: skip
    for error in (e for w in windows for e in w.errors):
        print(f"  scrape failed: {error}")
    runs = sum(len(w.lags) for w in windows)
    print(f"  {runs} runs measured in {len(windows)} windows of {WINDOW:g} s")
    return pooled


def difference_interval(windows: list[Window], rounds: int = 2000) -> tuple[float, float]:
    """A 95% bootstrap interval of the pooled lag p99 difference, scraped minus not
    scraped, in seconds: each arm's windows drawn again with replacement (runs within a
    window are not independent: one garbage collection delays many), pooled, and their
    p99s subtracted."""
    draw = random.Random(13)
    arms = {arm: [w.lags for w in windows if w.arm == arm] for arm in ("no scrapes", "scraped")}
    differences = []
    for _ in range(rounds):
        p99 = {arm: quantile([lag for lags in draw.choices(drawn, k=len(drawn)) for lag in lags],
                             0.99)
               for arm, drawn in arms.items()}  # fmt: skip
        differences.append(p99["scraped"] - p99["no scrapes"])
    differences.sort()
    return differences[int(0.025 * rounds)], differences[int(0.975 * rounds) - 1]


def verdict(low: float, high: float) -> str:
    """What a difference interval says against the margin of "the same"."""
    if low >= -SAME and high <= SAME:
        return f"the same: the interval is within +-{SAME * 1e3:g} ms"
    if low > SAME:
        return f"scrapes delay runs: the interval is above +{SAME * 1e3:g} ms"
    if high < -SAME:
        return f"the scraped arm ran earlier by over {SAME * 1e3:g} ms: the machine moved"
    return f"cannot tell: the interval reaches past +-{SAME * 1e3:g} ms (give it more windows)"


async def main(args: argparse.Namespace) -> None:
    context = multiprocessing.get_context("spawn")
    port_in, port_out = context.Pipe(duplex=False)
    target = context.Process(target=serve_target, args=(port_out,), daemon=True)
    ours, theirs = context.Pipe()
    scraper = context.Process(target=scrape_on_demand, args=(theirs,), daemon=True)
    target.start()
    scraper.start()
    started = time.monotonic()
    try:
        url = f"http://127.0.0.1:{port_in.recv()}"
        print(f"bench/scale.py: {args.journeys} journeys x 3 HTTP steps every {INTERVAL:g} s, "
              f"target on loopback answering in ~1 ms, {os.cpu_count()} cores, "
              f"load average {load_average()} (1, 5, 15 min)")  # fmt: skip
        arms = ["no scrapes", "scraped"] * args.windows
        windows, grown = await measure_agent(args.journeys, url, arms, ours, warm_up=INTERVAL + 5)
        pooled = report(f"N = {args.journeys}, arms interleaved:", windows, args.journeys)
        base, scraped = pooled["no scrapes"], pooled["scraped"]
        low, high = difference_interval(windows)
        print(f"  lag p99 scraped minus not scraped (pooled): {(scraped - base) * 1e3:+.1f} ms "
              f"({scraped / base:.2f}x); 95% interval {low * 1e3:+.1f}..{high * 1e3:+.1f} ms "
              f"(each arm's windows resampled): {verdict(low, high)}")  # fmt: skip
        print(f"  memory: the agent added {grown:.0f} MB PSS to this process, "
              f"{grown * 1024 / args.journeys:.0f} kB per journey")  # fmt: skip
        largest = await search(args, url, ours, started, passed=scraped < GOAL)
        print(f"load average at the end: {load_average()}; took {time.monotonic() - started:.0f} s")
        what = f"{args.journeys} journeys x 3 HTTP steps @15 s"
        write_rows(args.rows, [
            Row("scale", f"scheduler lag p99, {what}, scraped every 5 s", scraped * 1e3,
                "the same agent, no scrapes", base * 1e3, "ms", "< 25 ms, +-2.5 ms"),
            Row("scale", f"memory per journey (PSS growth / N), {what}",
                grown * 1024 / args.journeys, "", float("nan"), "kB"),
            Row("scale", "largest N (x 3 HTTP steps @15 s) with lag p99 < 25 ms, scraped"
                + ("" if largest else ": none of those tried"),
                float(largest or "nan"), "", float("nan"), "journeys", ">= 2,000"),
        ])  # fmt: skip
    finally:
        ours.send(None)
        scraper.join(timeout=10)
        target.kill()


async def search(
    args: argparse.Namespace, url: str, scraper: Connection, started: float, passed: bool
) -> int | None:
    """Shorter probes (scraped windows only) for the largest N with lag p99 < 25 ms: up
    or down by half until the goal is bracketed, then bisection, within the budget, to
    within 5%. Returns the largest N that passed (None: none did)."""
    best, worst = (args.journeys, None) if passed else (None, args.journeys)
    probe_seconds = INTERVAL + 2 * WINDOW + 10  # warm-up, two windows, start and stop
    while time.monotonic() - started + probe_seconds < args.budget:
        if best is None and worst is not None:
            count = int(worst * 0.6)
        elif worst is None and best is not None:
            count = int(best * 1.5)
        elif best is not None and worst is not None:
            count = (best + worst) // 2
        if count in (best, worst) or count < 10:
            break
        if best is not None and worst is not None and worst - best <= 0.05 * best:
            break
        windows, _ = await measure_agent(count, url, ["scraped"] * 2, scraper, warm_up=INTERVAL)
        p99 = report(f"probe N = {count} (scraped only):", windows, count)["scraped"]
        if p99 < GOAL:
            best = count
        else:
            worst = count
    if best is None:
        print(f"no N tried kept lag p99 < {GOAL * 1000:.0f} ms with scrapes (lowest tried {worst})")
    else:
        above = f", {worst} did not" if worst else ""
        print(f"largest N tried with lag p99 < {GOAL * 1000:.0f} ms, scraped: {best}{above}")
    return best


def _arguments() -> argparse.Namespace:
    parser = bench_arguments(__doc__)
    parser.add_argument("--journeys", type=int, default=1000, help="journeys (3 steps each)")
    parser.add_argument("--windows", type=int, help="windows of 10 s per arm (default 6, quick 4)")
    parser.add_argument("--budget", type=float, help="seconds for everything (230, quick 190)")
    args = parser.parse_args()
    args.windows = args.windows or (4 if args.quick else 6)
    args.budget = args.budget or (190.0 if args.quick else 230.0)
    return args


if __name__ == "__main__":
    with open(os.devnull, "w") as devnull:  # the agent logs at info, as deployed, to nowhere
        configure_logging(json=True, level="info", stream=devnull)
        asyncio.run(main(_arguments()))
