"""Exposition text written by hand instead of by prometheus-client's encoder.

prometheus-client spends ~9 us per sample building ``Sample`` tuples, sorting label
dicts and escaping values at every scrape. A journey's series keep the same labels from
one result to the next, so each series here gets a *template* of its lines (bytes:
``name{labels sorted by name} %r``, one line per sample, ``%`` escaped), kept until the
journey's series change, and each result only fills in the numbers, in C: one ``%`` per
family and journey (:meth:`exporters.prometheus_series.JourneySeries.render`). Bytes,
and whole counts as ints (``%d.0``): a 17 kB template of 110 lines took 19 us as
``str % ints`` and 5.6 us as ``bytes % ints``; 50 floats, 30 us with ``str`` and ``%s``,
24 us with ``bytes`` and ``%r`` (mostly ``repr`` itself).

The lines are byte-identical to what prometheus-client 0.2x writes for a
Counter/Gauge/HistogramMetricFamily without timestamps, exemplars or ``_created``
samples, in the text format 0.0.4 and in OpenMetrics 1.0 alike (their sample lines
differ only for such samples): labels sorted by name, values escaped with ``\\``,
``\\n`` and ``\\"``, numbers as Go writes them (``1.0``, ``+Inf``, ``1.8e+09``).
``tests/test_prometheus_render.py`` compares the two on awkward values.

:class:`FamilyWriter` writes any other families the same way (the agent's own series:
at 1,000 journeys the scheduler's per-journey counters alone are 2,000 samples, ~30 ms
per scrape through prometheus-client's OpenMetrics encoder, which escapes every sample
name character by character). Headers come from prometheus-client's encoder, once per
family; a family with anything unusual (timestamps, exemplars, native histograms,
names outside ``[a-zA-Z_][a-zA-Z0-9_]*``) is handed to the encoder whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from math import isfinite

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.utils import floatToGoString

__all__ = [
    "FamilyWriter",
    "Written",
    "encode",
    "escape",
    "histogram_template",
    "number",
    "ready",
    "ready_all",
    "sample_template",
]

_NEG_INF = float("-inf")
_PLAIN_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")  # written as is by both encoders
_TEXT_SPLIT = ("_created", "_gcount", "_gsum")  # text format: families of their own, last


def escape(value: str) -> str:
    """A label value as it goes between the quotes."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def number(value: float) -> str:
    """A sample value as prometheus-client writes it (Go's float formatting). Below a
    million, where Go writes no exponent, that is Python's ``repr``: a render writes ~17
    values per result, and the general case took ~40% of its time."""
    if _NEG_INF < value < 1_000_000:
        return repr(float(value))
    written: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return written


class Written(str):
    """A value as :func:`number` wrote it, that a template's ``%r`` writes as it is."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def ready(value: float) -> float | Written:
    """A value for a template's ``%r``: the float itself where its ``repr`` is what
    :func:`number` writes (finite, below a million: ``%`` then writes it in C), else
    :func:`number`'s text."""
    return value if _NEG_INF < value < 1_000_000 else Written(number(value))


def ready_all(values: list[float]) -> Sequence[float | Written]:
    """:func:`ready` for a family's values at once: ``values`` itself when all are finite
    and below a million (checked in C: a sum is finite only if every value is), else
    each made ready. A value at a time took twice as long for 50 values."""
    if isfinite(sum(values)) and max(values, default=0.0) < 1_000_000:
        return values
    return [ready(value) for value in values]


def _line(name: str, labels: Sequence[tuple[str, str]], slot: str = " %r\n") -> str:
    pairs = ",".join(f'{key}="{escape(value)}"' for key, value in sorted(labels))
    return (f"{name}{{{pairs}}}" if pairs else name).replace("%", "%%") + slot


def sample_template(name: str, labels: Sequence[tuple[str, str]]) -> bytes:
    """The line of one counter or gauge sample, with ``%r`` where its value goes (a
    :func:`ready` value)."""
    return _line(name, labels).encode()


def histogram_template(
    name: str, labels: Sequence[tuple[str, str]], les: Sequence[str], whole: bool
) -> bytes:
    """The lines of one histogram series: a ``_bucket`` per ``le`` (as written, ``+Inf``
    last), ``_count``, ``_sum``; a slot for each value, in that order. ``whole``: the
    bucket counts and the count are ints below a million, and the template writes them
    (``%d.0``, ~4x as fast as a float's ``repr``); else they are :func:`ready` values,
    as is the sum."""
    slot = " %d.0\n" if whole else " %r\n"
    buckets = "".join(_line(f"{name}_bucket", [*labels, ("le", le)], slot) for le in les)
    return (buckets + _line(f"{name}_count", labels, slot) + _line(f"{name}_sum", labels)).encode()


class _Families:
    """A collector over a fixed list of families: how a list is handed to an encoder."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def encode(families: Iterable[Metric], openmetrics: bool) -> bytes:
    """prometheus-client's own encoding of ``families`` (without OpenMetrics' ``# EOF``)."""
    if openmetrics:
        text: bytes = generate_openmetrics(_Families(families))  # type: ignore[no-untyped-call]
        return text.removesuffix(b"# EOF\n")
    return generate_latest(_Families(families))


class FamilyWriter:
    """Writes metric families as prometheus-client's encoder does, faster (see above).

    A family object collected again, the very same object, is written from the text
    made for it the last time (per format): a collector that keeps its family from one
    change to the next (:mod:`agent.schedule.skipped`) is written once per change.
    prometheus-client's own collectors make new objects at every collect."""

    def __init__(self) -> None:
        self._headers: dict[tuple[str, str, str, str, bool], str] = {}
        self._plain: set[str] = set()  # names seen to need no escaping
        # per format, by id: each family of the last write and its text (kept alive, so
        # that no other object can take its id)
        self._written: dict[bool, dict[int, tuple[Metric, str]]] = {False: {}, True: {}}

    def write(self, families: Iterable[Metric], openmetrics: bool) -> bytes:
        last, written, out = self._written[openmetrics], {}, []
        for family in families:
            kept = last.get(id(family))
            text = kept[1] if kept and kept[0] is family else self._write(family, openmetrics)
            written[id(family)] = family, text
            out.append(text)
        self._written[openmetrics] = written
        return "".join(out).encode()

    def _write(self, family: Metric, openmetrics: bool) -> str:
        if not self._simple(family):
            return encode([family], openmetrics).decode()
        out = [self._header(family, openmetrics)]
        if openmetrics:
            out.extend(_sample_line(s.name, s.labels, s.value) for s in family.samples)
            return "".join(out)
        split: dict[str, list[str]] = {}
        moved = {family.name + suffix: suffix for suffix in _TEXT_SPLIT}
        for sample in family.samples:
            line = _sample_line(sample.name, sample.labels, sample.value)
            suffix = moved.get(sample.name)
            (out if suffix is None else split.setdefault(suffix, [])).append(line)
        doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        for suffix, lines in sorted(split.items()):
            name = family.name + suffix
            out.append(f"# HELP {name} {doc}\n# TYPE {name} gauge\n")
            out.extend(lines)
        return "".join(out)

    def _simple(self, family: Metric) -> bool:
        plain = self._plain
        for name in (family.name, *(s.name for s in family.samples),
                     *(key for s in family.samples for key in s.labels)):  # fmt: skip
            if name not in plain:
                if not _PLAIN_NAME.fullmatch(name):
                    return False
                plain.add(name)
        return all(
            s.timestamp is None and s.exemplar is None and s.native_histogram is None
            and s.value is not None
            for s in family.samples
        )  # fmt: skip

    def _header(self, family: Metric, openmetrics: bool) -> str:
        key = (family.name, family.documentation, family.type, family.unit, openmetrics)
        header = self._headers.get(key)
        if header is None:
            empty = Metric(family.name, family.documentation, family.type, family.unit)
            header = self._headers[key] = encode([empty], openmetrics).decode()
        return header


def _sample_line(name: str, labels: dict[str, str], value: float) -> str:
    if not labels:
        return f"{name} {number(value)}\n"
    pairs = ",".join(f'{key}="{escape(labels[key])}"' for key in sorted(labels))
    return f"{name}{{{pairs}}} {number(value)}\n"
