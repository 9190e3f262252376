"""Start-up time of the ``journeyman`` command: what ``validate`` costs before it works.

Each arm is a fresh process, timed from spawn to exit: ``python -c pass`` (the
interpreter alone, the baseline), ``journeyman validate --help``, ``journeyman validate
journeys/``, and ``python -c "import agent.app"`` (the whole running agent: httpx,
Playwright, aiohttp, prometheus-client), which ``validate`` should not pay for. Arms
take turns, one run each per round, so that all of them see the same machine. Prints
median [min..max] wall time per arm, its ratio to the baseline, and the load average.
Run: ``.venv/bin/python -m bench.cli_startup [rounds]`` from the repository root.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROUNDS = 15
ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
JOURNEYMAN = str(Path(PYTHON).parent / "journeyman")

ARMS: tuple[tuple[str, list[str]], ...] = (
    ("python -c pass (baseline)", [PYTHON, "-c", "pass"]),
    ("journeyman validate --help", [JOURNEYMAN, "validate", "--help"]),
    ("journeyman validate journeys/", [JOURNEYMAN, "validate", "journeys/"]),
    ('python -c "import agent.app"', [PYTHON, "-c", "import agent.app"]),
)


def wall_time(command: list[str]) -> float:
    """Seconds from spawning ``command`` to its exit; a failing command stops the bench.

    No ``timeout=``: with one, ``subprocess`` polls for the exit with sleeps of up to 50 ms,
    which rounds every figure up to that grain.
    """
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)  # fmt: skip
    return time.perf_counter() - started


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    load_before = load_average()
    for _, command in ARMS:  # warm up: bytecode caches, the page cache
        wall_time(command)
    samples: dict[str, list[float]] = {label: [] for label, _ in ARMS}
    for _ in range(rounds):
        for label, command in ARMS:
            samples[label].append(wall_time(command))
    baseline = statistics.median(samples[ARMS[0][0]])
    print(f"wall time per process, ms: median [min..max] of {rounds}, interleaved")
    for label, values in samples.items():
        median = statistics.median(values)
        spread = f"[{min(values) * 1e3:.0f}..{max(values) * 1e3:.0f}]"
        print(f"  {label:<32} {median * 1e3:6.0f} {spread:<11} {median / baseline:5.1f}x")
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_average()}")


if __name__ == "__main__":
    main()
