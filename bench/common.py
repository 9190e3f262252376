"""What every benchmark shares: spreads, quantiles, the machine's load, a process's CPU
and PSS from /proc, free loopback ports, and the rows of the ratio table.

A row is one claim measured against an anchor in the same run (blackbox_exporter, raw
httpx, raw Playwright, plain prometheus-client): ``bench/all.py`` gathers the rows every
bench appends to the file named by ``--rows`` and prints them as one markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "Row",
    "bench_arguments",
    "cpu_seconds",
    "free_port",
    "load_average",
    "pss_mb",
    "quantile",
    "read_rows",
    "spread",
    "write_rows",
]

_TICKS = os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as printed beside every figure."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank below); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    """``median [min..max]`` of ``values`` times ``scale``; ``-`` for none."""
    if not values:
        return "-"
    low, mid, high = (v * scale for v in (min(values), statistics.median(values), max(values)))
    return f"{mid:.{digits}f} [{low:.{digits}f}..{high:.{digits}f}]"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of process ``pid`` (all its threads, not its children)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


def pss_mb(pids: list[int]) -> float:
    """PSS summed over ``pids`` (those that still exist), in MB."""
    total = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += sum(
            int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")
        )
    return total / 1024


def free_port() -> int:
    """A loopback port free now, for a program that cannot report the one it bound."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Row:
    """One line of the ratio table: Journeyman's figure against an anchor's, same run."""

    bench: str
    what: str
    ours: float
    anchor: str
    anchor_value: float
    unit: str
    goal: str = ""
    # The median of the per-round ratios, where each round ran both arms back to back
    # (NaN: the ratio is ours over the anchor's figure). Pairs cancel the drift of a
    # machine between rounds, which a ratio of two medians of a few runs does not.
    paired: float = float("nan")

    @property
    def ratio(self) -> float:
        if not math.isnan(self.paired):
            return self.paired
        return self.ours / self.anchor_value if self.anchor_value else float("nan")


def write_rows(path: Path | None, rows: list[Row]) -> None:
    """Append ``rows`` to ``path`` (JSON lines), when a path was given."""
    if path is None:
        return
    with path.open("a") as out:
        out.writelines(json.dumps(asdict(row)) + "\n" for row in rows)


def read_rows(path: Path) -> list[Row]:
    if not path.exists():
        return []
    return [Row(**json.loads(line)) for line in path.read_text().splitlines() if line]


def bench_arguments(doc: str | None) -> argparse.ArgumentParser:
    """A parser with the options every bench takes: ``--quick`` and ``--rows``."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows (make bench)")
    parser.add_argument("--rows", type=Path, help="append the ratio rows here (JSON lines)")
    return parser
