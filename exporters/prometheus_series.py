"""The series of one journey: what the exporter counts, and the metric families it makes.

:class:`JourneySeries` holds one loaded journey's counters, gauges and histograms, fed
with RunResults, and turns them into prometheus-client metric families (built once per
change). :data:`SPECS` lists every journey family in exposition order.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from agent.results import FailureReason, Outcome, RunResult, StepResult

__all__ = [
    "CLS_BUCKETS",
    "DURATION_BUCKETS",
    "SPECS",
    "STEP_BUCKETS",
    "VITAL_BUCKETS",
    "JourneySeries",
    "Labels",
    "Spec",
]

# Web experience, 50 ms to a minute: the steps where people notice (0.1, 0.25, 1 s),
# give up (2.5-10 s) and where a journey's timeout usually sits (30, 60 s).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Steps are ten times as many series: a step slower than 10 s is broken for any person,
# so its bucket is +Inf (count and sum still hold it).
STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The good / poor limits of Core Web Vitals: INP 0.2/0.5, TTFB 0.8/1.8, FCP 1.8/3, LCP 2.5/4.
VITAL_BUCKETS = (0.1, 0.2, 0.5, 0.8, 1.8, 2.5, 3.0, 4.0, 10.0)
CLS_BUCKETS = (0.05, 0.1, 0.25, 0.5)  # CLS good <= 0.1, poor > 0.25

J = ("journey", "business_process", "persona", "location")
INFO = ("service", "application", "owner", "criticality", "title")
_OUTCOMES = tuple(outcome.value for outcome in Outcome)
Labels = tuple[str, ...]


@dataclass(frozen=True)
class Spec:
    """One journey metric family: its name in the text format, type, help and extra labels."""

    name: str
    kind: str
    doc: str
    labels: Labels = ()

    def family(self) -> Metric:
        names = [*J, *self.labels]
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.doc, labels=names)
        if self.kind == "gauge":
            return GaugeMetricFamily(self.name, self.doc, labels=names)
        return HistogramMetricFamily(self.name, self.doc, labels=names)


# Exposition order. Histograms of timings count successful runs and steps only.
SPECS = (
    Spec("journey_info", "gauge", "Journey metadata, 1 per loaded journey", INFO),
    Spec("journey_latency_threshold_seconds", "gauge", "Latency SLO threshold of the journey"),
    Spec("journey_runs_total", "counter", "Finished runs by outcome", ("outcome",)),
    Spec("journey_failures_total", "counter", "Failed runs by reason and failed step",
          ("reason", "step")),
    Spec("journey_slow_runs_total", "counter",
          "Successful runs slower than the journey's latency SLO threshold"),
    Spec("journey_retries_total", "counter", "Extra attempts made by runs (attempts - 1)"),
    Spec("journey_success", "gauge", "1 if the last run succeeded, 0 if it failed"),
    Spec("journey_last_run_timestamp_seconds", "gauge", "Start time of the last run"),
    Spec("journey_last_success_timestamp_seconds", "gauge",
          "Start time of the last successful run"),
    Spec("journey_duration_seconds", "histogram", "Duration of successful runs"),
    Spec("journey_step_duration_seconds", "histogram", "Duration of successful steps",
          ("step",)),
    Spec("journey_http_phase_seconds_total", "counter",
          "Seconds spent in each phase of successful HTTP steps", ("step", "phase")),
    Spec("journey_tls_cert_expiry_timestamp_seconds", "gauge",
          "Expiry time of the server certificate seen by the step", ("step",)),
    Spec("journey_web_vital_seconds", "histogram", "Web vitals of browser steps",
          ("step", "vital")),
    Spec("journey_web_vital_cls", "histogram", "Cumulative layout shift of browser steps",
          ("step",)),
    Spec("journey_console_errors_total", "counter", "Console errors seen by browser steps",
          ("step",)),
    Spec("journey_failed_requests_total", "counter",
          "Failed page requests seen by browser steps", ("step",)),
)  # fmt: skip


class _Histogram:
    """Bucket counts of one histogram series (non-cumulative; the +Inf bucket last)."""

    __slots__ = ("bounds", "counts", "le", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        # the ``le`` values as prometheus-client writes them (``1.0``, ``+Inf``)
        self.le = [floatToGoString(b) for b in (*bounds, float("inf"))]  # type: ignore[no-untyped-call]
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # a value on a bound is "le" it
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        cumulative, running = [], 0
        for bound, count in zip(self.le, self.counts, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        return cumulative


_Value = float | _Histogram  # a gauge or counter, or a histogram


@dataclass
class _Step:
    """Everything measured about one step of one journey."""

    duration: _Histogram = field(default_factory=lambda: _Histogram(STEP_BUCKETS))
    # Seconds per phase, successful steps only: dividing by the step histogram's count
    # gives the mean, at one sample per phase (a histogram per phase would be 5 x 11).
    phases: dict[str, float] = field(default_factory=dict)
    vitals: dict[str, _Histogram] = field(default_factory=dict)
    cls: _Histogram | None = None
    cert_expiry: float | None = None
    console_errors: int | None = None  # None until a browser step reports
    failed_requests: int | None = None

    def record(self, result: StepResult) -> None:
        if result.ok:
            self.duration.observe(result.duration)
        if result.ok and result.kind == "http":
            for phase, seconds in result.phases.items():
                self.phases[phase] = self.phases.get(phase, 0.0) + seconds
        for vital, value in result.vitals.items():
            if vital == "cls":
                self.cls = self.cls or _Histogram(CLS_BUCKETS)
                self.cls.observe(value)
            else:
                self.vitals.setdefault(vital, _Histogram(VITAL_BUCKETS)).observe(value)
        if result.cert_expiry is not None:
            self.cert_expiry = result.cert_expiry
        if result.kind == "browser":
            self.console_errors = (self.console_errors or 0) + result.console_errors
            self.failed_requests = (self.failed_requests or 0) + result.failed_requests


@dataclass
class JourneySeries:
    """One journey's series and its cached exposition pieces."""

    labels: Labels  # values of J
    info: Labels  # values of INFO
    steps: tuple[str, ...]  # step names of the loaded journey, in order
    threshold: float | None  # latency SLO threshold, seconds
    runs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_OUTCOMES, 0))
    failures: dict[tuple[str, str], int] = field(default_factory=dict)
    slow_runs: int = 0
    retries: int = 0
    success: float | None = None
    last_run: float | None = None
    last_success: float | None = None
    duration: _Histogram = field(default_factory=lambda: _Histogram(DURATION_BUCKETS))
    measured: dict[str, _Step] = field(default_factory=dict)
    text: dict[bool, dict[str, str]] = field(default_factory=dict)  # openmetrics? -> pieces
    metrics: list[Metric] | None = None

    def changed(self) -> None:
        self.text.clear()
        self.metrics = None

    def record(self, result: RunResult) -> None:
        self.runs[result.outcome.value] += 1
        self.retries += max(result.attempts - 1, 0)
        if result.outcome is Outcome.ABORTED:
            return  # cut off by shutdown: says nothing about the target
        self.last_run = result.started_at
        self.success = 1.0 if result.ok else 0.0
        if result.ok:
            self.last_success = result.started_at
            self.duration.observe(result.duration)
            if self.threshold is not None and result.duration > self.threshold:
                self.slow_runs += 1
        else:
            step = result.failed_step if result.failed_step in self.steps else ""
            key = ((result.reason or FailureReason.INTERNAL).value, step or "")
            self.failures[key] = self.failures.get(key, 0) + 1
        for step_result in result.steps:
            if step_result.name in self.steps:
                self.measured.setdefault(step_result.name, _Step()).record(step_result)

    def families(self) -> list[Metric]:
        """This journey's series, one family per spec that has any (built once per change)."""
        if self.metrics is None:
            built = {spec.name: spec.family() for spec in SPECS}
            for name, labels, value in self._samples():
                _add(built[name], [*self.labels, *labels], value)
            self.metrics = [family for family in built.values() if family.samples]
        return self.metrics

    def _samples(self) -> Iterator[tuple[str, Labels, _Value]]:
        yield "journey_info", self.info, 1.0
        if self.threshold is not None:
            yield "journey_latency_threshold_seconds", (), self.threshold
            yield "journey_slow_runs_total", (), float(self.slow_runs)
        for outcome, count in self.runs.items():
            yield "journey_runs_total", (outcome,), float(count)
        for (reason, step), count in sorted(self.failures.items()):
            yield "journey_failures_total", (reason, step), float(count)
        yield "journey_retries_total", (), float(self.retries)
        for name, value in (
            ("journey_success", self.success),
            ("journey_last_run_timestamp_seconds", self.last_run),
            ("journey_last_success_timestamp_seconds", self.last_success),
        ):
            if value is not None:
                yield name, (), value
        if sum(self.duration.counts):
            yield "journey_duration_seconds", (), self.duration
        for step in self.steps:
            measured = self.measured.get(step)
            if measured is not None:
                yield from _step_samples(step, measured)


def _add(family: Metric, labels: list[str], value: _Value) -> None:
    if isinstance(family, HistogramMetricFamily) and isinstance(value, _Histogram):
        family.add_metric(labels, value.buckets(), value.total)
    elif isinstance(family, CounterMetricFamily | GaugeMetricFamily) and isinstance(value, float):
        family.add_metric(labels, value)
    else:  # a mistake in SPECS, not in any input
        raise TypeError(f"{family.name}: cannot add a {type(value).__name__}")


def _step_samples(step: str, measured: _Step) -> Iterator[tuple[str, Labels, _Value]]:
    if sum(measured.duration.counts):
        yield "journey_step_duration_seconds", (step,), measured.duration
    for phase, seconds in sorted(measured.phases.items()):
        yield "journey_http_phase_seconds_total", (step, phase), seconds
    if measured.cert_expiry is not None:
        yield "journey_tls_cert_expiry_timestamp_seconds", (step,), measured.cert_expiry
    for vital, histogram in sorted(measured.vitals.items()):
        yield "journey_web_vital_seconds", (step, vital), histogram
    if measured.cls is not None:
        yield "journey_web_vital_cls", (step,), measured.cls
    if measured.console_errors is not None:
        yield "journey_console_errors_total", (step,), float(measured.console_errors)
    if measured.failed_requests is not None:
        yield "journey_failed_requests_total", (step,), float(measured.failed_requests)
