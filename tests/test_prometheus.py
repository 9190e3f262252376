"""The Prometheus exporter: exact series for a fixed run sequence, cache, inventory."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from test_prometheus_samples import CLOCK, T0, catalog, checkout, partner_order, results

from agent.run.results import Outcome, RunResult
from exporters.prometheus import PrometheusExporter

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("JOURNEYMAN_UPDATE_GOLDEN") == "1"  # rewrite the golden files
CHECKOUT = 'business_process="order-to-cash",journey="checkout",location="eu-west-1"'


def _exporter(clock: Callable[[], float] = lambda: CLOCK) -> PrometheusExporter:
    exporter = PrometheusExporter(
        CollectorRegistry(), "eu-west-1", clock=clock, python_version="3.11.9"
    )
    exporter.set_inventory([checkout(), partner_order()], catalog())
    return exporter


def _samples(text: bytes) -> dict[str, str]:
    """Sample lines as {name{labels}: value}."""
    lines = (line.rsplit(" ", 1) for line in text.decode().splitlines() if line[:1] != "#")
    return {key: value for key, value in lines}


def _run(duration: float, outcome: Outcome = Outcome.SUCCESS) -> RunResult:
    return replace(results()[2], duration=duration, outcome=outcome)


@pytest.mark.parametrize(
    ("openmetrics", "golden"), [(False, "prometheus.txt"), (True, "prometheus.openmetrics.txt")]
)
def test_exposition_matches_the_golden_file(openmetrics: bool, golden: str) -> None:
    """A fixed sequence of runs renders byte for byte as the golden exposition text."""
    exporter = _exporter()
    for result in results():
        exporter.export(result)
    text = exporter.render(openmetrics).decode()
    if UPDATE:
        (GOLDEN / golden).write_text(text)
    assert text == (GOLDEN / golden).read_text()


def test_openmetrics_output_parses() -> None:
    """The OpenMetrics rendering passes prometheus-client's strict OpenMetrics parser."""
    exporter = _exporter()
    for result in results():
        exporter.export(result)
    families = text_string_to_metric_families(exporter.render(openmetrics=True).decode())  # type: ignore[no-untyped-call]
    names = {family.name for family in families}
    assert {"journey_runs", "journey_duration_seconds", "business_process_peak"} <= names


def test_cached_render_equals_uncached_after_every_change() -> None:
    """Each result invalidates its journey's cache: render() always equals generate_latest."""
    exporter = _exporter()
    registry = exporter.registry
    assert _samples(exporter.render()) == _samples(generate_latest(registry))
    for result in results():
        exporter.export(result)
        assert _samples(exporter.render()) == _samples(generate_latest(registry))
    key = f'journey_runs_total{{{CHECKOUT},outcome="success",persona="customer"}}'
    assert _samples(exporter.render())[key] == "2.0"


def test_failure_text_never_becomes_a_label() -> None:
    """Messages of failed runs (and unknown journeys) stay out of the series."""
    exporter = _exporter()
    for result in results():
        exporter.export(result)
    text = exporter.render().decode()
    assert "API_TOKEN" not in text
    assert "503" not in text
    assert "ghost" not in text


def test_slow_runs_compare_the_duration_to_the_exact_threshold() -> None:
    """At the 1 s threshold a run is not slow; just above it is; failed runs never are."""
    exporter = _exporter()
    for duration in (1.0, 1.000001, 0.3):
        exporter.export(_run(duration))
    exporter.export(_run(9.0, Outcome.FAILURE))
    samples = _samples(exporter.render())
    assert samples[f'journey_slow_runs_total{{{CHECKOUT},persona="customer"}}'] == "1.0"
    assert samples[f'journey_latency_threshold_seconds{{{CHECKOUT},persona="customer"}}'] == "1.0"
    assert not any(
        key.startswith("journey_slow_runs_total") and "partner" in key for key in samples
    )


def test_counters_start_at_zero_when_a_journey_is_loaded() -> None:
    """Before any run, every outcome and the slow-run counter exist at 0 (rate() works)."""
    samples = _samples(_exporter().render())
    for outcome in ("success", "failure", "aborted"):
        key = f'journey_runs_total{{{CHECKOUT},outcome="{outcome}",persona="customer"}}'
        assert samples[key] == "0.0"
    assert samples[f'journey_slow_runs_total{{{CHECKOUT},persona="customer"}}'] == "0.0"
    assert not any(key.startswith("journey_success") for key in samples)


def test_removed_journeys_lose_every_series_and_stay_gone() -> None:
    """A reload without a journey removes all its series; a late result does not revive them."""
    exporter = _exporter()
    for result in results():
        exporter.export(result)
    exporter.set_inventory([partner_order()], catalog())
    exporter.export(results()[0])  # a checkout run that finished after the reload
    text = exporter.render().decode() + generate_latest(exporter.registry).decode()
    assert 'journey="checkout"' not in text
    assert 'journey="partner-order"' in text


def test_changed_labels_and_removed_steps_drop_their_old_series() -> None:
    """Moving a journey to another process, or removing a step, drops the stale series."""
    exporter = _exporter()
    for result in results():
        exporter.export(result)
    steps = [{"name": "home page", "http": {"get": "https://shop.test/"}}]
    exporter.set_inventory([checkout(steps=steps), partner_order(business_process="b2b")], None)
    text = exporter.render().decode()
    assert 'step="log in"' not in text
    assert 'step="home page"' in text
    assert 'business_process="partner-orders"' not in text
    assert 'journey_runs_total{business_process="b2b",journey="partner-order"' in text
    assert "business_process_info" not in text  # no catalog, no business-process series


def test_expected_volume_follows_the_catalog_hour_at_scrape_time() -> None:
    """The expected volume and the peak flag are read at scrape time, in the catalog's zone."""
    now = [CLOCK]
    exporter = _exporter(clock=lambda: now[0])
    where = '{business_process="order-to-cash",location="eu-west-1"}'
    key, peak = (
        f"business_process_expected_transactions_per_hour{where}",
        f"business_process_peak{where}",
    )

    samples = _samples(exporter.render())
    assert (samples[key], samples[peak]) == ("120.0", "1.0")  # 11:00 in Paris
    now[0] = T0  # 09:00 in Paris
    samples = _samples(exporter.render())
    assert (samples[key], samples[peak]) == ("10.0", "0.0")


def test_the_registry_is_the_one_given_and_names_are_reserved() -> None:
    """Nothing lands on the global registry; a second exporter on the same one is refused."""
    exporter = _exporter()
    assert "journey_runs_total" not in generate_latest(REGISTRY).decode()
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusExporter(exporter.registry, "elsewhere")
