"""HTTP step timings come from httpcore's trace events and add up plausibly."""

from __future__ import annotations

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
