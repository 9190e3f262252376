"""``journeyman_skipped_runs``: runs the scheduler skipped, a counter per journey.

The family is made when a count changes or a journey comes or goes, not at every scrape,
and each scrape collects that same object: the agent's exposition writer writes an
object it has written before from its copy (:class:`exporters.prometheus_text.FamilyWriter`).
As a prometheus-client ``Counter`` with a child per journey, the family was made and
written again at every scrape: at 1,000 journeys ~20 ms of the scrape's worker thread
(2,000 samples with ``_created``), holding the GIL in 5 ms slices while the event loop
waited for it. Skips are rare: most scrapes find the family as it was.

The samples are those of a prometheus-client ``Counter``: ``_total`` then ``_created``
for each journey, in the order the journeys were added.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, Metric

__all__ = ["SkippedRuns"]

NAME = "journeyman_skipped_runs"
DOC = "Runs not started because the journey's previous run was still in flight"
LABELS = ("journey", "business_process", "persona", "location")


class SkippedRuns:
    """Per journey (its ``LABELS`` values): how many runs were skipped, and since when.

    Changed on the event loop, collected by scrapes in worker threads, without a lock (the
    loop would wait for it): a collect copies the counts in one step, and keeps the
    family it made only if nothing changed meanwhile.
    """

    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, ...], tuple[float, float]] = {}  # (count, created)
        self._changes = 0
        self._family: Metric | None = None  # as of the last change
        registry.register(self)

    def add(self, labels: tuple[str, ...]) -> None:
        """Export a journey's count, at 0 until a run is skipped (so rate() works)."""
        if labels not in self._counts:
            self._counts[labels] = (0.0, self._clock())
            self._changed()

    def remove(self, labels: tuple[str, ...]) -> None:
        if self._counts.pop(labels, None) is not None:
            self._changed()

    def inc(self, labels: tuple[str, ...], amount: int) -> None:
        count, created = self._counts.get(labels) or (0.0, self._clock())
        self._counts[labels] = (count + amount, created)
        self._changed()

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(NAME, DOC, labels=LABELS)]

    def collect(self) -> Iterable[Metric]:
        """The family: the same object from one change to the next (never changed)."""
        changes, family = self._changes, self._family
        if family is None:
            family = CounterMetricFamily(NAME, DOC, labels=LABELS)
            for labels, (count, created) in list(self._counts.items()):  # copied at once
                family.add_metric(labels, count, created=created)
            self._family = family
            if self._changes != changes:  # changed meanwhile: made again next time
                self._family = None
        return [family]

    def _changed(self) -> None:
        self._changes += 1  # before: a collect that kept an older family then drops it
        self._family = None
