"""The scheduler's skipped-runs counter: prometheus-client's samples, made once per change."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from agent.schedule.skipped import DOC, LABELS, NAME, SkippedRuns
from exporters.prometheus_text import FamilyWriter

T0 = 1_800_000_000.25
A = ("checkout", "order-to-cash", "customer", "eu-west-1")
B = ("inventory", "supply", "partner", "eu-west-1")
C = ("search", "browse", "customer", "eu-west-1")


@pytest.mark.parametrize("openmetrics", [False, True])
def test_samples_are_those_of_a_prometheus_client_counter(
    monkeypatch: pytest.MonkeyPatch, openmetrics: bool
) -> None:
    """Same exposition as a Counter with a child per journey: _total and _created, in the
    order journeys were added, a removed one gone, one added again last."""
    monkeypatch.setattr("prometheus_client.metrics.time.time", lambda: T0)
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    skipped = SkippedRuns(ours, clock=lambda: T0)
    counter = Counter(NAME, DOC, LABELS, registry=theirs)
    for labels in (B, A, C):
        skipped.add(labels)
        counter.labels(*labels)
    skipped.inc(A, 3)
    counter.labels(*A).inc(3)
    skipped.remove(B)
    counter.remove(*B)
    skipped.add(B)
    counter.labels(*B)
    skipped.inc(B, 1)
    counter.labels(*B).inc(1)
    encode = generate_openmetrics if openmetrics else generate_latest
    assert encode(ours) == encode(theirs)
    assert FamilyWriter().write(ours.collect(), openmetrics) == encode(theirs).removesuffix(
        b"# EOF\n"
    )


def test_a_family_is_made_once_per_change() -> None:
    """Collects between two changes return the very same family; a change makes a new one
    with the new count."""
    registry = CollectorRegistry()
    skipped = SkippedRuns(registry, clock=lambda: T0)
    skipped.add(A)
    [first] = skipped.collect()
    assert next(iter(skipped.collect())) is first
    skipped.add(A)  # already there: nothing changes
    assert next(iter(skipped.collect())) is first
    skipped.inc(A, 2)
    assert next(iter(skipped.collect())) is not first
    assert registry.get_sample_value(f"{NAME}_total", dict(zip(LABELS, A, strict=True))) == 2


def test_the_writer_writes_a_family_it_has_written_from_its_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A family collected again, the same object, is not written again; a new one is."""
    registry = CollectorRegistry()
    skipped = SkippedRuns(registry, clock=lambda: T0)
    skipped.add(A)
    writer = FamilyWriter()
    written: list[str] = []
    write = FamilyWriter._write

    def counted(self: FamilyWriter, family: object, openmetrics: bool) -> str:
        written.append(getattr(family, "name", ""))
        return write(self, family, openmetrics)  # type: ignore[arg-type]

    monkeypatch.setattr(FamilyWriter, "_write", counted)
    first = writer.write(registry.collect(), True)
    assert writer.write(registry.collect(), True) == first
    assert written == [NAME]
    skipped.inc(A, 1)
    assert writer.write(registry.collect(), True) != first
    assert written == [NAME, NAME]


def test_a_change_during_a_collect_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """A count changed (on the loop) while a scrape's thread makes the family: that family
    is not kept, and the next collect has the change."""
    registry = CollectorRegistry()
    skipped = SkippedRuns(registry, clock=lambda: T0)
    skipped.add(A)
    add_metric = CounterMetricFamily.add_metric

    def changing(family: CounterMetricFamily, *args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(CounterMetricFamily, "add_metric", add_metric)
        skipped.inc(A, 5)  # as if the loop ran between two samples
        add_metric(family, *args, **kwargs)

    monkeypatch.setattr(CounterMetricFamily, "add_metric", changing)
    list(skipped.collect())
    labels = dict(zip(LABELS, A, strict=True))
    assert registry.get_sample_value(f"{NAME}_total", labels) == 5
