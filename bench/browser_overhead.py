"""Per-run cost of a browser journey through the agent against the same steps written
directly in Playwright, with the same launch flags: wall time and CPU, interleaved.

A run is the checkout of ``bench/checkout_page.py`` on loopback: a fresh context and
page, goto, fill, click, expect "Thank you", close. Variants, one run each per round, the
order rotating each round so that all see the same machine:

- **raw Playwright**: its own Chromium launched with the agent's flags
  (``bench/raw_playwright.py``);
- **journeyman, default evidence**: ``run_journey`` with an artifacts directory set, as
  the image sets one, and the step's default ``artifacts: on_failure`` (a trace is armed
  for every run and thrown away when it passes): the headline;
- **journeyman, artifacts: never**: nothing armed.

Wall time is per run, until its result is there (the agent closes the run's context
after that, off the run's path: raw Playwright closes its own within its run); CPU is
this process plus every process below it (the Playwright drivers and both Chromiums,
idle ones included: ~0; a renderer that ended counts through the process that reaped
it) over the run and, for the agent, the context's close after it.
Prints median [min..max] of each and its ratio to raw Playwright (the median of the
per-round ratios: a round runs every variant back to back, so the machine's drift from
round to round cancels), and the load average.

Run: ``.venv/bin/python -m bench.browser_overhead [--quick] [--runs N]``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from playwright.async_api import async_playwright

from agent.language.model import Journey
from agent.run.artifacts import ArtifactStore
from agent.run.browser_pool import BrowserPool, descendant_pids
from agent.run.context import RunEnvironment
from agent.run.runner import run_journey
from bench.checkout_page import Shop, checkout_steps
from bench.common import Row, bench_arguments, load_average, spread, write_rows
from bench.raw_playwright import checkout, launch_options

Run = Callable[[], Awaitable[None]]
_TICKS = os.sysconf("SC_CLK_TCK")


def journey(url: str, artifacts: str | None) -> Journey:
    step: dict[str, object] = {"name": "checkout", "browser": checkout_steps(url)}
    if artifacts is not None:
        step["artifacts"] = artifacts
    return Journey.model_validate(
        {"journey": "bench", "business_process": "bench", "steps": [step]}
    )


def tree_cpu(root: int | None = None) -> float:
    """CPU seconds of process ``root`` (default: this one) and of every process below it,
    those that ended included: a process's own time plus that of the children it reaped
    (each closed context's renderer, reaped by Chromium's zygote), so that a renderer
    exiting within the window takes none of its CPU away with it."""
    root = os.getpid() if root is None else root
    total = 0.0
    for pid in [root, *descendant_pids(root)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile: its time is its parent's once reaped
        total += sum(int(f) for f in fields[11:15]) / _TICKS  # utime stime cutime cstime
    return total


async def measure(
    variants: dict[str, Run], runs: int, settle: Run
) -> dict[str, tuple[list[float], list[float]]]:
    """(wall, CPU) seconds per run of each variant, one run each per round; ``settle``
    (the closes a run left to the pool) is in the run's CPU, not in its wall time."""
    names = list(variants)
    figures: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in names}
    for n in range(runs):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            cpu, wall = tree_cpu(), time.perf_counter()
            await variants[name]()
            figures[name][0].append(time.perf_counter() - wall)
            await settle()
            figures[name][1].append(tree_cpu() - cpu)
    return figures


async def _settled() -> None:
    pass


async def bench(runs: int) -> list[Row]:
    options = await launch_options()
    with tempfile.TemporaryDirectory() as evidence:
        async with Shop() as shop, async_playwright() as playwright, BrowserPool() as pool:
            url = f"{shop.url}/"
            browser = await playwright.chromium.launch(**options)
            default = RunEnvironment(
                environ={}, browser=pool, artifacts=ArtifactStore(Path(evidence))
            )
            journeys = {"default": journey(url, None), "never": journey(url, "never")}

            async def ours(kind: str) -> None:
                result = await run_journey(journeys[kind], default)
                assert result.ok, result.message

            variants: dict[str, Run] = {
                "raw Playwright": lambda: checkout(browser, url),
                "journeyman, default evidence": lambda: ours("default"),
                "journeyman, artifacts: never": lambda: ours("never"),
            }
            # An agent from before close_later (PYTHONPATH) closes within the run.
            settle = getattr(pool, "settled", _settled)
            await measure(variants, 3, settle)  # warm: launches, caches, the first trace
            figures = await measure(variants, runs, settle)
            await browser.close()
    return report(figures, runs)


def paired(ours: list[float], anchor: list[float]) -> float:
    """The median of the per-round ratios (the two lists in round order)."""
    return statistics.median(a / b for a, b in zip(ours, anchor, strict=True))


def report(figures: dict[str, tuple[list[float], list[float]]], runs: int) -> list[Row]:
    raw_wall, raw_cpu = figures["raw Playwright"]
    print(f"  {'variant':<30} {'wall ms':<26} {'x raw':<7} {'CPU ms':<26} x raw   "
          f"(x raw: median of the per-round ratios)")  # fmt: skip
    for name, (wall, cpu) in figures.items():
        print(f"  {name:<30} {spread(wall, 1000, 0):<26} {paired(wall, raw_wall):<7.2f} "
              f"{spread(cpu, 1000, 0):<26} {paired(cpu, raw_cpu):.2f}")  # fmt: skip
    print(f"  {runs} runs per variant, interleaved")
    rows = []
    for name, label in (("journeyman, default evidence", "default evidence"),
                        ("journeyman, artifacts: never", "artifacts: never")):  # fmt: skip
        wall, cpu = figures[name]
        rows += [
            Row("browser_overhead", f"browser checkout run, wall, {label}",
                statistics.median(wall) * 1e3, "raw Playwright",
                statistics.median(raw_wall) * 1e3, "ms", "<= 1.05x", paired(wall, raw_wall)),
            Row("browser_overhead", f"browser checkout run, CPU, {label}",
                statistics.median(cpu) * 1e3, "raw Playwright",
                statistics.median(raw_cpu) * 1e3, "ms", paired=paired(cpu, raw_cpu)),
        ]  # fmt: skip
    return rows


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("--runs", type=int, help="runs per variant (default 40, quick 20)")
    args = parser.parse_args()
    runs = args.runs or (20 if args.quick else 40)
    print(f"bench/browser_overhead.py: a checkout run (goto, fill, click, expect) on loopback; "
          f"load average {load_average()}")  # fmt: skip
    rows = asyncio.run(bench(runs))
    print(f"load average at the end: {load_average()}")
    write_rows(args.rows, rows)


if __name__ == "__main__":
    main()
