"""Real runs through the exporter and the server, scraped over HTTP and checked by promtool."""

from __future__ import annotations

import asyncio
import socket
import subprocess

import httpx
import pytest
from binaries import required_binary
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from agent.language.model import Journey
from agent.run.context import RunEnvironment
from agent.run.runner import run_journey
from agent.serve.server import start_server
from exporters.prometheus import PrometheusExporter
from exporters.status import StatusBoard

pytestmark = pytest.mark.promtool


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _journey(name: str, url: str, process: str = "order-to-cash") -> Journey:
    return Journey.model_validate(
        {
            "journey": name,
            "business_process": process,
            "slo": {"latency": {"threshold": "2s", "objective": "95%"}},
            "schedule": {"every": "10s", "timeout": "3s"},
            "steps": [{"name": "get page", "http": {"get": url}, "expect": {"status": 200}}],
        }
    )


async def test_scraped_metrics_of_real_runs_pass_promtool(shop: str) -> None:
    """Runs that succeed, fail on status and fail to connect scrape cleanly and as counted."""
    promtool = required_binary("promtool")
    journeys = [
        _journey("works", f"{shop}/status/200"),
        _journey("broken", f"{shop}/status/503"),
        _journey("down", f"http://127.0.0.1:{_closed_port()}/", process="partner-orders"),
    ]
    exporter, board = PrometheusExporter(CollectorRegistry(), "lab"), StatusBoard()
    for sink in (exporter, board):
        sink.set_inventory(journeys, None)
    env = RunEnvironment(environ={})
    for journey in journeys:
        result = await run_journey(journey, env)
        exporter.export(result)
        board.export(result)
    server = await start_server("127.0.0.1:0", metrics=exporter, board=board, ready=lambda: True)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(f"{server.url}/metrics")).text
    finally:
        await server.close()

    check = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout + check.stderr == ""  # not even a lint warning
    step = {"step": "get page", "location": "lab", "persona": "customer"}
    assert _value(text, "journey_runs_total", journey="works", outcome="success") == 1
    assert (
        _value(text, "journey_failures_total", journey="broken", reason="http_status", **step) == 1
    )
    assert _value(text, "journey_failures_total", journey="down", reason="connect", **step) == 1
    assert _value(text, "journey_http_phase_seconds_total", journey="works", phase="wait") > 0
    assert _value(text, "journey_duration_seconds_count", journey="works") == 1


def _value(text: str, name: str, **labels: str) -> float:
    """The one sample named ``name`` whose labels include ``labels``."""
    found = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]
