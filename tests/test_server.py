"""The agent's HTTP endpoint: health, readiness, metrics negotiation, the status page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from test_exporters import Lifecycle
from test_prometheus_samples import catalog, checkout, partner_order, results
from test_scheduler import ids_near_zero_phase

from agent.app import Settings, run_agent
from agent.run.results import Outcome
from agent.serve.server import Readiness, RunningServer, parse_listen, start_server
from exporters.prometheus import PrometheusExporter
from exporters.status import StatusBoard

SECRET = "hunter2-Sup3rSecret"
SLOW = """\
journey: {id}
business_process: order-to-cash
schedule: {{every: 60s, timeout: 40s}}
steps:
  - name: slow page
    http: {{get: "{url}"}}
"""
Agent = tuple[RunningServer, StatusBoard, list[bool]]  # the server, its board, its readiness


@pytest.fixture
async def agent() -> AsyncIterator[Agent]:
    """A server on loopback over an exporter and a board fed with the sample runs."""
    exporter = PrometheusExporter(CollectorRegistry(), "eu-west-1")
    board = StatusBoard()
    journeys = [checkout(title="<script>alert(1)</script>"), partner_order()]
    for sink in (exporter, board):
        sink.set_inventory(journeys, catalog())
        for result in results():
            sink.export(result)
    ready = [False]
    server = await start_server(
        "127.0.0.1:0", metrics=exporter, board=board, ready=lambda: ready[0], location="eu-west-1"
    )
    yield server, board, ready
    await server.close()


async def _get(server: RunningServer, path: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
        return await client.get(path, headers=headers)


async def test_healthz_answers_and_readyz_follows_the_callable(agent: Agent) -> None:
    """/healthz is 200 at once; /readyz is 503 until ready() says True, then 200."""
    server, _, ready = agent
    assert server.url.startswith("http://127.0.0.1:")
    assert (await _get(server, "/healthz")).status_code == 200
    assert (await _get(server, "/readyz")).status_code == 503
    ready[0] = True
    assert (await _get(server, "/readyz")).status_code == 200


async def test_readyz_says_why_it_is_not_ready() -> None:
    """A Readiness answers 503 "starting", then 200, then 503 "shutting down" for good."""
    readiness = Readiness()
    exporter, board = PrometheusExporter(CollectorRegistry(), "here"), StatusBoard()
    server = await start_server("127.0.0.1:0", metrics=exporter, board=board, ready=readiness)
    seen = []
    try:
        for change in (None, readiness.set_ready, readiness.set_shutting_down, readiness.set_ready):
            if change is not None:
                change()
            response = await _get(server, "/readyz")
            seen.append((response.status_code, response.text))
    finally:
        await server.close()
    assert seen == [
        (503, "not ready: starting\n"),
        (200, "ready\n"),
        (503, "not ready: shutting down\n"),
        (503, "not ready: shutting down\n"),
    ]


async def _until(client: httpx.AsyncClient, path: str, status: int, text: str) -> None:
    """GET ``path`` until it answers ``status`` with a body containing ``text``."""
    while True:
        response = await client.get(path)
        if response.status_code == status and text in response.text:
            return
        await asyncio.sleep(0.02)


async def test_readyz_follows_a_real_agent_from_starting_to_shutting_down(
    shop: str, tmp_path: Path
) -> None:
    """run_agent over real HTTP: /readyz is 503 "starting" while an exporter starts, 200
    once journeys are scheduled, 503 "shutting down" from the stop on while a run is cut
    off and the exporters close; /healthz is 200 throughout; the cut-off run reaches the
    exporter before its close."""
    (journey_id,) = ids_near_zero_phase(1)
    (tmp_path / "slow.yaml").write_text(SLOW.format(id=journey_id, url=f"{shop}/slow?seconds=30"))
    journal: list[str] = []
    gates = {"start": asyncio.Event(), "close": asyncio.Event()}
    gate = Lifecycle("gate", journal, wait=gates)
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    settings = Settings(paths=(tmp_path,), listen="127.0.0.1:0", grace=0.1)
    agent = asyncio.create_task(
        run_agent(
            settings,
            stop,
            environ={},
            on_listening=listening.set_result,
            extra_exporters={"gate": gate},
        )
    )
    try:
        async with asyncio.timeout(30):
            url = await listening
            await gate.entered["start"].wait()
            async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                assert (await client.get("/healthz")).status_code == 200
                starting = await client.get("/readyz")
                assert (starting.status_code, starting.text) == (503, "not ready: starting\n")
                gates["start"].set()
                await _until(client, "/readyz", 200, "ready\n")
                await _until(client, "/metrics", 200, "\njourneyman_runs_in_flight 1.0\n")
                stop.set()
                await _until(client, "/readyz", 503, "not ready: shutting down\n")
                await gate.entered["close"].wait()
                assert (await client.get("/readyz")).text == "not ready: shutting down\n"
                assert (await client.get("/healthz")).status_code == 200
                gates["close"].set()
            await agent
    finally:
        stop.set()
        for event in gates.values():
            event.set()
        await asyncio.wait_for(agent, timeout=10)
    assert journal == ["gate.start", "gate.start done", "gate.export", "gate.close",
                       "gate.close done"]  # fmt: skip
    assert [(r.journey, r.outcome) for r in gate.results] == [(journey_id, Outcome.ABORTED)]


async def test_metrics_negotiates_text_or_openmetrics(agent: Agent) -> None:
    """Plain scrapes get the 0.0.4 text format; an OpenMetrics Accept gets OpenMetrics."""
    server, _, _ = agent
    plain = await _get(server, "/metrics")
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "journey_runs_total{" in plain.text
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    om = await _get(server, "/metrics", Accept=accept)
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")


async def test_status_page_groups_journeys_and_escapes_everything(agent: Agent) -> None:
    """The page lists each process with its journeys' outcome, failed step and reason."""
    server, _, _ = agent
    page = (await _get(server, "/")).text
    # worst first: partner-order's last finished run failed (its later run was aborted)
    assert page.index("Partner orders") < page.index("Order to cash") < page.index("checkout")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page
    partner = page[page.index("Partner orders") :]
    assert "aborted" in partner  # the last run of partner-order was cut off by shutdown
    assert "1 failing" not in partner


async def test_status_page_never_shows_messages_or_secrets(agent: Agent) -> None:
    """Run messages (which may quote responses) are not rendered, masked or not."""
    server, board, _ = agent
    failed = replace(results()[1], message=f"got 401 for password {SECRET} and ***")
    board.export(failed)
    page = (await _get(server, "/")).text
    assert SECRET not in page
    assert "got 401" not in page
    assert "http_status" in page
    assert "log in" in page


async def test_unknown_paths_are_404(agent: Agent) -> None:
    """Only the four endpoints exist."""
    server, _, _ = agent
    assert (await _get(server, "/metrics/../../etc/passwd")).status_code == 404


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 405),
        (b"HEAD /healthz HTTP/1.1\r\n\r\n", 200),
        (b"GET /journeys/ HTTP/1.1\r\n\r\n", 404),
        (b"GET /journeys/a/b HTTP/1.1\r\n\r\n", 404),
        (b"GET /evidence/x.png HTTP/1.1\r\n\r\n", 404),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
    ],
)
async def test_every_answer_carries_the_safe_headers_refusals_too(
    agent: Agent, raw: bytes, status: int
) -> None:
    """What the router refuses and what the parser refuses look alike: the same safe
    headers, no Server banner; HEAD answers with no body."""
    server, _, _ = agent
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(raw)
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode().lower()
    writer.close()
    assert head.startswith(f"http/1.1 {status} ")
    assert "x-content-type-options: nosniff\r\n" in head
    assert "content-security-policy: default-src 'none'" in head
    assert "server:" not in head
    assert ("allow: get, head\r\n" in head) is (status == 405)


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("0.0.0.0:9464", ("0.0.0.0", 9464)), (":9464", ("0.0.0.0", 9464)),
     ("[::1]:0", ("::1", 0)), ("localhost:80", ("localhost", 80))],
)  # fmt: skip
def test_parse_listen_accepts_host_port(listen: str, expected: tuple[str, int]) -> None:
    """host:port, :port and [v6]:port are understood."""
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["9464", "host:", "host:99999", "host:http"])
def test_parse_listen_rejects_bad_addresses_clearly(listen: str) -> None:
    """A bad --listen value says what is expected and what was given."""
    with pytest.raises(ValueError, match=r"host:port such as 0.0.0.0:9464, got"):
        parse_listen(listen)


async def test_a_taken_port_fails_to_start_and_leaks_nothing() -> None:
    """Starting on a port in use raises OSError; the first server keeps serving."""
    exporter, board = PrometheusExporter(CollectorRegistry(), "here"), StatusBoard()
    first = await start_server("127.0.0.1:0", metrics=exporter, board=board, ready=lambda: True)
    try:
        with pytest.raises(OSError, match="in use"):
            await start_server(
                first.url.removeprefix("http://"), metrics=exporter, board=board, ready=bool
            )
        assert (await _get(first, "/healthz")).status_code == 200
    finally:
        await first.close()
