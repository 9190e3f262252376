"""Prometheus metrics of journey runs, each journey's text rendered when its result arrives.

:class:`PrometheusExporter` reads finished :class:`~agent.run.results.RunResult` objects
and the inventory of loaded journeys (and the catalog), and serves every series
documented in ``docs/metrics.md`` on the registry it is given.

Why rendered ahead: prometheus-client spends ~9 us encoding each sample, and a thousand
journeys make tens of thousands of samples; encoding them when scraped blocked the event
loop for seconds, and every run due meanwhile started late. So each journey's block of
sample lines is written by :meth:`JourneySeries.render` (a template per family, see
:mod:`exporters.prometheus_text`) once per result, at export time, and a scrape only
lists the pieces that are already there (:meth:`PrometheusExporter.journey_parts`, for
the endpoint to write or deflate in batches), and writes the other series (build,
catalog, the agent's own; in a worker thread) with
:class:`~exporters.prometheus_text.FamilyWriter`, which writes a family kept by its
collector (the scheduler's per journey, :mod:`agent.schedule.skipped`) once per change.
The list is kept until the next change; its ``generation`` tells a server when bytes it
derived from it (gzip) are stale.
``generate_latest`` on the registry still sees every series, through ``collect()``.

Results of journeys missing from the current inventory are ignored, so a run that
finishes after its journey was removed cannot bring its series back.
"""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

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
from exporters.prometheus_text import FamilyWriter, encode

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "DURATION_BUCKETS",
    "STEP_BUCKETS",
    "PrometheusExporter",
]

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


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
        self._order: list[JourneySeries] | None = None  # by journey id, until the next load
        self.catalog: Catalog | None = None  # as of the last set_inventory
        self.generation = 0  # counts changes to the journey text
        self._parts: dict[bool, list[bytes]] = {}  # the journey text in parts, per format
        # HELP and TYPE of each family, per format, from prometheus-client's encoder
        self._headers = {
            openmetrics: [encode([spec.family()], openmetrics) for spec in SPECS]
            for openmetrics in (False, True)
        }
        self._others = FamilyWriter()  # writes the other collectors' families
        self._rest_only = threading.local()  # set while this thread collects the others
        registry.register(self)
        registry.register(_CatalogCollector(self, location, (__version__, python_version)))

    def describe(self) -> Iterable[Metric]:
        """The journey families, so the registry refuses anyone else claiming their names."""
        return [spec.family() for spec in SPECS]

    def collect(self) -> Iterable[Metric]:
        """Every journey series as metric families (slow; scrapes use ``render``)."""
        if getattr(self._rest_only, "on", False):
            return []
        merged = {spec.name: spec.family() for spec in SPECS}
        for journey in self._sorted():
            for family in journey.families():
                merged[_spec_name(family)].samples.extend(family.samples)
        return [family for family in merged.values() if family.samples]

    def set_inventory(self, journeys: Sequence[Journey], catalog: Catalog | None) -> None:
        """Take the journeys now loaded: set their info series, drop those that are gone."""
        loaded = {journey.journey: journey for journey in journeys}
        changed = False
        for name in list(self._journeys):
            kept = loaded.get(name)
            if kept is None or self._journeys[name].labels != self._labels(kept):
                del self._journeys[name]  # removed, or moved to another process or persona
                changed = True
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
                changed = True
            changed |= state.update(info, steps, latency.threshold if latency else None)
        self.catalog = catalog
        if changed:
            self._order = None
            self._changed()

    def export(self, result: RunResult) -> None:
        """Count one finished run and render its journey's block again."""
        journey = self._journeys.get(result.journey)
        if journey is None:
            return  # not (or no longer) loaded
        journey.record(result)
        journey.render()
        self._changed()

    def render(self, openmetrics: bool = False) -> bytes:
        """The registry's exposition: the journey text as rendered, the rest written now."""
        return b"".join(self.journey_parts(openmetrics)[1]) + self.other_text(openmetrics)

    def journey_parts(self, openmetrics: bool = False) -> tuple[int, list[bytes]]:
        """The generation and text of every journey series, in parts: each family's header,
        then that family's lines from each journey (the pieces rendered per result). The
        list is made once per change, on the loop (its pieces are taken as they are: a
        render replaces a journey's pieces, never changes them), and never joined here:
        the endpoint writes or deflates it in batches (a 14 MB join took 1.3-10 ms, most
        of it the kernel's fresh pages, holding the GIL)."""
        parts = self._parts.get(openmetrics)
        if parts is None:
            columns = zip(*(journey.pieces for journey in self._sorted()), strict=True)
            parts = self._parts[openmetrics] = []
            for header, pieces in zip(self._headers[openmetrics], columns, strict=False):
                if any(pieces):
                    parts.append(header)
                    parts.extend(pieces)
        return self.generation, parts

    def other_text(self, openmetrics: bool = False) -> bytes:
        """Every other series of the registry (build, catalog, the agent's own), written
        now (a family its collector kept: from its text of the last time), and
        OpenMetrics' ``# EOF``. Safe on any thread, as long as the registry's other
        collectors are (prometheus-client's metrics are): a scrape calls it off the event
        loop."""
        self._rest_only.on = True  # the journey families are in the journey text
        try:
            others = list(self.registry.collect())
        finally:
            self._rest_only.on = False
        return self._others.write(others, openmetrics) + (b"# EOF\n" if openmetrics else b"")

    def _changed(self) -> None:
        self.generation += 1
        self._parts.clear()

    def _sorted(self) -> list[JourneySeries]:
        if self._order is None:
            self._order = [self._journeys[name] for name in sorted(self._journeys)]
        return self._order

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
