"""Peak memory of the whole agent with every hostile target at once, against a plain 200 OK.

This process serves the targets on loopback (aiohttp, and a raw socket for the header
drip) and runs the real agent, ``python -m agent run --once``, as a child process over
one journey per target, all at once and with the agent's defaults (``max_body`` 10 MB).
The baseline arm is the same agent over as many journeys against a plain 200 OK. The
child's peak RSS is the kernel's high-water mark (``VmHWM``), its PSS the largest of the
samples taken every 20 ms from ``/proc/PID/smaps_rollup``. Arms take turns, ``ROUNDS``
runs each; prints each target's failure reason (from the JUnit report), then median
[min..max] peak RSS and PSS per arm and their ratio.

Targets: gzip, zlib and raw deflate bombs (1 GB of zeros each), the same in layers
(``gzip, gzip``, ``deflate, gzip``), a body claiming ``br`` (never offered: brotli and
zstandard are decoded only if installed, and the agent offers neither), endless bodies
(plain and gzip), a 1 GB Content-Length lie, JSON nested 200,000 deep, an unknown
charset, a page html.parser takes minutes on, a header drip and a slow trickle.
Run: ``.venv/bin/python -m bench.hostile_memory [rounds]`` from the repository root
(``PYTHONPATH=<other checkout>`` measures another version of the agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import json
import os
import statistics
import struct
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

ROUNDS = 3
GB = 1_000_000_000
SAMPLE_EVERY = 0.02
STEP_TIMEOUT = "5s"  # the drip and the trickle end here, as timeout
_MB = 1 << 20


def bombs(size: int) -> dict[str, bytes]:
    """``size`` zeros deflated once (level 9), framed as raw deflate, zlib and gzip."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunk = bytes(_MB)
    parts, crc, adler = [], 0, 1
    for _ in range(size // _MB):
        parts.append(deflater.compress(chunk))
        crc, adler = zlib.crc32(chunk, crc), zlib.adler32(chunk, adler)
    raw = b"".join(parts) + deflater.flush()
    length = size // _MB * _MB
    gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return {
        "raw": raw,
        "zlib": b"\x78\xda" + raw + struct.pack(">I", adler),
        "gzip": gzip_header + raw + struct.pack("<II", crc, length & 0xFFFFFFFF),
    }


def encoded_targets(size: int) -> dict[str, tuple[str, bytes]]:
    """Target name -> (Content-Encoding, body) of every bomb."""
    bomb = bombs(size)
    return {
        "gzip-bomb": ("gzip", bomb["gzip"]),
        "deflate-bomb": ("deflate", bomb["zlib"]),
        "raw-deflate-bomb": ("deflate", bomb["raw"]),
        "gzip-in-gzip": ("gzip, gzip", gzip.compress(bomb["gzip"], 9)),
        "deflate-in-gzip": ("deflate, gzip", gzip.compress(bomb["zlib"], 9)),
        "br-claimed": ("br", os.urandom(64 * 1024)),
    }


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Chunks = Iterator[tuple[bytes, float]]


def reply(**response: Any) -> Handler:
    """A handler answering ``web.Response(**response)``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(**response)

    return handler


def stream(head: dict[str, str], chunks: Callable[[], Chunks]) -> Handler:
    """A handler answering ``head`` and a body written chunk by chunk, each followed by its
    pause, until the chunks end or the client leaves."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers=head)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for chunk, pause in chunks():
                await response.write(chunk)
                await asyncio.sleep(pause)  # small writes do not wait: let the client read
        return response

    return handler


def endless(chunk: bytes, pause: float = 0.0) -> Callable[[], Chunks]:
    return lambda: itertools.repeat((chunk, pause))


def endless_gzip() -> Chunks:
    deflater = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(64 * 1024)
    while True:
        yield deflater.compress(zeros) + deflater.flush(zlib.Z_SYNC_FLUSH), 0.0


def hostile_app(encoded: dict[str, tuple[str, bytes]]) -> tuple[web.Application, dict[str, Any]]:
    """The app serving every target but the header drip, and what each journey expects."""
    app = web.Application()
    expects: dict[str, Any] = {}

    def add(name: str, handler: Handler, **step: Any) -> None:
        app.router.add_get(f"/{name}", handler)
        expects[name] = step

    for name, (coding, body) in encoded.items():
        head = {"Content-Encoding": coding, "Content-Type": "application/octet-stream"}
        add(name, reply(body=body, headers=head))
    add("endless", stream({}, endless(bytes(64 * 1024))))
    add("endless-gzip", stream({"Content-Encoding": "gzip"}, endless_gzip))
    add("length-lie", stream({"Content-Length": str(GB)}, endless(b"x" * 1024, 0.05)))
    add("trickle", stream({}, endless(b"x", 0.05)))
    deep = reply(body=b"[" * 200_000, content_type="application/json")
    add("deep-json", deep, expect={"json": {"$[0]": 1}})
    unknown = reply(body=b"Welcome", headers={"Content-Type": "text/html; charset=x-no-such"})
    add("unknown-charset", unknown, expect={"body_contains": "Welcome"})
    page = "<html>" + "<a " * 300_000
    add("hostile-page", reply(status=500, text=page, content_type="text/html"))
    app.router.add_get("/ok", reply(text="ok"))
    return app, expects


async def header_drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A status line, then one header byte every 50 ms until the client leaves."""
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        await reader.readuntil(b"\r\n\r\n")
        for piece in itertools.chain([b"HTTP/1.1 200 OK\r\nX-Drip: "], itertools.repeat(b"x")):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.05)
    writer.close()


def write_journeys(folder: Path, urls: dict[str, str], expects: dict[str, Any]) -> None:
    folder.mkdir()
    for name, url in urls.items():
        step = {"name": "hostile", "timeout": STEP_TIMEOUT, "http": {"get": url}}
        journey = {"journey": name, "business_process": "bench", "schedule": {"timeout": "10s"},
                   "steps": [{**step, **expects.get(name, {})}]}  # fmt: skip
        (folder / f"{name}.yaml").write_text(json.dumps(journey))  # JSON is YAML


async def measure(folder: Path, journeys: int, junit: Path) -> tuple[float, float]:
    """Peak RSS and PSS (MB) of ``journeyman run --once folder`` with every journey at once."""
    errors = junit.with_suffix(".stderr")
    with errors.open("wb") as stderr:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", "--once", str(folder), "--junit", str(junit),
            "--max-concurrency", str(journeys), "--log-level", "error",
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        rss = pss = 0
        while child.returncode is None:
            rss = max(rss, _field(f"/proc/{child.pid}/status", "VmHWM:"))
            pss = max(pss, _field(f"/proc/{child.pid}/smaps_rollup", "Pss:"))
            await asyncio.sleep(SAMPLE_EVERY)
        await child.wait()
    _require_report(junit, errors)
    return rss / 1024, pss / 1024


def _require_report(junit: Path, errors: Path) -> None:
    """Stop the bench, showing the agent's errors, when it did not get to run the journeys."""
    if not junit.exists():
        sys.exit(f"the agent failed:\n{errors.read_text()[-2000:]}")


def _field(path: str, name: str) -> int:
    """A kB figure from a /proc file, 0 once the process is gone."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith(name)), 0)


def reasons(junit: Path) -> dict[str, str]:
    cases = ET.parse(junit).getroot().iter("testcase")
    return {
        case.get("name", ""): next((f.get("type", "") for f in case.iter("failure")), "success")
        for case in cases
    }


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):6.0f} MB [{min(values):.0f}..{max(values):.0f}]"


async def main(rounds: int) -> None:
    started = time.perf_counter()
    app, expects = hostile_app(encoded_targets(GB))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    drip = await asyncio.start_server(header_drip, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    hostile = {name: f"{base}/{name}" for name in expects}
    hostile["header-drip"] = f"http://127.0.0.1:{drip.sockets[0].getsockname()[1]}/"
    plain = {f"plain-{n}": f"{base}/ok" for n in range(len(hostile))}
    print(f"{len(hostile)} hostile targets built in {time.perf_counter() - started:.1f}s; "
          f"agent: {sys.executable} -m agent, max_body 10 MB (default)")  # fmt: skip
    figures: dict[str, list[tuple[float, float]]] = {"baseline": [], "hostile": []}
    with tempfile.TemporaryDirectory() as tmp:
        folders = {"baseline": Path(tmp, "baseline"), "hostile": Path(tmp, "hostile")}
        write_journeys(folders["baseline"], plain, {})
        write_journeys(folders["hostile"], hostile, expects)
        for _ in range(rounds):
            for arm, folder in folders.items():
                figures[arm].append(await measure(folder, len(hostile), Path(tmp, f"{arm}.xml")))
        seen = reasons(Path(tmp, "hostile.xml"))
    drip.close()
    await runner.cleanup()
    for name in hostile:
        print(f"  {name:18} {seen.get(name, 'missing')}")
    for index, label in enumerate(("peak RSS", "peak PSS")):
        base_arm = [run[index] for run in figures["baseline"]]
        hostile_arm = [run[index] for run in figures["hostile"]]
        ratio = statistics.median(hostile_arm) / statistics.median(base_arm)
        print(f"{label}: baseline {summary(base_arm)}, hostile {summary(hostile_arm)}, "
              f"{ratio:.2f}x baseline ({rounds} runs each)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS))
