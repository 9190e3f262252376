"""A loopback HTTP target that answers every request after a fixed delay and keeps the
server-side truth: when each request arrived and when its answer was written.

Each request is keyed by the trace id of its ``traceparent`` header when it has one (the
agent sends one per run) and by its path otherwise. ``GET /__records`` answers the
records kept so far as JSON ``{key: [arrived, sent]}`` (``time.monotonic()``, the same
clock in every process of the machine) and forgets them. A lean asyncio protocol rather
than a web framework: it is not the thing measured, and shares the machine's cores.

Run by the benches: ``python -m bench.timed_target DELAY``; prints its port.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import ClassVar

__all__ = ["Target"]

PAGE = b"<html><body>Welcome to the shop</body></html>"


def _answer(body: bytes, content_type: bytes = b"text/html") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
    return head % (content_type, len(body)) + body


class Target(asyncio.Protocol):
    records: ClassVar[dict[str, list[float]]] = {}  # one server per process: shared by connections
    delay = 0.2

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport, self._pending = transport, b""

    def data_received(self, data: bytes) -> None:
        arrived = time.monotonic()
        self._pending += data
        while b"\r\n\r\n" in self._pending:
            head, self._pending = self._pending.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1] if " " in lines[0] else ""
            if path == "/__records":
                self._transport.write(
                    _answer(json.dumps(Target.records).encode(), b"application/json")
                )
                Target.records = {}
                continue
            key = path
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "traceparent":
                    key = value.strip().split("-")[1]
            Target.records[key] = [arrived, 0.0]
            asyncio.get_running_loop().call_later(self.delay, self._send, key)

    def _send(self, key: str) -> None:
        if not self._transport.is_closing():
            self._transport.write(_answer(PAGE))
            if key in Target.records:
                Target.records[key][1] = time.monotonic()


async def serve(delay: float) -> None:
    Target.delay = delay
    server = await asyncio.get_running_loop().create_server(Target, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(float(sys.argv[1])))
