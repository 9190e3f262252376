"""Soak: the whole agent for a while, watching what it leaves behind.

Runs `journeyman run` (a real agent process) on 20 journeys against the demo shop on
loopback: 10 HTTP journeys every 10 s (copies of the example customer and partner
journeys) and 10 browser journeys every 30 s (copies of the example checkout in the
browser, five steps each). Every ``--interval`` seconds it samples the agent's process
tree: the Chromium processes below it (by ``--type``) and the tree's PSS (proportional
set size, ``/proc/PID/smaps_rollup``: the agent, Playwright's node driver and Chromium).
At the end it prints the samples and, after a warm-up (every journey has run once), the
least-squares slope of each per hour, with the runs done meanwhile; and the same for the
floor (the lowest sample of each minute), which leaves out the renderers of the runs in
flight at the moment of a sample: what is left behind raises the floor.

A flat agent has slopes near zero: a Chromium process or a context left behind per run
shows as processes and tens of MB per hour.

    .venv/bin/python -m bench.soak               # 30 minutes, a sample every 10 s
    .venv/bin/python -m bench.soak --minutes 3   # the quick mode
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from agent.demo.server import start_shop
from agent.run.browser_pool import descendant_pids

EXAMPLES = Path(__file__).resolve().parents[1] / "journeys"
HTTP_EXAMPLES = ("customer-checkout", "partner-inventory", "partner-order")
BROWSER_EXAMPLE = "checkout-browser"
HTTP_SCHEDULE = "schedule: {every: 10s, timeout: 4s, retries: 1}"
BROWSER_SCHEDULE = "schedule: {every: 30s, timeout: 25s, step_timeout: 20s}"
JOURNEYS = 20
WARM_UP = 40.0  # seconds: every journey's first run is spread over its interval
FLOOR_WINDOW = 60.0  # seconds: each floor sample is the lowest of this window


@dataclass
class Sample:
    at: float  # seconds since the agent started
    chromium: Counter[str] = field(default_factory=Counter)  # processes by --type
    pss: dict[str, float] = field(default_factory=dict)  # MB: agent, driver, chromium
    runs: float = 0.0  # journey runs finished so far

    @property
    def processes(self) -> int:
        return sum(self.chromium.values())

    @property
    def tree(self) -> float:
        return sum(self.pss.values())


def write_journeys(folder: Path) -> None:
    """10 HTTP and 10 browser journeys, each a renamed copy of an example."""
    shutil.copy(EXAMPLES / "catalog.yaml", folder / "catalog.yaml")
    for n in range(10):
        example = HTTP_EXAMPLES[n % len(HTTP_EXAMPLES)]
        copy(example, f"{example}-{n}", HTTP_SCHEDULE, folder)
        copy(BROWSER_EXAMPLE, f"{BROWSER_EXAMPLE}-{n}", BROWSER_SCHEDULE, folder)


def copy(example: str, journey: str, schedule: str, folder: Path) -> None:
    text = (EXAMPLES / f"{example}.yaml").read_text()
    text = re.sub(r"(?m)^journey: .*$", f"journey: {journey}", text)
    text = re.sub(r"(?m)^schedule: .*$", schedule, text)
    (folder / f"{journey}.yaml").write_text(text)


def _cmdline(pid: int) -> list[str]:
    """A process's arguments (Chromium's children rewrite theirs into one line)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return []
    args = raw.rstrip("\0").split("\0")
    return args[0].split(" ") if len(args) == 1 else args


def _flag(args: list[str], name: str) -> str:
    return next((a.split("=", 1)[1] for a in args if a.startswith(f"{name}=")), "")


def _pss(pid: int) -> float:
    """PSS of one process in MB (0 once it is gone)."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    kb = next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
    return kb / 1024


def sample(agent: int, started: float, runs: float) -> Sample:
    taken = Sample(at=time.monotonic() - started, runs=runs)
    taken.pss = {"agent": _pss(agent), "driver": 0.0, "chromium": 0.0}
    for pid in descendant_pids(agent):
        args = _cmdline(pid)
        if not args or not args[0]:
            continue
        if "run-driver" in args:
            taken.pss["driver"] += _pss(pid)
        elif "chrom" in Path(args[0]).name:
            kind = _flag(args, "--type") or "browser"
            if service := _flag(args, "--utility-sub-type"):  # network.mojom.NetworkService
                kind = service.split(".")[0]
            taken.chromium[kind] += 1
            taken.pss["chromium"] += _pss(pid)
    return taken


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per hour."""
    if len(points) < 2:
        return float("nan")
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if not spread:
        return float("nan")
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * 3600


async def runs_done(client: httpx.AsyncClient, url: str) -> float:
    """journey_runs_total over every journey and outcome, from the agent's /metrics."""
    try:
        text = (await client.get(f"{url}/metrics")).text
    except httpx.HTTPError:
        return float("nan")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("journey_runs_total{")
    )


async def agent_url(process: asyncio.subprocess.Process, journeys: int) -> str:
    """The URL the agent logs in its agent_started line (its stderr, JSON lines), once
    it says it loaded every journey."""
    assert process.stderr is not None
    async with asyncio.timeout(60):
        while line := await process.stderr.readline():
            event = json.loads(line) if line.startswith(b"{") else {}
            if event.get("event") == "journey_file_rejected":
                print("rejected:", event.get("error"))
            if event.get("event") == "agent_started":
                if event.get("journeys") != journeys:
                    raise RuntimeError(f"the agent loaded {event.get('journeys')} journeys")
                return str(event["url"])
    raise RuntimeError("the agent exited before it started")


async def drain(stream: asyncio.StreamReader, keep: list[bytes]) -> None:
    """Read the agent's log to the end (a full pipe would stall it); keep the errors."""
    while line := await stream.readline():
        if b'"level": "error"' in line:
            keep.append(line)


async def soak(minutes: float, interval: float) -> list[Sample]:
    folder = Path(tempfile.mkdtemp(prefix="journeyman-soak-"))
    write_journeys(folder)
    samples: list[Sample] = []
    errors: list[bytes] = []
    async with await start_shop() as shop:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", str(folder), "--listen", "127.0.0.1:0",
            "--max-browsers", "2", "--log-level", "info",
            env={**os.environ, **shop.environ()},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        started = time.monotonic()
        try:
            url = await agent_url(process, JOURNEYS)
            assert process.stderr is not None
            reader = asyncio.create_task(drain(process.stderr, errors))
            async with httpx.AsyncClient(timeout=10) as client:
                while time.monotonic() - started < minutes * 60:
                    taken = sample(process.pid, started, await runs_done(client, url))
                    samples.append(taken)
                    print(row(taken), flush=True)
                    await asyncio.sleep(interval)
            await stop(process)
            await reader
        finally:
            await stop(process)
            shutil.rmtree(folder, ignore_errors=True)
    for line in errors[:10]:
        print("agent error:", line.decode().strip()[:300])
    return samples


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            async with asyncio.timeout(60):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


def row(taken: Sample) -> str:
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(taken.chromium.items()))
    pss = " ".join(f"{name} {mb:6.1f}" for name, mb in taken.pss.items())
    return (
        f"{taken.at:7.0f}s  runs {taken.runs:6.0f}  chromium {taken.processes:2d} ({kinds})  "
        f"PSS MB: tree {taken.tree:6.1f} = {pss}"
    )


def report(samples: list[Sample], minutes: float, interval: float) -> None:
    warm = [s for s in samples if s.at >= WARM_UP]
    print(
        f"\nsoak: {minutes:g} min, a sample every {interval:g} s, {len(warm)} samples after "
        f"the {WARM_UP:g} s warm-up"
    )
    if len(warm) < 2:
        print("too short for a slope")
        return
    first, last = warm[0], warm[-1]
    hours = (last.at - first.at) / 3600
    print(f"runs: {last.runs - first.runs:.0f} in {hours * 60:.1f} min")
    series = {
        "chromium processes": [(s.at, float(s.processes)) for s in warm],
        "tree PSS (MB)": [(s.at, s.tree) for s in warm],
        **{f"  {name} PSS (MB)": [(s.at, s.pss[name]) for s in warm] for name in first.pss},
    }
    for name, points in series.items():
        values = [v for _, v in points]
        floor = floors(points, round(FLOOR_WINDOW / interval))
        print(
            f"{name:22s} first {values[0]:7.1f}  last {values[-1]:7.1f}  "
            f"min {min(values):7.1f}  max {max(values):7.1f}  "
            f"slope {slope_per_hour(points):+8.1f}/h  floor slope {slope_per_hour(floor):+8.1f}/h"
        )


def floors(points: list[tuple[float, float]], size: int) -> list[tuple[float, float]]:
    """The lowest point of each run of ``size`` samples (at its window's middle)."""
    size = max(size, 1)
    windows = [points[start : start + size] for start in range(0, len(points), size)]
    return [
        (sum(t for t, _ in window) / len(window), min(v for _, v in window))
        for window in windows
        if len(window) == size
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long (default 30)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
    samples = asyncio.run(soak(args.minutes, args.interval))
    report(samples, args.minutes, args.interval)


if __name__ == "__main__":
    main()
