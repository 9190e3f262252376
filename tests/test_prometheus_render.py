"""Journey text rendered per result: same bytes as prometheus-client, never redone by a scrape."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.utils import floatToGoString
from test_prometheus_samples import catalog, checkout, partner_order, results

import agent.serve.server as server_module
from agent.serve.gzipped import Deflated, deflate
from agent.serve.server import start_server
from exporters.prometheus import PrometheusExporter
from exporters.prometheus_series import JourneySeries
from exporters.prometheus_text import (
    FamilyWriter,
    encode,
    histogram_template,
    number,
    ready,
    sample_template,
)
from exporters.status import StatusBoard

AWKWARD = 'pay "now" \\ 100%s\nthen € % done'


def _exporter(*journeys: object) -> PrometheusExporter:
    exporter = PrometheusExporter(CollectorRegistry(), "eu-west-1", python_version="3.11.9")
    exporter.set_inventory(list(journeys) or [checkout(), partner_order()], catalog())  # type: ignore[arg-type]
    return exporter


def _fed() -> PrometheusExporter:
    exporter = _exporter()
    for result in results():
        exporter.export(result)
    return exporter


class _Encoded:
    def __init__(self, family: object) -> None:
        self.family = family

    def collect(self) -> Iterator[object]:
        yield self.family


@pytest.mark.parametrize(
    "value",
    [0.0, -0.0, 1.0, 0.1 + 0.2, 999_999.0, 999_999.99, 1e6, 1_234_567.0, 1e12, 1e17, 1.8e9,
     -3.5, -1e300, float("inf"), float("-inf"), float("nan")],
)  # fmt: skip
def test_values_handed_to_templates_come_out_as_prometheus_client_writes_them(
    value: float,
) -> None:
    """A float left for ``%r`` to write (below a million) and a written one (from a million
    on: Go's exponent, infinities, NaN) both give prometheus-client's text."""
    assert b"%r" % ready(value) == floatToGoString(value).encode()  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    "value",
    [0.0, -0.0, 1.0, 0.5, 1e-5, 1.5e-7, 0.1 + 0.2, 123456.5, 999_999.99, 1e6, 1_000_000.5,
     1.8e9, 1e16, 2.5e15, -3.5, -1e300, -1.8e9, float("inf"), float("-inf"), float("nan"), 7],
)  # fmt: skip
def test_values_are_written_as_prometheus_client_writes_them(value: float) -> None:
    """The shortcut below a million and the general case agree with prometheus-client's
    Go-style formatting, signs, exponents and infinities included."""
    assert number(value) == floatToGoString(value)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("value", [0.0, 1e-9, 0.1 + 0.2, 1.8e9, 2.5e15, -3.5, float("inf")])
def test_sample_lines_match_the_encoder_on_awkward_labels(value: float) -> None:
    """Quotes, backslashes, newlines, % and non-ASCII in label values: the same line."""
    family = CounterMetricFamily("x_seconds", "d", labels=["step", "b", "a"])
    family.add_metric([AWKWARD, "", "é"], value)
    encoded = generate_latest(_Encoded(family)).decode()  # type: ignore[arg-type]
    template = sample_template("x_seconds_total", [("step", AWKWARD), ("b", ""), ("a", "é")])
    assert (template % ready(value)).decode() == encoded.split("\n", 2)[2]


def test_histogram_lines_match_the_encoder() -> None:
    """Buckets with ``le`` placed among the labels by name, then _count and _sum; counts
    given as ints (the template writes their ``.0``) or as written."""
    family = HistogramMetricFamily("h_seconds", "d", labels=["step", "journey"])
    buckets = [("0.5", 1.0), ("1.0", 3.0), ("+Inf", 4.0)]
    family.add_metric([AWKWARD, "j"], buckets, 2.25)
    encoded = generate_openmetrics(_Encoded(family)).decode()  # type: ignore[no-untyped-call]
    labels, les = [("step", AWKWARD), ("journey", "j")], ["0.5", "1.0", "+Inf"]
    whole = histogram_template("h_seconds", labels, les, True) % (1, 3, 4, 4, 2.25)
    written = [ready(value) for value in (1.0, 3.0, 4.0, 4.0, 2.25)]
    for lines in (whole, histogram_template("h_seconds", labels, les, False) % tuple(written)):
        assert (
            "# HELP h_seconds d\n# TYPE h_seconds histogram\n" + lines.decode() + "# EOF\n"
            == encoded
        )


@pytest.mark.parametrize("openmetrics", [False, True])
def test_other_families_are_written_as_the_encoder_writes_them(openmetrics: bool) -> None:
    """Counters with _created, histograms, summaries, info, enums, units, awkward help and
    values, and families the writer hands to the encoder (a timestamp, a name with ':')."""
    registry = CollectorRegistry()
    doc = 'Help with "quotes", a \\ and a\nnewline'
    runs = Counter("runs", doc, ["journey", "step"], registry=registry)
    runs.labels("j", AWKWARD).inc(1_234_567)
    runs.labels("k", "").inc(0.5)
    Histogram("lag_seconds", doc, buckets=(0.1, 1.0), registry=registry).observe(0.3)
    Summary("size_bytes", "Sizes", unit="bytes", registry=registry).observe(12)
    Gauge("in_flight", "In flight", registry=registry).set(float("nan"))
    Info("build", "Build", registry=registry).info({"version": AWKWARD})
    Enum("state", "State", states=["a", "b"], registry=registry).state("b")
    stamped = GaugeMetricFamily("stamped", "With a timestamp", labels=["x"])
    stamped.add_metric(["y"], 1.0, timestamp=1_800_000_000.5)
    colon = CounterMetricFamily("agent:runs", "Recorded", labels=["x"])
    colon.add_metric(["y"], 3.0)
    families = [*registry.collect(), stamped, colon]
    assert FamilyWriter().write(families, openmetrics) == encode(families, openmetrics)


@pytest.mark.parametrize("openmetrics", [False, True])
def test_rendered_text_is_byte_identical_to_the_encoder(openmetrics: bool) -> None:
    """With awkward step names, titles and owners, after every result, in both formats,
    the rendered exposition is exactly prometheus-client's encoding of the registry."""
    steps = [
        {"name": AWKWARD, "http": {"get": "https://shop.test/"}},
        {"name": "log in", "http": {"post": "https://shop.test/api/login"}},
        {"name": "pay", "browser": [{"goto": "https://shop.test/cart"}]},
    ]
    journey = checkout(steps=steps, title='The "best" \\ shop\n100%', owner="%(x)s")
    exporter = _exporter(journey, partner_order())
    encode = generate_openmetrics if openmetrics else generate_latest
    for result in results():
        if result.steps:
            renamed = (replace(result.steps[0], name=AWKWARD), *result.steps[1:])
            result = replace(result, steps=renamed)
        exporter.export(result)
        assert exporter.render(openmetrics) == encode(exporter.registry)
    assert 'step="pay \\"now\\" \\\\ 100%s\\nthen € % done"' in exporter.render().decode()


@pytest.mark.parametrize("openmetrics", [False, True])
def test_histograms_past_a_million_runs_are_written_as_the_encoder_writes_them(
    openmetrics: bool,
) -> None:
    """Counts and sums from a million on (exponents, as Go writes them) take the slow path
    and still come out as prometheus-client's encoding."""
    exporter = _fed()
    series = exporter._journeys["checkout"]
    series.duration.counts[3] += 1_234_567
    series.duration.total += 2.5e6
    series.render()
    encode = generate_openmetrics if openmetrics else generate_latest
    assert exporter.render(openmetrics) == encode(exporter.registry)
    assert b"e+06\n" in exporter.render()


def test_a_scrape_serves_what_the_results_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once results are exported, scraping renders no journey again and builds no metric
    family: the journey parts of the second scrape are the very list of the first, made
    of the pieces the results rendered, never joined (a 14 MB join held the GIL for
    1.3-10 ms)."""
    exporter = _fed()
    expected = exporter.render()

    def forbidden(self: JourneySeries) -> None:
        raise AssertionError("a scrape re-rendered a journey")

    monkeypatch.setattr(JourneySeries, "render", forbidden)
    monkeypatch.setattr(JourneySeries, "families", forbidden)
    generation, first = exporter.journey_parts()
    again, second = exporter.journey_parts()
    assert second is first
    assert again == generation
    rendered = {id(piece) for series in exporter._journeys.values() for piece in series.pieces}
    headers = {id(header) for header in exporter._headers[False]}
    assert all(id(part) in rendered | headers for part in first)
    assert b"".join(first) + exporter.other_text() == expected


def test_a_result_changes_only_its_journeys_block() -> None:
    """A checkout result renders checkout's block again and leaves partner-order's alone."""
    exporter = _fed()
    blocks = {name: series.pieces for name, series in exporter._journeys.items()}
    generation = exporter.journey_parts()[0]
    exporter.export(results()[0])
    assert exporter._journeys["partner-order"].pieces is blocks["partner-order"]
    assert exporter._journeys["checkout"].pieces != blocks["checkout"]
    assert exporter.journey_parts()[0] > generation


def test_reloading_the_same_journeys_renders_nothing_and_a_changed_one_again() -> None:
    """An unchanged inventory keeps every block and the generation; a new title renders."""
    exporter = _fed()
    blocks = {name: series.pieces for name, series in exporter._journeys.items()}
    generation = exporter.journey_parts()[0]
    exporter.set_inventory([checkout(), partner_order()], catalog())
    assert exporter.journey_parts()[0] == generation
    assert all(exporter._journeys[name].pieces is pieces for name, pieces in blocks.items())
    exporter.set_inventory([checkout(title="New title"), partner_order()], catalog())
    assert exporter._journeys["partner-order"].pieces is blocks["partner-order"]
    assert b'title="New title"' in exporter.render()
    assert exporter.journey_parts()[0] > generation


@asynccontextmanager
async def _served(exporter: PrometheusExporter) -> AsyncIterator[httpx.AsyncClient]:
    server = await start_server(
        "127.0.0.1:0", metrics=exporter, board=StatusBoard(), ready=lambda: True
    )
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
            yield http
    finally:
        await server.close()


async def _scrape(http: httpx.AsyncClient, accept: str, gzipped: bool) -> bytes:
    headers = {"Accept": accept, "Accept-Encoding": "gzip" if gzipped else "identity"}
    async with http.stream("GET", "/metrics", headers=headers) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.headers.get("content-encoding") == ("gzip" if gzipped else None)
    return gzip.decompress(raw) if gzipped else raw


@pytest.mark.parametrize("accept", ["text/plain", "application/openmetrics-text"])
async def test_gzipped_scrapes_follow_new_results_and_the_other_series(
    accept: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journey part is compressed once per generation; every gzipped scrape still
    inflates to the plain body, after a new result and after a change elsewhere."""
    heads: list[int] = []

    def counted(parts: Sequence[bytes]) -> Deflated:
        heads.append(len(parts))
        return deflate(parts)

    monkeypatch.setattr(server_module, "deflate", counted)
    exporter = _fed()
    other = Counter("other_events", "Events elsewhere in the agent", registry=exporter.registry)
    changes: list[Callable[[], object]] = [
        lambda: None,
        lambda: None,
        other.inc,
        lambda: exporter.export(results()[0]),
    ]
    async with _served(exporter) as http:
        for change in changes:
            change()
            plain = await _scrape(http, accept, gzipped=False)
            assert await _scrape(http, accept, gzipped=True) == plain
            assert plain == exporter.render(accept != "text/plain")
    assert b"other_events_total 1.0" in plain
    assert len(heads) == 2  # the first scrape, and the one after the new result
