"""HTTP step timings come from the wire (trace events, the kernel's arrival times) and add
up plausibly; the agent's own busy loop never counts."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from conftest import ContextFactory
from http_servers import http_step

from agent.run.context import StepRecord
from agent.steps.http.run import run

SLEEP = 0.2
SLACK = 2.0  # generous upper bound: a loaded CI machine must not make these flaky


async def test_wait_phase_covers_server_think_time(shop: str, make_context: ContextFactory) -> None:
    """A server sleeping 0.2 s before answering shows as wait >= 0.2 s, inside the total."""
    ctx = make_context()
    await run(http_step(http={"get": f"{shop}/slow?seconds={SLEEP}"}), ctx)
    phases, total = ctx.record.values("phases"), ctx.record.duration
    assert set(phases) == {"connect", "send", "wait", "receive"}
    assert SLEEP <= phases["wait"] < SLEEP + SLACK
    assert total is not None
    assert phases["wait"] <= total < SLEEP + SLACK
    assert sum(phases.values()) <= total + 1e-6
    assert ctx.record.get("status_code") == 200


async def test_reused_connection_has_no_connect_phase(
    shop: str, make_context: ContextFactory
) -> None:
    """The second request of a run reuses the connection: no connect phase is recorded."""
    ctx = make_context()
    await run(http_step(http={"get": f"{shop}/echo"}), ctx)
    assert "connect" in ctx.record.values("phases")
    ctx.record = StepRecord()
    await run(http_step(http={"get": f"{shop}/echo"}), ctx)
    assert "connect" not in ctx.record.values("phases")
    assert ctx.record.values("phases")["wait"] > 0


async def test_redirect_hops_are_summed(shop: str, make_context: ContextFactory) -> None:
    """Two redirects and the page, each sleeping 0.1 s: wait and total cover all three."""
    ctx = make_context()
    await run(http_step(http={"get": f"{shop}/slow-redirect/2?seconds=0.1"}), ctx)
    assert 3 * 0.1 <= ctx.record.values("phases")["wait"] < 3 * 0.1 + SLACK
    assert ctx.record.duration is not None
    assert ctx.record.values("phases")["wait"] <= ctx.record.duration < 3 * 0.1 + SLACK


@contextmanager
def answering_in_a_thread(on_request: Callable[[], None], delay: float) -> Iterator[str]:
    """A one-connection HTTP server in a thread of its own (the test's loop may be held):
    on the request it calls ``on_request``, then answers after ``delay``."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(4096)
            on_request()
            time.sleep(delay)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            connection.recv(1)  # until the client closes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    finally:
        server.close()
        thread.join(timeout=5)


async def test_a_loop_held_busy_when_the_answer_arrives_is_not_the_targets_time(
    make_context: ContextFactory,
) -> None:
    """The agent's loop is held for 0.6 s from the moment the server has the request; the
    answer arrives 0.05 s later, while the loop is held. The step reports the wire's
    ~0.05 s, not the ~0.6 s a clock around the await would (the agent's wait)."""
    loop = asyncio.get_running_loop()
    hold = 0.6

    def hold_the_loop() -> None:
        loop.call_soon_threadsafe(time.sleep, hold)

    ctx = make_context()
    with answering_in_a_thread(hold_the_loop, delay=0.05) as url:
        started = time.perf_counter()
        await run(http_step(http={"get": url}), ctx)
        around_the_await = time.perf_counter() - started
    assert around_the_await >= hold
    assert ctx.record.duration is not None
    # wait starts when send() has returned: on loopback the server may already be sleeping,
    # so the step can read a few microseconds under the server's 0.05 s
    assert 0.049 <= ctx.record.duration < hold / 2, ctx.record.values("phases")
    assert 0.049 <= ctx.record.values("phases")["wait"] < hold / 2
