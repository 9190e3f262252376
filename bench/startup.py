"""Start-up and idle memory: the whole agent against blackbox_exporter, interleaved.

Each start is a fresh process, timed from spawn:

- **journeyman**: ``journeyman run`` on 10 HTTP journeys (every 15 s, one of them due the
  moment the journeys are loaded: its id picked by its stable phase) with ``--listen`` on
  a free loopback port. Timed: to the first 200 of ``/readyz`` (polled every 5 ms), and to
  the first request of a run at the target (the first due run). Then, 3 s after ready,
  PSS of the agent and every process below it (a browser would show here: HTTP journeys
  must not launch one), and the number of those processes.
- **blackbox_exporter**: to the first 200 of ``/metrics``, and to the first request at
  the target of a ``/probe`` sent once ``/metrics`` answered; PSS 3 s after ready.

Arms alternate for R rounds; each figure is the median [min..max] of the rounds. Before
the first, the agent's packages (where the agent imports them from: ``PYTHONPATH`` or this
checkout) are compiled to bytecode, as the image's install does: otherwise each start
compiles every file edited since its last ``.pyc`` (with ``PYTHONDONTWRITEBYTECODE``,
~40 ms for 20 files), which depends on who edited what, and no deployed agent pays.

Run: ``.venv/bin/python -m bench.startup [--quick] [--rounds R]``.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from agent.run.browser_pool import descendant_pids
from agent.schedule.sharding import phase
from bench.common import Row, bench_arguments, free_port, load_average, pss_mb, spread, write_rows
from bench.http_step import BLACKBOX, blackbox_config

JOURNEYS = 10
JOURNEYMAN = str(Path(sys.executable).parent / "journeyman")

Figures = tuple[float, float, float, int]  # ready s, first request s, PSS MB, processes
# Run outside the checkout, so that the agent's packages are found as the agent finds them.
_COMPILE = """
import compileall, os, agent, exporters, generators
for package in (agent, exporters, generators):
    compileall.compile_dir(os.path.dirname(package.__file__), quiet=1)
"""


def write_journeys(folder: Path, target: str) -> None:
    """10 journeys; the first one due as soon as it is loaded (phase under 0.1%)."""
    due_now = next(f"startup-{n}" for n in range(100_000) if phase(f"startup-{n}") < 0.001)
    others = [f"startup-other-{n}" for n in range(JOURNEYS - 1)]
    for name in (due_now, *others):
        (folder / f"{name}.yaml").write_text(
            f"journey: {name}\nbusiness_process: bench\nschedule: {{every: 15s, timeout: 5s}}\n"
            f'steps:\n  - name: page\n    http: {{get: "{target}/{name}"}}\n'
        )


class FirstRequest:
    """A loopback target that notes when its first request arrived."""

    def __init__(self) -> None:
        self.first = 0.0
        self.arrived = asyncio.Event()

    async def __aenter__(self) -> str:
        server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self._server = server
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.arrived.is_set():
            self.first = time.perf_counter()
            self.arrived.set()
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


async def first_200(session: aiohttp.ClientSession, url: str) -> float:
    """perf_counter at the first 200 of ``url``, polled every 5 ms (within 30 s)."""
    async with asyncio.timeout(30):
        while True:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return time.perf_counter()
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.005)


async def measure(
    command: Callable[[str], list[str]], ready_path: str, port: int, probe: str | None
) -> Figures:
    """Spawn ``command(target URL)``; time its readiness and its first request at the
    target; its PSS 3 s after ready."""
    target = FirstRequest()
    async with target as url, aiohttp.ClientSession() as session:
        argv = command(url)
        spawned = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            ready = await first_200(session, f"http://127.0.0.1:{port}{ready_path}")
            if probe is not None:  # blackbox_exporter probes when asked, not on a schedule
                query = {"module": "http", "target": f"{url}/probe"}
                async with session.get(f"http://127.0.0.1:{port}{probe}", params=query):
                    pass
            async with asyncio.timeout(20):
                await target.arrived.wait()
            await asyncio.sleep(max(0.0, ready + 3.0 - time.perf_counter()))
            tree = [process.pid, *descendant_pids(process.pid)]
            return ready - spawned, target.first - spawned, pss_mb(tree), len(tree)
        finally:
            process.terminate()
            await process.wait()


async def bench(rounds: int, folder: Path) -> list[Row]:
    journeys = folder / "journeys"
    journeys.mkdir()
    config = blackbox_config(folder)

    def ours() -> Awaitable[Figures]:
        port = free_port()

        def command(target: str) -> list[str]:
            for old in journeys.iterdir():
                old.unlink()
            write_journeys(journeys, target)
            return [JOURNEYMAN, "run", str(journeys), "--listen", f"127.0.0.1:{port}"]

        return measure(command, "/readyz", port, None)

    def theirs() -> Awaitable[Figures]:
        port = free_port()
        argv = [BLACKBOX, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"]
        return measure(lambda target: argv, "/metrics", port, "/probe")

    arms: dict[str, Callable[[], Awaitable[Figures]]] = {
        "journeyman": ours,
        "blackbox_exporter": theirs,
    }
    figures: dict[str, list[Figures]] = {name: [] for name in arms}
    for n in range(rounds):
        for name in list(arms) if n % 2 == 0 else list(reversed(arms)):
            figures[name].append(await arms[name]())
    return report(figures, rounds)


def report(figures: dict[str, list[Figures]], rounds: int) -> list[Row]:
    print(f"  {'arm':<18} {'ready ms':<24} {'first request ms':<24} {'idle MB PSS':<20} processes")
    for name, mine in figures.items():
        print(f"  {name:<18} {spread([f[0] for f in mine], 1000, 0):<24} "
              f"{spread([f[1] for f in mine], 1000, 0):<24} "
              f"{spread([f[2] for f in mine], 1, 1):<20} {max(f[3] for f in mine)}")  # fmt: skip
    print(f"  {rounds} rounds, arms alternating")
    ours, theirs = figures["journeyman"], figures["blackbox_exporter"]
    med = [(statistics.median(f[i] for f in ours), statistics.median(f[i] for f in theirs))
           for i in range(3)]  # fmt: skip
    return [
        Row("startup", "start-up: spawn to ready (/readyz 200; blackbox: /metrics 200), "
            f"{JOURNEYS} journeys", med[0][0] * 1e3, "blackbox_exporter", med[0][1] * 1e3, "ms",
            "<= 500 ms"),
        Row("startup", "start-up: spawn to the first due run's request", med[1][0] * 1e3,
            "blackbox_exporter", med[1][1] * 1e3, "ms"),
        Row("startup", f"idle PSS, {JOURNEYS} HTTP journeys, no browser", med[2][0],
            "blackbox_exporter", med[2][1], "MB", "<= 45 MB"),
    ]  # fmt: skip


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("--rounds", type=int, help="starts per arm (default 7, quick 3)")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    print(f"bench/startup.py: start-up and idle memory; load average {load_average()}")
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-c", _COMPILE], cwd=folder, check=True)
        rows = asyncio.run(bench(rounds, Path(folder)))
    print(f"load average at the end: {load_average()}")
    write_rows(args.rows, rows)


if __name__ == "__main__":
    main()
