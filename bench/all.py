"""Every benchmark, one after the other, then one table of ratios against the anchors
each measured in the same run (blackbox_exporter, raw httpx, raw Playwright with the
agent's launch flags, plain prometheus-client, the same agent without scrapes).

Each bench runs as its own process (``python -m bench.NAME --quick --rows FILE``; without
``--quick`` with ``--full``), its output shown as it comes; the load average is taken
before and after each. The table goes to stdout and, as markdown, to ``--markdown PATH``
(what docs/performance.md carries). ``make bench`` runs this with ``--quick``: 6 to 7
minutes on 2 cores. Long benches not run here, run alone: ``bench.soak`` (30 min,
leaks), ``bench.hostile_memory`` (memory under hostile targets).

Run: ``.venv/bin/python -m bench.all [--full] [--markdown PATH] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Row, load_average, read_rows

BENCHES = ("http_step", "browser_overhead", "browser_memory", "browser_throughput",
           "metrics_scrape", "scale", "startup")  # fmt: skip
ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    model = next((line.split(":", 1)[1].strip()
                  for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())  # fmt: skip
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}"


def number(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def times(ratio: float) -> str:
    """A ratio as the table prints it: 2 decimals, or 2 significant digits below 0.1."""
    if math.isnan(ratio):
        return "—"
    return f"**{ratio:.2f}x**" if ratio >= 0.1 else f"**{ratio:.2g}x**"


def table(rows: list[Row], loads: dict[str, tuple[str, str]], quick: bool, took: float) -> str:
    """The markdown: machine, date, mode, load per bench, then one row per claim."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Machine: {machine()}. Date: {when}. Mode: {'--quick' if quick else '--full'}, "
        f"{took / 60:.1f} min in all.",
        "",
        "Load average (1, 5, 15 min) before → after each bench: "
        + "; ".join(f"{name} {a} → {b}" for name, (a, b) in loads.items())
        + ".",
        "",
        "| bench | what | Journeyman | anchor, same run | anchor | ratio | goal |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for row in rows:
        ratio = times(row.ratio)
        anchor = row.anchor or "—"
        lines.append(
            f"| {row.bench} | {row.what} | {number(row.ours)}"
            f"{'' if math.isnan(row.ours) else ' ' + row.unit} | {anchor} | "
            f"{number(row.anchor_value)}{' ' + row.unit if row.anchor else ''} | {ratio} | "
            f"{row.goal} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="each bench's longer defaults")
    parser.add_argument("--markdown", type=Path, help="write the table here too")
    parser.add_argument("--only", nargs="+", choices=BENCHES, help="these benches only")
    args = parser.parse_args()
    started = time.monotonic()
    loads: dict[str, tuple[str, str]] = {}
    failed = []
    with tempfile.TemporaryDirectory() as temporary:
        rows_file = Path(temporary) / "rows.jsonl"
        for name in args.only or BENCHES:
            print(f"\n== bench.{name}", flush=True)
            before = load_average()
            command = [sys.executable, "-m", f"bench.{name}", "--rows", str(rows_file)]
            done = subprocess.run(command + ([] if args.full else ["--quick"]), cwd=ROOT)
            loads[name] = (before, load_average())
            if done.returncode != 0:
                failed.append(name)
        rows = read_rows(rows_file)
    text = table(rows, loads, not args.full, time.monotonic() - started)
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
