"""Prometheus metrics of journey runs, with the exposition text cached per journey.

:class:`PrometheusExporter` reads finished :class:`~agent.run.results.RunResult` objects
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
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from agent import __version__
from agent.language.catalog import Catalog
from agent.language.model import Journey
from agent.run.results import RunResult
from exporters.base import NoLifecycle
from exporters.prometheus_series import (
    DURATION_BUCKETS,
    SPECS,
    STEP_BUCKETS,
    JourneySeries,
    Labels,
)

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "DURATION_BUCKETS",
    "STEP_BUCKETS",
    "PrometheusExporter",
]

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


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


class PrometheusExporter(NoLifecycle):
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
        self._journeys: dict[str, JourneySeries] = {}
        self.catalog: Catalog | None = None  # as of the last set_inventory
        self._text: dict[bool, str] = {}  # the joined journey text, per format
        self._headers: dict[bool, dict[str, str]] = {}
        registry.register(self)
        registry.register(_CatalogCollector(self, location, (__version__, python_version)))

    def describe(self) -> Iterable[Metric]:
        """The journey families, so the registry refuses anyone else claiming their names."""
        return [spec.family() for spec in SPECS]

    def collect(self) -> Iterable[Metric]:
        """Every journey series, uncached (``render`` is the fast path)."""
        merged = {spec.name: spec.family() for spec in SPECS}
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
                state = self._journeys[name] = JourneySeries(
                    self._labels(journey), info, steps, None
                )
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
            by_family: dict[str, list[str]] = {spec.name: [] for spec in SPECS}
            for journey in self._sorted():
                for name, piece in self._pieces(journey, openmetrics).items():
                    by_family[name].append(piece)
            headers = self._headers_for(openmetrics)
            self._text[openmetrics] = "".join(
                headers[name] + "".join(pieces) for name, pieces in by_family.items() if pieces
            )
        return self._text[openmetrics]

    def _pieces(self, journey: JourneySeries, openmetrics: bool) -> dict[str, str]:
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
                spec.name: _encode([spec.family()], openmetrics) for spec in SPECS
            }
        return self._headers[openmetrics]

    def _sorted(self) -> list[JourneySeries]:
        return [self._journeys[name] for name in sorted(self._journeys)]

    def _labels(self, journey: Journey) -> Labels:
        return (journey.journey, journey.business_process, journey.persona.value, self._location)


class _CatalogCollector:
    """The build and business-process series, made at scrape time (volume follows the hour)."""

    def __init__(self, exporter: PrometheusExporter, location: str, build: Labels) -> None:
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


_OWN = frozenset(spec.family().name for spec in SPECS)
