"""Browser journeys per core, measured: the whole agent running N checkout journeys at a
short interval on one Chromium, against raw Playwright running the same checkouts on
the same schedule, with the same launch flags.

- **journeyman**: ``journeyman run`` (a process of its own, as deployed, with an artifacts
  directory set as the image sets one) on N journeys of the checkout of
  ``bench/checkout_page.py``, each ``every`` seconds, ``--max-browsers 2``;
- **raw Playwright**: ``python -m bench.raw_playwright pace`` (a process of its own), the
  same checkouts as N journeys each ``every`` seconds, at most 2 at once.

An arm is started, runs until ``WARM`` runs have finished (the launch, first contexts and
caches are behind it), then for a window of ``--window`` seconds: the runs finished in it
(the agent's ``journey_run`` log lines; the raw arm's ``run`` lines) and the CPU of the
arm's process and every process below it (driver, Chromium, renderers of closed contexts
through the process that reaped them; ``/proc``) over it. The figure is runs per
CPU-second; times 60, the journeys at a 1-minute interval that one core runs, fully
busy. Arms alternate, their order swapped each round; medians [min..max] of the rounds.

Run: ``.venv/bin/python -m bench.browser_throughput [--quick] [--journeys N] [--every S]
[--window S] [--rounds R]``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.agent_child import start_agent
from bench.browser_overhead import tree_cpu
from bench.checkout_page import Shop, checkout_steps
from bench.common import Row, bench_arguments, load_average, spread, write_rows
from bench.raw_playwright import launch_options

WARM = 4  # runs finished before the window opens


@dataclass
class Window:
    """What an arm did in its window."""

    runs: int
    cpu: float  # seconds, the arm's whole process tree
    seconds: float
    failed: int

    @property
    def per_cpu_second(self) -> float:
        return self.runs / self.cpu if self.cpu else float("nan")


class Runs:
    """Runs finished so far, counted as their lines arrive; ``wait_for`` blocks until n."""

    def __init__(self) -> None:
        self.done = 0
        self.failed = 0
        self._changed = asyncio.Event()

    def add(self, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        self._changed.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(60):
            while self.done < count:
                self._changed.clear()
                await self._changed.wait()


async def window(pid: int, runs: Runs, seconds: float) -> Window:
    """Runs and CPU of the tree below ``pid`` over ``seconds``, once WARM runs are done."""
    await runs.wait_for(WARM)
    cpu, done, failed, began = tree_cpu(pid), runs.done, runs.failed, time.monotonic()
    await asyncio.sleep(seconds)
    return Window(
        runs.done - done, tree_cpu(pid) - cpu, time.monotonic() - began, runs.failed - failed
    )


def write_journeys(folder: Path, url: str, count: int, every: float) -> None:
    steps = json.dumps([{"name": "checkout", "browser": checkout_steps(url)}])
    for n in range(count):
        (folder / f"checkout-{n}.yaml").write_text(
            f"journey: checkout-{n}\nbusiness_process: bench\n"
            f"schedule: {{every: {every:g}s, timeout: {every:g}s, retries: 0}}\nsteps: {steps}\n"
        )


async def agent_arm(url: str, count: int, every: float, seconds: float) -> Window:
    runs = Runs()

    def seen(event: dict[str, Any]) -> None:
        if event.get("event") == "journey_run":
            runs.add(event.get("outcome") == "success")

    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as evidence:
        write_journeys(Path(folder), url, count, every)
        options = ("--max-browsers", "2", "--artifacts-dir", evidence)
        agent = await start_agent(Path(folder), *options, on_event=seen)
        try:
            await agent.started()
            return await window(agent.pid, runs, seconds)
        finally:
            await agent.stop()


async def raw_arm(url: str, count: int, every: float, seconds: float, options: str) -> Window:
    runs = Runs()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.raw_playwright", "pace", options, url, str(count),
        str(every), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip

    async def read() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            if line.strip() == b"run":
                runs.add(True)

    reader = asyncio.create_task(read())
    try:
        return await window(process.pid, runs, seconds)
    finally:
        process.terminate()
        await process.wait()
        await reader


async def bench(count: int, every: float, seconds: float, rounds: int) -> list[Row]:
    options = json.dumps(await launch_options())
    figures: dict[str, list[Window]] = {"journeyman": [], "raw Playwright": []}
    async with Shop() as shop:
        url = f"{shop.url}/"
        arms: dict[str, Callable[[], Awaitable[Window]]] = {
            "journeyman": lambda: agent_arm(url, count, every, seconds),
            "raw Playwright": lambda: raw_arm(url, count, every, seconds, options),
        }
        for r in range(rounds):
            for name in list(arms) if r % 2 == 0 else list(reversed(arms)):
                figures[name].append(await arms[name]())
                print(f"  round {r + 1} {name:<15} load average {load_average()}", flush=True)
    print(f"  {'arm':<15} {'runs/CPU-s':<22} {'runs/s':<8} {'CPU cores':<10} failed  "
          "journeys/core @1 min")  # fmt: skip
    medians = {}
    for name, windows in figures.items():
        rates = [w.per_cpu_second for w in windows]
        medians[name] = statistics.median(rates)
        print(f"  {name:<15} {spread(rates, 1, 2):<22} "
              f"{statistics.median(w.runs / w.seconds for w in windows):<8.2f} "
              f"{statistics.median(w.cpu / w.seconds for w in windows):<10.2f} "
              f"{sum(w.failed for w in windows):<7} {medians[name] * 60:.0f}")  # fmt: skip
    print(f"  {count} journeys every {every:g} s, windows of {seconds:g} s, {rounds} rounds")
    ours, raw = medians["journeyman"] * 60, medians["raw Playwright"] * 60
    what = f"browser checkout journeys per core at a 1-minute interval ({count} @{every:g} s)"
    return [Row("browser_throughput", what, ours, "raw Playwright", raw, "journeys")]


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("--journeys", type=int, default=4, help="journeys (default 4)")
    parser.add_argument("--every", type=float, default=2.0, help="interval, s (default 2)")
    parser.add_argument("--window", type=float, help="seconds measured (default 30, quick 12)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, quick 2)")
    args = parser.parse_args()
    seconds = args.window or (12.0 if args.quick else 30.0)
    rounds = args.rounds or (2 if args.quick else 3)
    started = time.monotonic()
    print(f"bench/browser_throughput.py: browser journeys per CPU-second; "
          f"load average {load_average()}")  # fmt: skip
    rows = asyncio.run(bench(args.journeys, args.every, seconds, rounds))
    print(f"load average at the end: {load_average()}; took {time.monotonic() - started:.0f} s")
    write_rows(args.rows, rows)


if __name__ == "__main__":
    main()
