"""Prometheus metrics of journey runs, with the exposition text cached per journey.

:class:`PrometheusExporter` reads finished :class:`~agent.results.RunResult` objects
and the inventory of loaded journeys (and the catalog), and serves every series
documented in ``docs/metrics.md`` on the registry it is given.

Why a cache: prometheus-client spends ~9 us formatting each sample, and 500 journeys of
10 steps make tens of thousands of samples. Each journey's share of every family is
formatted once, by prometheus-client's own encoder, when the journey has a new result,
and reused by later scrapes; a scrape joins the cached pieces. ``generate_latest`` on
the registry still sees every series (uncached), so any other reader stays correct.

Results of journeys missing from the current inventory are ignored, so a run that
finishes after its journey was removed cannot bring its series back.
"""

from __future__ import annotations

import platform
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.utils import floatToGoString

from agent import __version__
from agent.catalog import Catalog
from agent.model import Journey
from agent.results import FailureReason, Outcome, RunResult, StepResult

__all__ = [
    "CLS_BUCKETS",
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "DURATION_BUCKETS",
    "STEP_BUCKETS",
    "VITAL_BUCKETS",
    "PrometheusExporter",
]

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# Web experience, 50 ms to a minute: the steps where people notice (0.1, 0.25, 1 s),
# give up (2.5-10 s) and where a journey's timeout usually sits (30, 60 s).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Steps are ten times as many series: a step slower than 10 s is broken for any person,
# so its bucket is +Inf (count and sum still hold it).
STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The good / poor limits of Core Web Vitals: INP 0.2/0.5, TTFB 0.8/1.8, FCP 1.8/3, LCP 2.5/4.
VITAL_BUCKETS = (0.1, 0.2, 0.5, 0.8, 1.8, 2.5, 3.0, 4.0, 10.0)
CLS_BUCKETS = (0.05, 0.1, 0.25, 0.5)  # CLS good <= 0.1, poor > 0.25

_J = ("journey", "business_process", "persona", "location")
_INFO = ("service", "application", "owner", "criticality", "title")
_OUTCOMES = tuple(outcome.value for outcome in Outcome)
_Labels = tuple[str, ...]


@dataclass(frozen=True)
class _Spec:
    """One journey metric family: its name in the text format, type, help and extra labels."""

    name: str
    kind: str
    doc: str
    labels: _Labels = ()

    def family(self) -> Metric:
        names = [*_J, *self.labels]
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.doc, labels=names)
        if self.kind == "gauge":
            return GaugeMetricFamily(self.name, self.doc, labels=names)
        return HistogramMetricFamily(self.name, self.doc, labels=names)


# Exposition order. Histograms of timings count successful runs and steps only.
_SPECS = (
    _Spec("journey_info", "gauge", "Journey metadata, 1 per loaded journey", _INFO),
    _Spec("journey_latency_threshold_seconds", "gauge", "Latency SLO threshold of the journey"),
    _Spec("journey_runs_total", "counter", "Finished runs by outcome", ("outcome",)),
    _Spec("journey_failures_total", "counter", "Failed runs by reason and failed step",
          ("reason", "step")),
    _Spec("journey_slow_runs_total", "counter",
          "Successful runs slower than the journey's latency SLO threshold"),
    _Spec("journey_retries_total", "counter", "Extra attempts made by runs (attempts - 1)"),
    _Spec("journey_success", "gauge", "1 if the last run succeeded, 0 if it failed"),
    _Spec("journey_last_run_timestamp_seconds", "gauge", "Start time of the last run"),
    _Spec("journey_last_success_timestamp_seconds", "gauge",
          "Start time of the last successful run"),
    _Spec("journey_duration_seconds", "histogram", "Duration of successful runs"),
    _Spec("journey_step_duration_seconds", "histogram", "Duration of successful steps",
          ("step",)),
    _Spec("journey_http_phase_seconds_total", "counter",
          "Seconds spent in each phase of successful HTTP steps", ("step", "phase")),
    _Spec("journey_tls_cert_expiry_timestamp_seconds", "gauge",
          "Expiry time of the server certificate seen by the step", ("step",)),
    _Spec("journey_web_vital_seconds", "histogram", "Web vitals of browser steps",
          ("step", "vital")),
    _Spec("journey_web_vital_cls", "histogram", "Cumulative layout shift of browser steps",
          ("step",)),
    _Spec("journey_console_errors_total", "counter", "Console errors seen by browser steps",
          ("step",)),
    _Spec("journey_failed_requests_total", "counter",
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
class _Journey:
    """One journey's series and its cached exposition pieces."""

    labels: _Labels  # values of _J
    info: _Labels  # values of _INFO
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
            built = {spec.name: spec.family() for spec in _SPECS}
            for name, labels, value in self._samples():
                _add(built[name], [*self.labels, *labels], value)
            self.metrics = [family for family in built.values() if family.samples]
        return self.metrics

    def _samples(self) -> Iterator[tuple[str, _Labels, _Value]]:
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
    else:  # a mistake in _SPECS, not in any input
        raise TypeError(f"{family.name}: cannot add a {type(value).__name__}")


def _step_samples(step: str, measured: _Step) -> Iterator[tuple[str, _Labels, _Value]]:
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


class _Families:
    """A collector over a fixed list of families: how one piece is handed to an encoder."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def _encode(families: Iterable[Metric], openmetrics: bool) -> str:
    if openmetrics:
        text: bytes = generate_openmetrics(_Families(families))  # type: ignore[no-untyped-call]
        return text.decode().removesuffix("# EOF\n")
    return generate_latest(_Families(families)).decode()


def _pieces(text: str) -> list[str]:
    """Split an encoder's output into the sample lines of each family, in order."""
    pieces: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("# HELP "):
            pieces.append([])
        elif not line.startswith("#"):
            pieces[-1].append(line)
    return ["".join(lines) for lines in pieces]


class PrometheusExporter:
    """Journey and business-process series on ``registry``, for one agent ``location``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        location: str,
        *,
        clock: Callable[[], float] = time.time,
        python_version: str = platform.python_version(),
    ) -> None:
        self.registry = registry
        self._location = location
        self.clock = clock  # gives the catalog's hour of day at scrape time
        self._journeys: dict[str, _Journey] = {}
        self.catalog: Catalog | None = None  # as of the last set_inventory
        self._text: dict[bool, str] = {}  # the joined journey text, per format
        self._headers: dict[bool, dict[str, str]] = {}
        registry.register(self)
        registry.register(_CatalogCollector(self, location, (__version__, python_version)))

    def describe(self) -> Iterable[Metric]:
        """The journey families, so the registry refuses anyone else claiming their names."""
        return [spec.family() for spec in _SPECS]

    def collect(self) -> Iterable[Metric]:
        """Every journey series, uncached (``render`` is the fast path)."""
        merged = {spec.name: spec.family() for spec in _SPECS}
        for journey in self._sorted():
            for family in journey.families():
                merged[_spec_name(family)].samples.extend(family.samples)
        return [family for family in merged.values() if family.samples]

    def set_inventory(self, journeys: Sequence[Journey], catalog: Catalog | None) -> None:
        """Take the journeys now loaded: set their info series, drop those that are gone."""
        loaded = {journey.journey: journey for journey in journeys}
        for name in list(self._journeys):
            kept = loaded.get(name)
            if kept is None or self._journeys[name].labels != self._labels(kept):
                del self._journeys[name]  # removed, or moved to another process or persona
        for name, journey in loaded.items():
            steps = tuple(step.name for step in journey.steps)
            latency = journey.slo.latency if journey.slo else None
            info = (journey.service, journey.application, journey.owner, journey.criticality,
                    journey.title)  # fmt: skip
            state = self._journeys.get(name)
            if state is None:
                state = self._journeys[name] = _Journey(self._labels(journey), info, steps, None)
            state.info, state.steps = info, steps
            state.threshold = latency.threshold if latency else None
            state.measured = {s: m for s, m in state.measured.items() if s in steps}
            state.failures = {k: n for k, n in state.failures.items() if k[1] in ("", *steps)}
            state.changed()
        self.catalog = catalog
        self._text.clear()

    def export(self, result: RunResult) -> None:
        """Count one finished run."""
        journey = self._journeys.get(result.journey)
        if journey is None:
            return  # not (or no longer) loaded
        journey.record(result)
        journey.changed()
        self._text.clear()

    def render(self, openmetrics: bool = False) -> bytes:
        """The registry's exposition: journey series from the cache, the rest rendered now."""
        others = [family for family in self.registry.collect() if family.name not in _OWN]
        rest = _encode(others, openmetrics)
        end = "# EOF\n" if openmetrics else ""
        return (self._journey_text(openmetrics) + rest + end).encode()

    def _journey_text(self, openmetrics: bool) -> str:
        if openmetrics not in self._text:
            by_family: dict[str, list[str]] = {spec.name: [] for spec in _SPECS}
            for journey in self._sorted():
                for name, piece in self._pieces(journey, openmetrics).items():
                    by_family[name].append(piece)
            headers = self._headers_for(openmetrics)
            self._text[openmetrics] = "".join(
                headers[name] + "".join(pieces) for name, pieces in by_family.items() if pieces
            )
        return self._text[openmetrics]

    def _pieces(self, journey: _Journey, openmetrics: bool) -> dict[str, str]:
        if openmetrics not in journey.text:
            families = journey.families()
            pieces = _pieces(_encode(families, openmetrics))
            journey.text[openmetrics] = {
                _spec_name(family): piece for family, piece in zip(families, pieces, strict=True)
            }
        return journey.text[openmetrics]

    def _headers_for(self, openmetrics: bool) -> dict[str, str]:
        if openmetrics not in self._headers:
            self._headers[openmetrics] = {
                spec.name: _encode([spec.family()], openmetrics) for spec in _SPECS
            }
        return self._headers[openmetrics]

    def _sorted(self) -> list[_Journey]:
        return [self._journeys[name] for name in sorted(self._journeys)]

    def _labels(self, journey: Journey) -> _Labels:
        return (journey.journey, journey.business_process, journey.persona.value, self._location)


class _CatalogCollector:
    """The build and business-process series, made at scrape time (volume follows the hour)."""

    def __init__(self, exporter: PrometheusExporter, location: str, build: _Labels) -> None:
        self._exporter = exporter
        self._location = location
        self._build = build

    def collect(self) -> Iterable[Metric]:
        build = _gauge(
            "journeyman_build_info", "Journeyman and Python versions", "version", "python"
        )
        build.add_metric(list(self._build), 1.0)
        catalog = self._exporter.catalog
        if catalog is None:
            return [build]
        hour = catalog.local_hour(self._exporter.clock())
        where = self._location
        info = _gauge("business_process_info", "Business process metadata, 1 each",
                      "business_process", "name", "owner", "location")  # fmt: skip
        expected = _gauge("business_process_expected_transactions_per_hour",
                          "Transactions expected in the current hour, from the catalog",
                          "business_process", "location")  # fmt: skip
        peak = _gauge("business_process_peak", "1 during the process's peak hours, else 0",
                      "business_process", "location")  # fmt: skip
        value = _gauge("business_process_value_per_transaction",
                       "Value of one transaction, from the catalog",
                       "business_process", "currency", "location")  # fmt: skip
        for process in catalog.business_processes:
            info.add_metric([process.id, process.name, process.owner, where], 1.0)
            if process.volume is not None:
                expected.add_metric([process.id, where], process.volume.expected(hour))
                peak.add_metric([process.id, where], float(process.volume.is_peak(hour)))
            if process.value_per_transaction is not None:
                price = process.value_per_transaction
                value.add_metric([process.id, process.currency, where], price)
        return [build, *(family for family in (info, expected, peak, value) if family.samples)]


def _gauge(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _spec_name(family: Metric) -> str:
    """The spec name of a family (counter families drop ``_total`` from their name)."""
    return family.name + "_total" if family.type == "counter" else family.name


_OWN = frozenset(spec.family().name for spec in _SPECS)
