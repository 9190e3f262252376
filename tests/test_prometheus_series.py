"""A journey's rendered pieces: each family's values in its template's order, as written by
prometheus-client, whatever the values (render fills the templates without the generic
walk over the samples that made them)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client.utils import floatToGoString
from test_prometheus_samples import T0, results

from agent.run.results import Measurement, StepResult
from agent.steps.kind import Unit
from exporters.prometheus_series import MEASURES, SPECS, JourneySeries
from exporters.prometheus_text import encode, ready, ready_all

STEPS = ("home page", "log in", "pay")
INF, NAN = float("inf"), float("nan")
AWKWARD = [0.0, -0.0, 0.1 + 0.2, 999_999.99, 1e6, 1_234_567.5, 1.8e9, 1e16, 1e308, -3.5,
           -1e300, INF, -INF, NAN]  # fmt: skip


def _series() -> JourneySeries:
    """Checkout fed with its results (HTTP phases, a certificate, browser histograms, a
    failure, a retry), every measured value distinct from the others of its family."""
    info = ("storefront", "shop", "web-team", "critical", "Customer buys a product")
    labels = ("checkout", "order-to-cash", "customer", "eu-west-1")
    series = JourneySeries(labels, info, STEPS, None)
    series.update(info, STEPS, 1.0)
    for result in results():
        if result.journey == "checkout":
            series.record(result)
    for index, measured in enumerate(series.measured.values()):
        measured.duration.observe(index + 7.0)
        for number, key in enumerate(measured.series):
            measured.series[key] = index + number / 100
        for histogram in measured.histograms.values():
            histogram.observe(index + 0.5)
    return series


def _encoded(series: JourneySeries) -> list[bytes]:
    """prometheus-client's sample lines of each family of SPECS, from ``families()``."""
    built = {family.name: family for family in series.families()}
    pieces = []
    for spec in SPECS:
        family = built.get(spec.family().name)
        header = encode([spec.family()], openmetrics=False)
        pieces.append(b"" if family is None else encode([family], False).removeprefix(header))
    return pieces


def _awkward(series: JourneySeries) -> None:
    measured = series.measured
    phases = measured["home page"].series
    for key, value in zip(phases, AWKWARD[9:], strict=False):
        phases[key] = value
    phases[("journey_tls_cert_expiry_timestamp_seconds", "")] = 1.8e9 + 0.25
    measured["log in"].series[("journey_http_phase_seconds_total", "wait")] = 1e16
    series.success, series.last_run, series.last_success = -INF, NAN, 1.8e9 + 0.5
    series.threshold = 2.5e6
    series.runs["success"] = 1_234_567
    series.retries = 10**16 + 1
    series.failures[("http_status", "log in")] = 2_000_000
    series.duration.total = NAN
    measured["log in"].duration.counts[3] += 1_500_000
    vital = measured["pay"].histograms[("journey_web_vital_seconds", "lcp")]
    vital.counts[0] += 2_000_000
    vital.total = 2.5e6


def _grown(series: JourneySeries) -> None:
    """New series among others of their families: a failure, a phase of the second step."""
    series.failures[("assertion", "home page")] = 3
    dns = Measurement("phases", "dns", 0.125, Unit.SECONDS)
    step = StepResult("log in", "http", True, T0, 0.25, measurements=(dns,))
    series.measured["log in"].record(step, MEASURES["http"])


@pytest.mark.parametrize("change", [lambda series: None, _awkward, _grown])
def test_each_piece_is_the_encoders_lines_of_its_family(
    change: Callable[[JourneySeries], None],
) -> None:
    """As fed, with awkward values (infinities, NaN, counts and gauges past a million,
    wide histograms), and after series appear: every piece, byte for byte."""
    series = _series()
    change(series)
    series.render()
    assert list(series.pieces) == _encoded(series)


def test_a_new_result_renders_its_new_values() -> None:
    """Values written once (timestamps, expiries) and kept are not served for new ones."""
    series = _series()
    for started in (1.8e9, 1.9e9, 1.9e9, 2e9):
        for result in results()[:1]:
            series.record(result)
        series.last_run = series.last_success = started
        series.render()
        assert list(series.pieces) == _encoded(series)


def test_ready_values_are_written_as_prometheus_client_writes_them() -> None:
    """One by one, and in lists, where a list with any value that ``%r`` would not write
    right is made again."""
    for value in [*AWKWARD, *(1.8e9 + n for n in range(100))]:
        assert b"%r" % ready(value) == floatToGoString(value).encode()  # type: ignore[no-untyped-call]
    for values in ([], [0.5, 1.5], [0.5, NAN], [1e308, 1e308], [-1e300], [0.1, 2e9], AWKWARD):
        written = b" ".join(b"%r" % value for value in ready_all(values))
        assert written == " ".join(map(floatToGoString, values)).encode()
