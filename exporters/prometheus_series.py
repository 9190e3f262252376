"""The series of one journey: what the exporter counts, and its block of exposition text.

:class:`JourneySeries` holds one loaded journey's counters, gauges and histograms, fed
with RunResults. After each change it renders its block: its sample lines, one piece per
family (:mod:`exporters.prometheus_text`), so that a scrape only lists bytes. It can also
make prometheus-client metric families of the same series, for ``collect()`` (the
uncached path other readers of the registry use). :data:`SPECS` lists every journey
family in exposition order: the journey's own, then the families that the step kinds
declare for their measurements (:class:`agent.steps.kind.Measure`), read as data, never
by kind name.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, islice

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from agent.run.results import FailureReason, Outcome, RunResult, StepResult
from agent.steps import KINDS
from agent.steps.kind import Aggregate, Measure
from exporters.prometheus_text import (
    Written,
    histogram_template,
    number,
    ready,
    ready_all,
    sample_template,
)

__all__ = [
    "DURATION_BUCKETS",
    "SPECS",
    "STEP_BUCKETS",
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
SPECS: tuple[Spec, ...] = (
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
)  # fmt: skip
# What each kind's measurement groups feed, by kind name then group.
MEASURES: dict[str, dict[str, Measure]] = {
    kind.name: {measure.group: measure for measure in kind.measures} for kind in KINDS
}
_MEASURE_SPECS = {
    m.metric: Spec(m.metric, m.kind, m.doc, ("step", m.label) if m.label else ("step",))
    for kind in KINDS
    for m in kind.measures
}
SPECS += tuple(_MEASURE_SPECS.values())
_MEASURE_ORDER = {metric: index for index, metric in enumerate(_MEASURE_SPECS)}
_INDEX = {spec.name: index for index, spec in enumerate(SPECS)}
_FIRST_MEASURE = len(SPECS) - len(_MEASURE_SPECS)
_OBSERVE, _SUM = Aggregate.OBSERVE, Aggregate.SUM  # an enum member lookup is ~0.1 us
# Where render() puts the values of the journey's own families.
(_INFO, _THRESHOLD, _RUNS, _FAILURES, _SLOW_RUNS, _RETRIES, _SUCCESS, _LAST_RUN,
 _LAST_SUCCESS, _DURATION, _STEP_DURATION) = (
    _INDEX[f"journey_{name}"]
    for name in ("info", "latency_threshold_seconds", "runs_total", "failures_total",
                 "slow_runs_total", "retries_total", "success", "last_run_timestamp_seconds",
                 "last_success_timestamp_seconds", "duration_seconds", "step_duration_seconds")
)  # fmt: skip


class _Histogram:
    """Bucket counts of one histogram series (non-cumulative; the +Inf bucket last)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    @property
    def le(self) -> list[str]:
        """The ``le`` values as prometheus-client writes them (``1.0``, ``+Inf``)."""
        return [number(bound) for bound in (*self.bounds, float("inf"))]

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # a value on a bound is "le" it
        self.total += value

    def values(self, lines: list[float | Written]) -> bool:
        """Add the values of its lines to ``lines``, for its template: cumulative buckets,
        count, sum; nothing if it counted nothing (no series yet). The counts are ints
        below a million (:func:`histogram_template`'s ``whole``), else written: then True
        (counted past a million)."""
        cumulative = list(accumulate(self.counts))
        count = cumulative[-1]
        if not count:
            return False
        wide = count >= 1_000_000
        counts = [Written(number(float(n))) for n in cumulative] if wide else cumulative
        lines += counts
        lines.append(counts[-1])
        lines.append(ready(self.total))
        return wide

    def buckets(self) -> list[tuple[str, float]]:
        return [(le, float(n)) for le, n in zip(self.le, accumulate(self.counts), strict=True)]


_Value = float | _Histogram  # a gauge or counter, or a histogram


def _exposition_order(item: tuple[tuple[str, str], object]) -> tuple[int, str]:
    (metric, name), _ = item
    return _MEASURE_ORDER[metric], name


@dataclass
class _Step:
    """Everything measured about one step of one journey."""

    duration: _Histogram = field(default_factory=lambda: _Histogram(STEP_BUCKETS))
    # (metric, name): value, in exposition order (both sorted again when a series appears)
    series: dict[tuple[str, str], float] = field(default_factory=dict)  # counters, gauges
    histograms: dict[tuple[str, str], _Histogram] = field(default_factory=dict)
    # (index in _MEASURE_SPECS, number of series) of each metric of ``series``, in its
    # order: render() takes a family's values at once instead of looking each one's up
    groups: tuple[tuple[int, int], ...] = ()

    def record(self, result: StepResult, measures: Mapping[str, Measure]) -> None:
        ok, series = result.ok, self.series
        if ok:
            self.duration.observe(result.duration)
        count, grown = len(series), False  # grown: a new histogram (a kind's, if it has any)
        for measurement in result.measurements:
            measure = measures.get(measurement.group)
            if measure is None or (measure.only_ok and not ok):
                continue  # kept in the results, not exported as a series
            key = (measure.metric, measurement.name)
            value, aggregate = measurement.value, measure.aggregate
            if aggregate is _OBSERVE:
                histogram = self.histograms.get(key)
                if histogram is None:
                    histogram = self.histograms[key] = _Histogram(measure.buckets)
                    grown = True
                histogram.observe(value)
            elif aggregate is _SUM and (old := series.get(key)) is not None:
                series[key] = old + value
            else:
                series[key] = float(value)
        if grown or len(series) != count:
            self.series = dict(sorted(series.items(), key=_exposition_order))
            self.histograms = dict(sorted(self.histograms.items(), key=_exposition_order))
            metrics = [metric for metric, _ in self.series]
            self.groups = tuple(
                (_MEASURE_ORDER[m], metrics.count(m)) for m in dict.fromkeys(metrics)
            )

    def samples(self) -> Iterator[tuple[str, str, _Value]]:
        """Metric, name (label value, or "") and value of each measured series."""
        for (metric, name), value in self.series.items():
            yield metric, name, value
        for (metric, name), histogram in self.histograms.items():
            yield metric, name, histogram


@dataclass
class JourneySeries:
    """One journey's series and its rendered block."""

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
    measured: dict[str, _Step] = field(default_factory=dict)  # by step, in order of steps
    # The sample lines of each family of SPECS (b"" where none), as of the last render().
    pieces: tuple[bytes, ...] = ()
    # The lines of each family with a slot per value, made again when the shape changes: the
    # number of values of each family and of histograms counted past a million. Until the
    # next update(), series only come and histograms only grow: the same shape, the same
    # series, in the same order.
    templates: tuple[bytes, ...] = ()
    shape: tuple[int, ...] = ()

    def update(self, info: Labels, steps: tuple[str, ...], threshold: float | None) -> bool:
        """Take a (re)loaded definition; drop the series of removed steps. True if any of it
        changed (the block is then rendered again)."""
        if self.pieces and (info, steps, threshold) == (self.info, self.steps, self.threshold):
            return False
        # Every step's state exists from the load on (and is frozen with it, see agent/app.py).
        self.measured = {s: self.measured[s] if s in self.measured else _Step() for s in steps}
        if steps != self.steps:
            self.failures = {k: n for k, n in self.failures.items() if k[1] in ("", *steps)}
        self.info, self.steps, self.threshold = info, steps, threshold
        self.shape = ()  # no line of an old info or a removed step stays behind
        self.render()
        return True

    def render(self) -> None:
        """Write this journey's sample lines, one piece per family (called per change): one
        ``%`` per family, which writes the numbers in C (see :func:`ready`). The values are
        taken here a family or a histogram at a time, not from :meth:`_samples` one by one
        (that walk was ~40% of a render), in the order in which ``_samples`` made each
        family's template: the shape only checks their number, and
        tests/test_prometheus_series.py their order."""
        values: list[Sequence[float | Written]] = [()] * len(SPECS)
        one, every = ready, ready_all
        values[_INFO] = (1.0,)
        if self.threshold is not None:
            values[_THRESHOLD] = (one(self.threshold),)
            values[_SLOW_RUNS] = (one(float(self.slow_runs)),)
        values[_RUNS] = every(list(map(float, self.runs.values())))
        if self.failures:
            values[_FAILURES] = every([float(n) for _, n in sorted(self.failures.items())])
        values[_RETRIES] = (one(float(self.retries)),)
        if self.success is not None:
            values[_SUCCESS] = (one(self.success),)
        if self.last_run is not None:
            values[_LAST_RUN] = (one(self.last_run),)
        if self.last_success is not None:
            values[_LAST_SUCCESS] = (one(self.last_success),)
        duration: list[float | Written] = []
        wide = int(self.duration.values(duration))  # histograms counted past a million
        values[_DURATION] = duration
        step_durations: list[float | Written] = []
        values[_STEP_DURATION] = step_durations
        # the counters' and gauges' values of each measure family, made ready at once
        measures: list[list[float]] = [[] for _ in _MEASURE_SPECS]
        histograms: dict[int, list[float | Written]] = {}
        for measured in self.measured.values():
            wide += measured.duration.values(step_durations)
            groups = measured.groups
            if len(groups) == 1:  # most steps feed one family
                measures[groups[0][0]] += measured.series.values()
            elif groups:
                series = iter(measured.series.values())
                for offset, count in groups:
                    measures[offset] += islice(series, count)
            for (metric, _), histogram in measured.histograms.items():
                wide += histogram.values(histograms.setdefault(_INDEX[metric], []))
        for offset, floats in enumerate(measures):
            if floats:
                values[_FIRST_MEASURE + offset] = every(floats)
        for index, lines in histograms.items():
            values[index] = lines
        shape = (*map(len, values), wide)
        if shape != self.shape:
            self.templates, self.shape = self._templates(), shape
        self.pieces = tuple(
            template % tuple(lines) for template, lines in zip(self.templates, values, strict=True)
        )

    def _templates(self) -> tuple[bytes, ...]:
        lines: list[list[bytes]] = [[] for _ in SPECS]
        for name, extra, value in self._samples():
            index = _INDEX[name]
            spec = SPECS[index]
            labels = [*zip(J, self.labels, strict=True), *zip(spec.labels, extra, strict=True)]
            if isinstance(value, _Histogram):
                whole = sum(value.counts) < 1_000_000  # as values() decides
                template = histogram_template(spec.name, labels, value.le, whole)
            else:
                template = sample_template(spec.name, labels)
            lines[index].append(template)
        return tuple(b"".join(family) for family in lines)

    def record(self, result: RunResult) -> None:
        self.runs[result.outcome.value] += 1
        self.retries += max(result.attempts - 1, 0)
        if result.outcome in (Outcome.ABORTED, Outcome.NOT_STARTED):
            return  # cut off by shutdown, or never equipped: says nothing about the target
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
            measured = self.measured.get(step_result.name)  # None: not a step of this journey
            if measured is not None:
                measured.record(step_result, MEASURES.get(step_result.kind, {}))

    def families(self) -> list[Metric]:
        """This journey's series as prometheus-client families, one per spec that has any
        (for ``collect()``; scrapes use the rendered :attr:`pieces`)."""
        built = {spec.name: spec.family() for spec in SPECS}
        for name, labels, value in self._samples():
            _add(built[name], [*self.labels, *labels], value)
        return [family for family in built.values() if family.samples]

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
        if any(self.duration.counts):
            yield "journey_duration_seconds", (), self.duration
        for step, measured in self.measured.items():
            if any(measured.duration.counts):
                yield "journey_step_duration_seconds", (step,), measured.duration
            for metric, name, series in measured.samples():
                yield metric, (step, name) if name else (step,), series


def _add(family: Metric, labels: list[str], value: _Value) -> None:
    if isinstance(family, HistogramMetricFamily) and isinstance(value, _Histogram):
        family.add_metric(labels, value.buckets(), value.total)
    elif isinstance(family, CounterMetricFamily | GaugeMetricFamily) and isinstance(value, float):
        family.add_metric(labels, value)
    else:  # a mistake in SPECS, not in any input
        raise TypeError(f"{family.name}: cannot add a {type(value).__name__}")
