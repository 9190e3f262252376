"""Memory of N concurrent browser runs in steady state: the whole agent against raw
Playwright with the same launch flags, interleaved.

Both arms hold N pages of the checkout page open together: each page's image
(``/held`` in ``bench/checkout_page.py``) keeps loading until the bench has measured.

- **journeyman**: ``journeyman run`` (a process of its own, as deployed, with an artifacts
  directory set as the image sets one, so every run arms its trace) on N browser journeys
  that all come due within ~1 s of start (ids picked by their stable phase), with
  ``--max-browsers N``;
- **raw Playwright** (``bench/raw_playwright.py``, a process of its own): N contexts,
  one page each, on a Chromium launched with the agent's flags.

Memory is PSS (``/proc/PID/smaps_rollup``) summed over the arm's process and every
process below it (the Playwright driver and all Chromium processes), sampled only once
all N pages are open and loading (steady state): the median of 3 samples 0.3 s apart,
after a 1 s settle. Arms alternate, N by N, for R rounds; each figure is the median
[min..max] of the rounds, and the ratio of the medians.

Run: ``.venv/bin/python -m bench.browser_memory [--quick] [--rounds R] [--pages N ...]``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from agent.run.browser_pool import descendant_pids
from agent.schedule.sharding import phase
from bench.agent_child import start_agent
from bench.checkout_page import Shop, checkout_steps
from bench.common import Row, bench_arguments, load_average, pss_mb, spread, write_rows
from bench.raw_playwright import launch_options

EVERY = 60.0  # journeys come due once; the first run within EARLY * EVERY of start
EARLY = 0.02


def early_ids(count: int) -> list[str]:
    """``count`` journey ids whose first run comes within ~1 s of the agent's start."""
    ids = (f"memory-{n}" for n in range(100_000))
    return [i for i in ids if phase(i) < EARLY][:count]


def write_journeys(folder: Path, url: str, count: int) -> None:
    for name in early_ids(count):
        steps = json.dumps([{"name": "checkout", "browser": checkout_steps(url)[:1]}])
        (folder / f"{name}.yaml").write_text(
            f"journey: {name}\nbusiness_process: bench\n"
            f"schedule: {{every: {EVERY:g}s, timeout: 50s}}\nsteps: {steps}\n"
        )


def tree_pss(pid: int) -> tuple[float, float, float]:
    """PSS in MB of the process ``pid``, of its Playwright driver, and of Chromium's."""
    below = descendant_pids(pid)
    driver = [p for p in below if _program(p).endswith("/node")]
    chromium = [p for p in below if p not in driver]
    return pss_mb([pid]), pss_mb(driver), pss_mb(chromium)


def _program(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return ""


async def steady_pss(shop: Shop, pid: int, pages: int) -> tuple[float, float, float]:
    """The tree's PSS (process, driver, Chromium) once ``pages`` pages are open and
    loading: the sample of median total, in MB."""
    async with asyncio.timeout(60):
        await shop.wait_held(pages)
    await asyncio.sleep(1.0)
    samples = []
    for _ in range(3):
        samples.append(tree_pss(pid))
        await asyncio.sleep(0.3)
    return sorted(samples, key=sum)[1]


async def agent_arm(shop: Shop, pages: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as evidence:
        write_journeys(Path(folder), f"{shop.url}/held", pages)
        options = ("--max-browsers", str(pages), "--artifacts-dir", evidence)
        agent = await start_agent(Path(folder), *options)
        try:
            await agent.started()
            return await steady_pss(shop, agent.pid, pages)
        finally:
            shop.release.set()
            await agent.stop()
            shop.release.clear()


async def raw_arm(shop: Shop, pages: int, options: str) -> tuple[float, float, float]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.raw_playwright", "hold", options, f"{shop.url}/held",
        str(pages),
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        return await steady_pss(shop, process.pid, pages)
    finally:
        shop.release.set()
        process.terminate()
        await process.wait()
        shop.release.clear()


async def bench(counts: list[int], rounds: int) -> list[Row]:
    options = json.dumps(await launch_options())
    figures: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    async with Shop() as shop:
        arms: dict[str, Callable[[int], Awaitable[tuple[float, float, float]]]] = {
            "journeyman": lambda n: agent_arm(shop, n),
            "raw Playwright": lambda n: raw_arm(shop, n, options),
        }
        for r in range(rounds):
            for pages in counts:
                names = list(arms) if r % 2 == 0 else list(reversed(arms))
                for name in names:
                    figures.setdefault((name, pages), []).append(await arms[name](pages))
    rows = []
    print(f"  {'pages':<6} {'arm':<15} {'MB PSS, whole tree':<22} {'process':<9} {'driver':<8} "
          "Chromium (medians)")  # fmt: skip
    for pages in counts:
        totals = {}
        for name in arms:
            mine = figures[name, pages]
            totals[name] = statistics.median(sum(parts) for parts in mine)
            parts = (statistics.median(p[i] for p in mine) for i in range(3))
            print(f"  {pages:<6} {name:<15} {spread([sum(p) for p in mine], 1, 0):<22} "
                  + "".join(f"{part:<9.0f}" for part in parts))  # fmt: skip
        ours, raw = totals["journeyman"], totals["raw Playwright"]
        print(f"  {pages:<6} ratio          {ours / raw:.2f}")
        rows.append(Row("browser_memory", f"PSS with {pages} browser pages open (agent + driver "
                        "+ Chromium)", ours, "raw Playwright", raw, "MB", "<= 1.05x"))  # fmt: skip
    print(f"  {rounds} rounds, arms alternating")
    return rows


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("--rounds", type=int, help="rounds (default 3, quick 2)")
    parser.add_argument("--pages", type=int, nargs="+", help="pages open together (default 1 4)")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 3)
    counts = args.pages or ([4] if args.quick else [1, 4])
    started = time.monotonic()
    print(f"bench/browser_memory.py: PSS with N browser pages open; load average {load_average()}")
    rows = asyncio.run(bench(counts, rounds))
    print(f"load average at the end: {load_average()}; took {time.monotonic() - started:.0f} s")
    write_rows(args.rows, rows)


if __name__ == "__main__":
    main()
